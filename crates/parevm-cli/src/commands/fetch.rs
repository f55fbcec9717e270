//! `parevm fetch`: blocks of a node with their exact pre-state, written as
//! the block folders `parevm run` reads (see `parevm_rpc::fetch`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use parevm_rpc::fetch::{fetch_range, FetchPlan, Fetched};
use parevm_rpc::{ChainFile, Node, NodeOptions};
use serde_json::json;

use crate::report::{progress_bar, table};
use crate::util::parse_block_range;

/// Arguments of `parevm fetch`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The node (`http://host:port`). It must serve the debug API
    /// (`debug_traceBlockByNumber` with geth's `prestateTracer`).
    #[arg(long, value_name = "URL")]
    rpc: String,
    /// The block `N`, or the blocks `N..M` (both included).
    #[arg(long, value_name = "N|N..M")]
    block: String,
    /// The folder that gets one subfolder per block. A subfolder that
    /// already has its block.json is kept, so running the same command
    /// again resumes an interrupted fetch.
    #[arg(long, default_value = "blocks")]
    out: PathBuf,
    /// The chain the node serves: `mainnet`, or a geth-style genesis file.
    /// Default: mainnet for chain id 1, or the fork an anvil node reports.
    #[arg(long)]
    chain: Option<String>,
    /// Blocks fetched at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Times a failed request is tried again (with exponential backoff).
    #[arg(long, default_value_t = 4)]
    retries: u32,
    /// Print one JSON object per block and a final summary object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let numbers = parse_block_range(&args.block)
        .map_err(|e| anyhow::anyhow!("--block {}: {e}", args.block))?;
    let options = NodeOptions {
        timeout: Duration::from_secs(args.timeout.max(1)),
        retries: args.retries,
        ..NodeOptions::default()
    };
    let node = Node::connect(&args.rpc, options)?;
    let given = args.chain.as_deref().map(ChainFile::load).transpose()?;
    let chain = ChainFile::detect(&node, given)?;
    chain.spec()?;
    let plan = FetchPlan {
        out: args.out.clone(),
        chain,
        concurrency: args.concurrency.max(1),
    };
    let bar = progress_bar(numbers.clone().count() as u64, !args.json);
    let json = args.json;
    let outcome = fetch_range(&node, numbers, &plan, &|fetched| {
        bar.inc(1);
        if let Ok(Fetched::Written(report)) = fetched {
            bar.set_message(format!("block {}", report.number));
        }
        if json {
            if let Ok(fetched) = fetched {
                println!("{}", block_json(fetched));
            }
        }
    });
    bar.finish_and_clear();
    let mismatched = outcome
        .done
        .iter()
        .filter(|f| matches!(f, Fetched::Written(r) if r.mismatch.is_some()))
        .count();
    let written = outcome
        .done
        .iter()
        .filter(|f| matches!(f, Fetched::Written(_)))
        .count();
    let kept = outcome.done.len() - written;
    if json {
        println!(
            "{}",
            json!({
                "summary": true,
                "out": plan.out.display().to_string(),
                "written": written,
                "kept": kept,
                "mismatched": mismatched,
                "error": outcome.error.as_ref().map(|(n, e)| format!("block {n}: {e}")),
            })
        );
    } else {
        print_table(&outcome.done);
        println!(
            "\n{written} block(s) written, {kept} already there, into {}",
            plan.out.display()
        );
    }
    if let Some((number, error)) = outcome.error {
        let resume = if error.is_resumable() {
            "; the blocks written are kept: run the same command again to resume"
        } else {
            ""
        };
        anyhow::bail!("block {number}: {error}{resume}");
    }
    Ok(if mismatched == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn block_json(fetched: &Fetched) -> serde_json::Value {
    match fetched {
        Fetched::Kept { number } => json!({ "block": number, "kept": true }),
        Fetched::Written(report) => json!({
            "block": report.number,
            "kept": false,
            "txs": report.txs,
            "gas": report.gas_used,
            "accounts": report.accounts,
            "extra_reads": report.extra_reads,
            "ok": report.mismatch.is_none(),
            "mismatch": report.mismatch,
        }),
    }
}

fn print_table(done: &[Fetched]) {
    let rows: Vec<Vec<String>> = done
        .iter()
        .filter_map(|f| match f {
            Fetched::Kept { .. } => None,
            Fetched::Written(r) => Some(vec![
                r.number.to_string(),
                r.txs.to_string(),
                r.gas_used.to_string(),
                r.accounts.to_string(),
                r.extra_reads.to_string(),
                r.mismatch.clone().unwrap_or_else(|| "ok".into()),
            ]),
        })
        .collect();
    if !rows.is_empty() {
        print!(
            "{}",
            table(
                &[
                    "block",
                    "txs",
                    "gas",
                    "accounts",
                    "extra reads",
                    "check against header"
                ],
                &rows
            )
        );
    }
}
