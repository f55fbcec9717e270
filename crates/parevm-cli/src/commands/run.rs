//! `parevm run` (being built).

use std::process::ExitCode;

/// Arguments of `parevm run`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Files or directories.
    paths: Vec<std::path::PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "`parevm run` is not implemented yet (paths: {:?})",
        args.paths
    )
}
