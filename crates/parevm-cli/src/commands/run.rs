//! `parevm run`: execute blocks on the sequential and the parallel path
//! with whole-block processing, and check them against their headers and
//! each other. The blocks come from block folders (block + prestate, as the
//! fixtures and `parevm fetch` lay them out), or straight from a node
//! (`--rpc URL --block N`), executed over the node's state through
//! JSON-RPC and then also checked against the node's state after them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use parevm::block::{process_block, FullBlock, ProcessedBlock};
use parevm::revm::primitives::hardfork::SpecId;
use parevm::{Config, Storage};
use parevm_rpc::{load_block, ChainFile, Node, NodeOptions, Prefetch};
use parevm_testkit::fixtures::find_json;
use parevm_testkit::fixtures::mainnet::read_mainnet_fixture;
use serde_json::json;

use crate::report::{progress_bar, table};
use crate::util::{default_threads, parse_block_range, timed};

/// Arguments of `parevm run`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Block folders (each with block.json[.gz] and prestate.json[.gz], as
    /// the fixtures and `parevm fetch` write them), or folders of such
    /// folders.
    #[arg(required_unless_present = "rpc", conflicts_with = "rpc")]
    paths: Vec<PathBuf>,
    /// Execute blocks of this node (`http://host:port`) over its state
    /// instead of folders: prefetched with its `prestateTracer` (or, without
    /// the debug API, the accounts the block names), each miss read over
    /// JSON-RPC. Checked against the header and the node's state after.
    #[arg(long, value_name = "URL", requires = "block")]
    rpc: Option<String>,
    /// With `--rpc`: the block `N`, or the blocks `N..M` (both included).
    #[arg(long, value_name = "N|N..M", requires = "rpc")]
    block: Option<String>,
    /// Worker threads of the parallel path.
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Print one JSON object per block and a final summary object.
    #[arg(long)]
    json: bool,
    /// The chain the blocks belong to: `mainnet`, or a geth-style genesis
    /// file whose `config` gives the forks, chain id and blob schedule.
    /// Default: the `chain.json` a block folder carries (`parevm fetch`
    /// writes one), else mainnet; with `--rpc`, mainnet for chain id 1 or
    /// the fork an anvil node reports.
    #[arg(long)]
    chain: Option<String>,
}

/// What running one block found.
pub(crate) struct BlockReport {
    /// Block number.
    pub(crate) number: u64,
    /// Fork.
    pub(crate) spec: SpecId,
    /// Transactions.
    pub(crate) txs: usize,
    /// Gas used (computed by the parallel path, or the header's on failure).
    pub(crate) gas: u64,
    /// Wall-clock milliseconds of the sequential path.
    pub(crate) sequential_ms: f64,
    /// Wall-clock milliseconds of the parallel path.
    pub(crate) parallel_ms: f64,
    /// Checks that ran.
    pub(crate) checks: Vec<&'static str>,
    /// Checks not possible on this block, with why.
    pub(crate) skipped: Vec<String>,
    /// The first failed check, if any.
    pub(crate) error: Option<String>,
}

/// Expands the arguments into fixture folders, numeric names in numeric order.
fn fixture_dirs(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if find_json(path, "block").is_some() {
            out.push(path.clone());
            continue;
        }
        let entries = std::fs::read_dir(path)
            .with_context(|| format!("{}: not a fixture folder", path.display()))?;
        let dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| find_json(p, "block").is_some())
            .collect();
        if dirs.is_empty() {
            anyhow::bail!(
                "{}: no block.json or block.json.gz here or in its subfolders",
                path.display()
            );
        }
        out.extend(dirs);
    }
    out.sort_by_key(|p| sort_key(p));
    out.dedup();
    Ok(out)
}

fn sort_key(path: &Path) -> (u64, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (name.parse().unwrap_or(u64::MAX), name)
}

/// Executes one block on both paths over `storage` and checks it;
/// `partial` says the pre-state holds only what the block touches (so no
/// state root). Returns the parallel path's result when both paths agree.
pub(crate) fn check_block<S: Storage>(
    storage: &S,
    block: &FullBlock,
    uncles: usize,
    partial: bool,
    threads: usize,
) -> (BlockReport, Option<ProcessedBlock>) {
    let (sequential, sequential_ms) =
        timed(|| process_block(storage, block, &Config::sequential()));
    let (parallel, parallel_ms) =
        timed(|| process_block(storage, block, &Config::block_stm(threads)));
    let mut report = BlockReport {
        number: block.header.number,
        spec: block.spec,
        txs: block.txs.len(),
        gas: block.header.gas_used,
        sequential_ms,
        parallel_ms,
        checks: vec!["execute", "parallel_eq_sequential"],
        skipped: Vec::new(),
        error: None,
    };
    if partial {
        report
            .skipped
            .push("state_root: the pre-state is partial".into());
    }
    if uncles > 0 {
        report
            .skipped
            .push("uncle rewards: uncle headers are not in an RPC block (state diff only)".into());
    }
    let (sequential, parallel) = match (sequential, parallel) {
        (Ok(s), Ok(p)) => (s, p),
        (Err(s), Err(p)) if s == p => {
            report.error = Some(format!("execute: {p}"));
            return (report, None);
        }
        (s, p) => {
            report.error = Some(format!(
                "parallel_eq_sequential: sequential {:?}, parallel {:?}",
                s.as_ref().map(|_| "ok").map_err(ToString::to_string),
                p.as_ref().map(|_| "ok").map_err(ToString::to_string)
            ));
            return (report, None);
        }
    };
    report.gas = parallel.gas_used;
    if let Some(difference) = paths_differ(&sequential, &parallel) {
        report.error = Some(format!("parallel_eq_sequential: {difference}"));
        return (report, None);
    }
    if partial && !block.spec.is_enabled_in(SpecId::BYZANTIUM) {
        report
            .skipped
            .push("receipts_root: pre-Byzantium receipts hold intermediate state roots (needs a complete pre-state)".into());
    }
    for check in parallel.header_checks(block) {
        report.checks.push(check.name);
        if report.error.is_none() {
            report.error = check.mismatch;
        }
    }
    (report, Some(parallel))
}

/// The first difference between the two paths' processed blocks.
pub(crate) fn paths_differ(a: &ProcessedBlock, b: &ProcessedBlock) -> Option<String> {
    if let Some(d) = a.result.first_difference(&b.result) {
        return Some(d);
    }
    if a.state != b.state {
        return Some("whole-block state diff differs".into());
    }
    if a.receipts != b.receipts
        || a.receipts_root != b.receipts_root
        || a.logs_bloom != b.logs_bloom
    {
        return Some("receipts differ".into());
    }
    if a.requests_hash != b.requests_hash {
        return Some("requests hash differs".into());
    }
    None
}

fn speedup(report: &BlockReport) -> f64 {
    if report.parallel_ms > 0.0 {
        report.sequential_ms / report.parallel_ms
    } else {
        0.0
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threads = args.threads.max(1);
    let given = args.chain.as_deref().map(ChainFile::load).transpose()?;
    let reports = match (&args.rpc, &args.block) {
        (Some(url), Some(blocks)) => run_on_node(url, blocks, given, threads, args.json)?,
        _ => run_folders(&args.paths, given.as_ref(), threads, args.json)?,
    };
    summarise(&reports, threads, args.json)
}

/// Runs block folders, each under the chain given, else its `chain.json`,
/// else mainnet.
fn run_folders(
    paths: &[PathBuf],
    given: Option<&ChainFile>,
    threads: usize,
    json: bool,
) -> anyhow::Result<Vec<BlockReport>> {
    let dirs = fixture_dirs(paths)?;
    let bar = progress_bar(dirs.len() as u64, !json);
    let mut reports = Vec::with_capacity(dirs.len());
    for dir in &dirs {
        bar.set_message(dir.display().to_string());
        let chain = match given {
            Some(chain) => chain.clone(),
            None => ChainFile::read(dir)?.unwrap_or_else(ChainFile::mainnet),
        };
        let spec = chain
            .spec()
            .with_context(|| format!("{}: chain {}", dir.display(), chain.source))?;
        let fixture = read_mainnet_fixture(dir, &spec)?;
        let (report, _) = check_block(
            &fixture.storage,
            &fixture.block,
            fixture.uncle_hashes.len(),
            true,
            threads,
        );
        print_block(&report, threads, json);
        bar.inc(1);
        reports.push(report);
    }
    bar.finish_and_clear();
    Ok(reports)
}

/// Runs blocks of a node over its state, and checks each block's changes
/// against the node's state after it.
fn run_on_node(
    url: &str,
    blocks: &str,
    given: Option<ChainFile>,
    threads: usize,
    json: bool,
) -> anyhow::Result<Vec<BlockReport>> {
    let numbers =
        parse_block_range(blocks).map_err(|e| anyhow::anyhow!("--block {blocks}: {e}"))?;
    let node = Node::connect(url, NodeOptions::default())?;
    let chain = ChainFile::detect(&node, given)?;
    let spec = chain
        .spec()
        .with_context(|| format!("chain {}", chain.source))?;
    let bar = progress_bar(numbers.clone().count() as u64, !json);
    let mut reports = Vec::new();
    for number in numbers {
        bar.set_message(format!("block {number}"));
        let loaded = load_block(&node, number, &spec, Prefetch::Auto)?;
        let block = &loaded.read.block;
        // A first run reads what the prefetch missed from the node, so that
        // the timed runs compare execution, not network round trips.
        let _ = process_block(&loaded.storage, block, &Config::sequential());
        let (mut report, processed) = check_block(
            &loaded.storage,
            block,
            loaded.read.uncle_hashes.len(),
            true,
            threads,
        );
        if let Some(processed) = processed {
            report.checks.push("post_state");
            let difference =
                parevm_rpc::post_state::first_difference(&node, number, &processed.state)?;
            if report.error.is_none() {
                report.error = difference.map(|d| format!("post_state: {d}"));
            }
        }
        let misses = loaded.storage.misses();
        if !json && misses.requests > 0 {
            bar.println(format!(
                "block {number}: {} read(s) beyond the prefetch went to the node",
                misses.requests
            ));
        }
        print_block(&report, threads, json);
        bar.inc(1);
        reports.push(report);
    }
    bar.finish_and_clear();
    Ok(reports)
}

/// One JSON line per block (with `--json`).
fn print_block(report: &BlockReport, threads: usize, json: bool) {
    if !json {
        return;
    }
    let mut object = json!({
        "block": report.number,
        "fork": format!("{:?}", report.spec),
        "txs": report.txs,
        "gas": report.gas,
        "ok": report.error.is_none(),
        "sequential_ms": report.sequential_ms,
        "parallel_ms": report.parallel_ms,
        "speedup": speedup(report),
        "threads": threads,
        "checks": report.checks,
        "skipped_checks": report.skipped,
    });
    if let Some(error) = &report.error {
        object["error"] = json!(error);
    }
    println!("{object}");
}

/// The table (or JSON summary) and the exit code: 1 when a check failed.
fn summarise(reports: &[BlockReport], threads: usize, json: bool) -> anyhow::Result<ExitCode> {
    let failed: Vec<&BlockReport> = reports.iter().filter(|r| r.error.is_some()).collect();
    let sequential_ms: f64 = reports.iter().map(|r| r.sequential_ms).sum();
    let parallel_ms: f64 = reports.iter().map(|r| r.parallel_ms).sum();
    let total_speedup = if parallel_ms > 0.0 {
        sequential_ms / parallel_ms
    } else {
        0.0
    };
    if json {
        println!(
            "{}",
            json!({
                "summary": true,
                "blocks": reports.len(),
                "ok": reports.len() - failed.len(),
                "failed": failed.len(),
                "failed_blocks": failed.iter().map(|r| r.number).collect::<Vec<_>>(),
                "threads": threads,
                "sequential_ms": sequential_ms,
                "parallel_ms": parallel_ms,
                "speedup": total_speedup,
            })
        );
    } else {
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|r| {
                vec![
                    r.number.to_string(),
                    format!("{:?}", r.spec),
                    r.txs.to_string(),
                    r.gas.to_string(),
                    format!("{:.2}", r.sequential_ms),
                    format!("{:.2}", r.parallel_ms),
                    format!("{:.2}x", speedup(r)),
                    r.error.clone().unwrap_or_else(|| "ok".into()),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &["block", "fork", "txs", "gas", "seq ms", "par ms", "speedup", "result"],
                &rows
            )
        );
        println!(
            "\n{}/{} blocks ok at {threads} threads; total sequential {sequential_ms:.1} ms, parallel {parallel_ms:.1} ms, speedup {total_speedup:.2}x",
            reports.len() - failed.len(),
            reports.len()
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
