//! `parevm statetest` (being built).

use std::process::ExitCode;

/// Arguments of `parevm statetest`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Files or directories.
    paths: Vec<std::path::PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "`parevm statetest` is not implemented yet (paths: {:?})",
        args.paths
    )
}
