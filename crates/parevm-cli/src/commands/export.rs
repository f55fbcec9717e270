//! `parevm export`: blocks of a node as an RLP file (`geth export`'s
//! format) that `parevm import` reads (see `parevm_rpc::export`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use parevm_rpc::export::block_rlp;
use parevm_rpc::{Node, NodeOptions};

use crate::report::progress_bar;
use crate::util::parse_block_range;

/// Arguments of `parevm export`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The node (`http://host:port`).
    #[arg(long, value_name = "URL")]
    rpc: String,
    /// The block `N`, or the blocks `N..M` (both included). Import starts
    /// at block 1, so a chain file for a new database starts there.
    #[arg(long, value_name = "N|N..M")]
    block: String,
    /// The RLP file to write (replaced whole once every block is in).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let numbers = parse_block_range(&args.block)
        .map_err(|e| anyhow::anyhow!("--block {}: {e}", args.block))?;
    let node = Node::connect(&args.rpc, NodeOptions::default())?;
    let bar = progress_bar(numbers.clone().count() as u64, true);
    let mut bytes = Vec::new();
    let mut count = 0u64;
    for number in numbers {
        bytes.extend(block_rlp(&node, number)?);
        count += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let tmp = args.out.with_extension("rlp.tmp");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("{}: cannot write", args.out.display()))?;
    println!(
        "{count} block(s), {} bytes, written to {}",
        bytes.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
