//! `parevm bench`: sequential against parallel execution on DeFi workloads
//! and mainnet fixture blocks, in one process, alternating runs, medians.
//!
//! With no flags it runs the default suite: every workload at its
//! `independent` preset, plus `erc20 hot-recipient`, `amm hot-pool` and
//! `erc20 chained`, then every mainnet fixture block (when the fixtures are
//! there), at 1 and N threads (N = available parallelism). Mainnet rows time
//! the block's transactions ([`execute_block`]), not the block-level
//! processing around them (rewards, withdrawals, roots).
//!
//! The summary ends with the host's parallel ceiling, measured before and
//! after the cases: how much more work N threads of independent hashing get
//! done than one. On a shared VM it moves by the minute. It tells how busy
//! the host was rather than bounding the speedups: EVM work, which waits
//! on memory more than hashing does, can pass it (`util::host_ceiling`).

mod plot;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parevm::{execute_block, BlockInput, BlockResult, Config, ExecutedBy, InMemoryStorage, Mode};
use parevm_testkit::fixtures::find_json;
use parevm_testkit::fixtures::mainnet::read_mainnet_fixture;
use parevm_testkit::workload::{Preset, Size, WorkloadKind, WorkloadSpec};
use serde::Serialize;
use serde_json::json;

use crate::util::{default_threads, host_ceiling, median, parse_threads, timed};

/// Arguments of `parevm bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Workloads, comma-separated: raw, erc20, amm, lending, mixed, `all` (the
    /// five synthetic ones) or mainnet (the fixture blocks). Without
    /// --workload and --preset, the default suite runs.
    #[arg(long)]
    workload: Option<String>,
    /// Presets, comma-separated: independent, hot-recipient, hot-pool,
    /// chained (default: independent, or the suite's presets).
    #[arg(long)]
    preset: Option<String>,
    /// Transactions per block (default: a size per workload that takes about
    /// 100-300 ms sequentially).
    #[arg(long, conflicts_with = "gas")]
    txs: Option<usize>,
    /// Block size in gas instead of transactions, e.g. `300M` or `1G`.
    #[arg(long, value_parser = parse_gas)]
    gas: Option<u64>,
    /// Distinct accounts senders and recipients are drawn from (default: a
    /// fresh account each time, so accounts never conflict).
    #[arg(long)]
    accounts: Option<usize>,
    /// Share of transactions (0..=1) that pay the hot account or use the hot
    /// pool; overrides the preset's.
    #[arg(long)]
    hot_ratio: Option<f64>,
    /// Length of dependency chains; `N` makes the whole block one chain.
    /// Overrides the preset's.
    #[arg(long, value_parser = parse_chain_len)]
    chain_len: Option<usize>,
    /// Thread counts for the parallel path, comma-separated, or `max`
    /// (default: `1,max` for the suite, `max` otherwise).
    #[arg(long)]
    threads: Option<String>,
    /// Timed repetitions of each path (at least 5). Short cases repeat
    /// more, until each path has run for about 50 ms in all (at most 200
    /// repetitions): a median of five sub-millisecond runs on a shared
    /// machine is mostly noise.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object per case and a summary object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also draw the speedups into this file (`.svg` or `.png`).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// The parallel side's mode: `auto` (the library's default: optimistic
    /// chunks, Block-STM or the sequential loop, chosen per block),
    /// `block-stm` (always Block-STM to the end, to measure the engine
    /// itself), `chunked` (always optimistic chunks) or `chunked-deltas`
    /// (chunks that track storage deltas).
    #[arg(long, value_enum, default_value_t = ParallelMode::Auto)]
    mode: ParallelMode,
    /// Mainnet fixture folders (a folder of block folders), for the suite and
    /// `--workload mainnet` [default: $PAREVM_FIXTURES/mainnet, else
    /// ../shared/fixtures/mainnet].
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// The chain the fixture blocks belong to: `mainnet`, or a geth-style
    /// genesis file whose `config` gives the forks and blob schedule.
    #[arg(long, default_value = "mainnet")]
    chain: String,
}

/// How the parallel side of each comparison is configured.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ParallelMode {
    /// Always Block-STM (`Mode::BlockStm`).
    BlockStm,
    /// The library default (`Mode::Auto`), which may run sequentially.
    Auto,
    /// Always optimistic chunks (`Mode::Chunked`).
    Chunked,
    /// Always optimistic chunks that track storage deltas
    /// (`Mode::ChunkedDeltas`).
    ChunkedDeltas,
}

impl ParallelMode {
    fn mode(self) -> Mode {
        match self {
            Self::BlockStm => Mode::BlockStm,
            Self::Auto => Mode::Auto,
            Self::Chunked => Mode::Chunked,
            Self::ChunkedDeltas => Mode::ChunkedDeltas,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::BlockStm => "block-stm",
            Self::Auto => "auto",
            Self::Chunked => "chunked",
            Self::ChunkedDeltas => "chunked-deltas",
        }
    }
}

/// One measured (case, thread count).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Row {
    pub(crate) workload: String,
    pub(crate) preset: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) block: Option<u64>,
    pub(crate) txs: usize,
    pub(crate) gas: u64,
    pub(crate) threads: usize,
    pub(crate) reps: usize,
    pub(crate) sequential_ms: f64,
    pub(crate) sequential_min_ms: f64,
    pub(crate) sequential_max_ms: f64,
    pub(crate) parallel_ms: f64,
    pub(crate) parallel_min_ms: f64,
    pub(crate) parallel_max_ms: f64,
    /// Median sequential time over median parallel time.
    pub(crate) speedup: f64,
    /// Throughput of the parallel path (median).
    pub(crate) mgas_per_s: f64,
    /// Throughput of the sequential path (median).
    pub(crate) sequential_mgas_per_s: f64,
    /// Re-executions per transaction (median over the parallel runs).
    pub(crate) reexecutions: f64,
    /// Re-executions in the block (median over the parallel runs).
    pub(crate) reexecutions_total: f64,
    /// Every parallel run produced exactly the sequential result.
    pub(crate) identical: bool,
    /// What the parallel side ran in its last repetition: `block-stm`, `chunked` (optimistic chunks; `chunked(deltas)` when
    /// they corrected stale slots by tracking deltas, `chunked(shifts)` when
    /// they shifted predicted balances), `sequential` (auto
    /// chose it up front), or either parallel path followed by
    /// `+sequential@N` (the sequential loop ran from transaction N on),
    /// and `(kept K)` when it kept K of the parallel executions after N.
    pub(crate) path: String,
}

impl Row {
    /// The case's name in plots and summaries.
    pub(crate) fn label(&self) -> String {
        match self.block {
            Some(block) => format!("{} {block}", self.workload),
            None => format!("{} {}", self.workload, self.preset),
        }
    }

    /// The summary group: the preset for synthetic cases, `mainnet` for fixtures.
    fn group(&self) -> &str {
        if self.block.is_some() {
            &self.workload
        } else {
            &self.preset
        }
    }
}

/// A block to measure.
struct Case {
    workload: String,
    preset: String,
    block: Option<u64>,
    storage: InMemoryStorage,
    input: BlockInput,
}

/// What to build, before building it (cases are built one at a time).
#[derive(Clone, Debug)]
enum Plan {
    /// A synthetic workload.
    Synthetic { spec: WorkloadSpec, preset: Preset },
    /// A mainnet fixture folder.
    Mainnet(PathBuf),
}

/// The default block size of a workload in the suite: about 100-300 ms of
/// sequential execution on a 2-core machine.
fn default_txs(kind: WorkloadKind) -> usize {
    match kind {
        WorkloadKind::Raw => 20_000,
        WorkloadKind::Erc20 => 8_000,
        WorkloadKind::Amm => 3_000,
        WorkloadKind::Lending => 5_000,
        WorkloadKind::Mixed => 6_000,
    }
}

/// The suite's cases: every workload independent, then the contended presets.
fn suite() -> Vec<(WorkloadKind, Preset)> {
    let mut cases: Vec<_> = WorkloadKind::ALL
        .into_iter()
        .map(|k| (k, Preset::Independent))
        .collect();
    cases.extend([
        (WorkloadKind::Erc20, Preset::HotRecipient),
        (WorkloadKind::Amm, Preset::HotPool),
        (WorkloadKind::Erc20, Preset::Chained),
    ]);
    cases
}

/// The workloads a preset is measured on when no workload is given.
fn preset_default_kinds(preset: Preset) -> Vec<WorkloadKind> {
    match preset {
        Preset::Independent => WorkloadKind::ALL.to_vec(),
        Preset::HotRecipient | Preset::Chained => vec![WorkloadKind::Erc20],
        Preset::HotPool => vec![WorkloadKind::Amm],
    }
}

fn parse_list<T: std::str::FromStr>(list: &str) -> anyhow::Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    list.split(',')
        .map(|item| item.trim().parse::<T>().map_err(|e| anyhow::anyhow!("{e}")))
        .collect()
}

/// Parses a gas amount: `30000000`, `30_000_000`, `300M`, `1G`, `1.5g`, `500k`.
fn parse_gas(text: &str) -> Result<u64, String> {
    let clean: String = text.trim().chars().filter(|c| *c != '_').collect();
    let (number, scale) = match clean.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&clean[..clean.len() - 1], 1e3),
        Some('m') => (&clean[..clean.len() - 1], 1e6),
        Some('g') => (&clean[..clean.len() - 1], 1e9),
        _ => (clean.as_str(), 1.0),
    };
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 && value * scale < 1e15 => {
            Ok((value * scale).round() as u64)
        }
        _ => Err(format!(
            "invalid gas amount {text:?} (examples: 30000000, 300M, 1G)"
        )),
    }
}

/// Parses a chain length: a positive number, or `N` / `all` for one chain.
fn parse_chain_len(text: &str) -> Result<usize, String> {
    match text.trim() {
        "N" | "n" | "all" => Ok(usize::MAX),
        s => match s.parse::<usize>() {
            Ok(0) | Err(_) => Err(format!(
                "invalid chain length {s:?} (a positive number, or N for one chain)"
            )),
            Ok(n) => Ok(n),
        },
    }
}

/// The mainnet fixture folders under `root`, in block order (none if
/// `root` does not exist).
fn mainnet_dirs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    if find_json(root, "block").is_some() {
        return Ok(vec![root.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(root).with_context(|| format!("{}: cannot list", root.display()))?;
    let mut dirs: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| find_json(p, "block").is_some())
        .map(|p| {
            let number = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
                .unwrap_or(u64::MAX);
            (number, p)
        })
        .collect();
    dirs.sort();
    Ok(dirs.into_iter().map(|(_, p)| p).collect())
}

fn fixtures_root(args: &Args) -> PathBuf {
    args.fixtures
        .clone()
        .unwrap_or_else(|| parevm_testkit::fixtures::default_fixtures_dir().join("mainnet"))
}

fn plans(args: &Args) -> anyhow::Result<Vec<Plan>> {
    let mut mainnet = args.workload.is_none() && args.preset.is_none();
    let pairs: Vec<(WorkloadKind, Preset)> = match (&args.workload, &args.preset) {
        (None, None) => suite(),
        (workloads, presets) => {
            let kinds: Option<Vec<WorkloadKind>> = match workloads.as_deref() {
                None => None,
                Some(list) => {
                    let names: Vec<&str> = list.split(',').map(str::trim).collect();
                    mainnet = names.contains(&"mainnet");
                    // `all` stands for the five synthetic workloads, also
                    // inside a list (`all,mainnet`); a workload named twice
                    // runs once.
                    let mut kinds: Vec<WorkloadKind> = Vec::new();
                    for name in names.into_iter().filter(|n| *n != "mainnet") {
                        let named = if name == "all" {
                            WorkloadKind::ALL.to_vec()
                        } else {
                            parse_list(name)?
                        };
                        for kind in named {
                            if !kinds.contains(&kind) {
                                kinds.push(kind);
                            }
                        }
                    }
                    Some(kinds)
                }
            };
            let presets: Vec<Preset> = match presets {
                None => vec![Preset::Independent],
                Some(list) => parse_list(list)?,
            };
            let mut pairs = Vec::new();
            for preset in presets {
                let for_preset = kinds
                    .clone()
                    .unwrap_or_else(|| preset_default_kinds(preset));
                for kind in for_preset {
                    if preset.applies_to(kind) {
                        pairs.push((kind, preset));
                    } else {
                        eprintln!(
                            "note: preset {preset} does not apply to workload {kind}; skipped"
                        );
                    }
                }
            }
            pairs
        }
    };
    let (gas, chain_len) = (args.gas, args.chain_len);
    if let Some(r) = args.hot_ratio {
        anyhow::ensure!((0.0..=1.0).contains(&r), "--hot-ratio {r} is outside 0..=1");
    }
    let mut plans: Vec<Plan> = pairs
        .into_iter()
        .map(|(kind, preset)| {
            let size = match (args.txs, gas) {
                (Some(n), _) => Size::Txs(n),
                (None, Some(g)) => Size::Gas(g),
                (None, None) => Size::Txs(default_txs(kind)),
            };
            let mut spec = WorkloadSpec::preset(kind, preset, size)
                .with_seed(args.seed)
                .with_accounts(args.accounts);
            if let Some(r) = args.hot_ratio {
                spec = spec.with_hot_ratio(r);
            }
            if let Some(l) = chain_len {
                spec = spec.with_chain_len(l);
            }
            Plan::Synthetic { spec, preset }
        })
        .collect();
    if mainnet {
        let root = fixtures_root(args);
        let dirs = mainnet_dirs(&root)?;
        if dirs.is_empty() {
            eprintln!(
                "note: no mainnet fixtures at {} (set PAREVM_FIXTURES or --fixtures); mainnet rows skipped",
                root.display()
            );
        }
        plans.extend(dirs.into_iter().map(Plan::Mainnet));
    }
    Ok(plans)
}

fn build(plan: &Plan, chain: &parevm::ChainSpec) -> anyhow::Result<Case> {
    match plan {
        Plan::Synthetic { spec, preset } => {
            let workload = spec.build()?;
            Ok(Case {
                workload: spec.kind.name().to_owned(),
                preset: preset.name().to_owned(),
                block: None,
                storage: workload.storage,
                input: workload.input,
            })
        }
        Plan::Mainnet(dir) => {
            let fixture = read_mainnet_fixture(dir, chain)?;
            let input = fixture.block.block_input();
            Ok(Case {
                workload: "mainnet".to_owned(),
                preset: format!("{:?}", fixture.block.spec).to_lowercase(),
                block: Some(fixture.block.header.number),
                storage: fixture.storage,
                input,
            })
        }
    }
}

impl Plan {
    fn describe(&self) -> String {
        match self {
            Self::Synthetic { spec, preset } => format!("{} {preset}", spec.kind),
            Self::Mainnet(dir) => format!("mainnet {}", dir.display()),
        }
    }
}

/// Min, median and max of a sample.
fn stats(samples: &[f64]) -> (f64, f64, f64) {
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, median(samples), max)
}

/// Short cases repeat until each path has run this long in all.
const MIN_TOTAL_MS: f64 = 50.0;

/// The most repetitions a short case gets.
const MAX_REPS: usize = 200;

/// Warm-up, then at least `reps` alternating sequential and parallel runs
/// (more for short cases: [`MIN_TOTAL_MS`]).
fn measure(
    case: &Case,
    threads: usize,
    reps: usize,
    mode: ParallelMode,
    progress: &ProgressBar,
) -> anyhow::Result<Row> {
    let seq_cfg = Config::sequential();
    let par_cfg = Config {
        mode: mode.mode(),
        ..Config::block_stm(threads)
    };
    // The progress bar counts the warm-up and the first `reps` runs.
    let run = |cfg: &Config, counted: bool| -> anyhow::Result<(BlockResult, f64)> {
        let (result, ms) = timed(|| execute_block(&case.storage, &case.input, cfg));
        if counted {
            progress.inc(1);
        }
        Ok((result?, ms))
    };
    let (reference, _) = run(&seq_cfg, true)?;
    let (warm, _) = run(&par_cfg, true)?;
    let mut identical = true;
    let mut check = |par: &BlockResult| {
        if par != &reference {
            if identical {
                let diff = reference
                    .first_difference(par)
                    .unwrap_or_else(|| "results differ".to_owned());
                progress.suspend(|| {
                    eprintln!(
                        "NOT IDENTICAL: {} {} at {threads} threads: {diff}",
                        case.workload, case.preset
                    )
                });
            }
            identical = false;
        }
    };
    check(&warm);
    drop(warm);
    let (mut seq_ms, mut par_ms, mut reexec) = (Vec::new(), Vec::new(), Vec::new());
    let mut path = String::new();
    let mut rep = 0;
    while rep < reps
        || (rep < MAX_REPS
            && (seq_ms.iter().sum::<f64>() < MIN_TOTAL_MS
                || par_ms.iter().sum::<f64>() < MIN_TOTAL_MS))
    {
        let counted = rep < reps;
        rep += 1;
        let (_, ms) = run(&seq_cfg, counted)?;
        seq_ms.push(ms);
        let (par, ms) = run(&par_cfg, counted)?;
        par_ms.push(ms);
        reexec.push(par.stats.reexecutions as f64);
        path = match (par.stats.executed_by, par.stats.sequential_from) {
            (ExecutedBy::Sequential, _) => "sequential".to_owned(),
            (ExecutedBy::BlockStm(_), None) => "block-stm".to_owned(),
            (ExecutedBy::BlockStm(_), Some(at)) => format!("block-stm+sequential@{at}"),
            (ExecutedBy::Chunked(_), None) => "chunked".to_owned(),
            (ExecutedBy::Chunked(_), Some(at)) => format!("chunked+sequential@{at}"),
        };
        if par.stats.kept_after_handover > 0 {
            // The sequential loop kept that many of the chunks' executions.
            path.push_str(&format!("(kept {})", par.stats.kept_after_handover));
        }
        if par.stats.corrected_slots > 0 {
            // Chunks that tracked deltas corrected stale slots.
            path = path.replacen("chunked", "chunked(deltas)", 1);
        }
        if par.stats.shifted_balances > 0 {
            // Chunks shifted predicted balances.
            path = path.replacen("chunked", "chunked(shifts)", 1);
        }
        check(&par);
    }
    let (seq_min, seq_med, seq_max) = stats(&seq_ms);
    let (par_min, par_med, par_max) = stats(&par_ms);
    let gas = reference.gas_used();
    let txs = case.input.txs.len();
    let mgas = |ms: f64| if ms > 0.0 { gas as f64 / 1e3 / ms } else { 0.0 };
    let reexecutions_total = median(&reexec);
    Ok(Row {
        workload: case.workload.clone(),
        preset: case.preset.clone(),
        block: case.block,
        txs,
        gas,
        threads,
        reps: rep,
        sequential_ms: seq_med,
        sequential_min_ms: seq_min,
        sequential_max_ms: seq_max,
        parallel_ms: par_med,
        parallel_min_ms: par_min,
        parallel_max_ms: par_max,
        speedup: if par_med > 0.0 {
            seq_med / par_med
        } else {
            0.0
        },
        mgas_per_s: mgas(par_med),
        sequential_mgas_per_s: mgas(seq_med),
        reexecutions: if txs > 0 {
            reexecutions_total / txs as f64
        } else {
            0.0
        },
        reexecutions_total,
        identical,
        path,
    })
}

fn header() -> String {
    format!(
        "{:<9} {:<13} {:>6} {:>7} {:>4}   {:<26}   {:<26}   {:>7} {:>7} {:>9}  identical  path",
        "workload",
        "preset",
        "txs",
        "Mgas",
        "thr",
        "seq ms median (min-max)",
        "par ms median (min-max)",
        "speedup",
        "Mgas/s",
        "reexec/tx"
    )
}

fn table_row(r: &Row) -> String {
    let preset = match r.block {
        Some(block) => block.to_string(),
        None => r.preset.clone(),
    };
    format!(
        "{:<9} {:<13} {:>6} {:>7.1} {:>4}   {:>8.2} ({:>7.2}-{:>7.2})   {:>8.2} ({:>7.2}-{:>7.2})   {:>6.2}x {:>7.0} {:>9.3}  {:<9}  {}",
        r.workload,
        preset,
        r.txs,
        r.gas as f64 / 1e6,
        r.threads,
        r.sequential_ms,
        r.sequential_min_ms,
        r.sequential_max_ms,
        r.parallel_ms,
        r.parallel_min_ms,
        r.parallel_max_ms,
        r.speedup,
        r.mgas_per_s,
        r.reexecutions,
        r.identical,
        r.path
    )
}

/// Geometric mean speedup per (group, threads), in order of appearance.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct GroupSummary {
    pub(crate) group: String,
    pub(crate) threads: usize,
    pub(crate) cases: usize,
    pub(crate) geomean_speedup: f64,
    pub(crate) min_speedup: f64,
    pub(crate) max_speedup: f64,
}

/// [`host_ceiling`] for one thread count, before and after the cases.
#[derive(Serialize)]
struct HostCeiling {
    threads: usize,
    start: f64,
    end: f64,
}

fn geomean(values: &[f64]) -> f64 {
    if values.is_empty() || values.iter().any(|v| *v <= 0.0) {
        return 0.0;
    }
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}

pub(crate) fn summarize(rows: &[Row]) -> Vec<GroupSummary> {
    let mut keys: Vec<(String, usize)> = Vec::new();
    for r in rows {
        let key = (r.group().to_owned(), r.threads);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(group, threads)| {
            let speedups: Vec<f64> = rows
                .iter()
                .filter(|r| r.group() == group && r.threads == threads)
                .map(|r| r.speedup)
                .collect();
            GroupSummary {
                cases: speedups.len(),
                geomean_speedup: geomean(&speedups),
                min_speedup: speedups.iter().copied().fold(f64::INFINITY, f64::min),
                max_speedup: speedups.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                group,
                threads,
            }
        })
        .collect()
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let suite_mode = args.workload.is_none() && args.preset.is_none();
    let threads_arg = args
        .threads
        .clone()
        .unwrap_or_else(|| if suite_mode { "1,max" } else { "max" }.to_owned());
    let mut threads = parse_threads(&threads_arg).map_err(anyhow::Error::msg)?;
    let mut seen = Vec::new();
    threads.retain(|t| {
        let new = !seen.contains(t);
        seen.push(*t);
        new
    });
    anyhow::ensure!(
        args.reps >= 5,
        "--reps must be at least 5 (got {})",
        args.reps
    );
    let reps = args.reps;
    if let Some(path) = &args.plot {
        plot::check_extension(path)?;
    }
    let chain = crate::util::load_chain(&args.chain)?;
    let plans = plans(&args)?;
    anyhow::ensure!(!plans.is_empty(), "nothing to run");

    let cases_total = plans.len();
    let runs_per_case = (threads.len() * (reps + 1) * 2) as u64;
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(
            Some(runs_per_case * cases_total as u64),
            ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} [{msg}]")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    if !args.json {
        println!(
            "parevm bench: at least {reps} reps per path after a warm-up (short cases until 50 ms per path, up to 200), threads {threads:?} ({} mode), available parallelism {}",
            args.mode.name(),
            default_threads()
        );
        println!("{}", header());
    }
    let parallel: Vec<usize> = threads.iter().copied().filter(|&t| t > 1).collect();
    progress.set_message("measuring the host's ceiling");
    let ceiling_start: Vec<f64> = parallel.iter().map(|&t| host_ceiling(t)).collect();
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for plan in &plans {
        progress.set_message(format!("loading {}", plan.describe()));
        let case = match (build(plan, &chain), plan) {
            (Ok(case), _) => case,
            // A broken fixture is reported and skipped, not fatal to the suite.
            (Err(error), Plan::Mainnet(_)) => {
                progress.suspend(|| eprintln!("skipped {}: {error:#}", plan.describe()));
                progress.inc(runs_per_case);
                skipped.push(plan.describe());
                continue;
            }
            (Err(error), Plan::Synthetic { .. }) => return Err(error),
        };
        let name = match case.block {
            Some(block) => format!("{} {block}", case.workload),
            None => format!("{} {}", case.workload, case.preset),
        };
        progress.set_message(name.clone());
        for &t in &threads {
            let row = match measure(&case, t, reps, args.mode, &progress) {
                Ok(row) => row,
                Err(error) if case.block.is_some() => {
                    progress.suspend(|| eprintln!("skipped {name}: {error:#}"));
                    skipped.push(name.clone());
                    break;
                }
                Err(error) => return Err(error.context(name)),
            };
            progress.suspend(|| {
                if args.json {
                    println!("{}", serde_json::to_string(&row).unwrap_or_default());
                } else {
                    println!("{}", table_row(&row));
                }
            });
            rows.push(row);
        }
    }
    progress.set_message("measuring the host's ceiling");
    let ceilings: Vec<HostCeiling> = parallel
        .iter()
        .zip(ceiling_start)
        .map(|(&threads, start)| HostCeiling {
            threads,
            start,
            end: host_ceiling(threads),
        })
        .collect();
    progress.finish_and_clear();

    let all_identical = rows.iter().all(|r| r.identical);
    let groups = summarize(&rows);
    if args.json {
        println!(
            "{}",
            json!({
                "summary": {
                    "cases": rows.len(),
                    "all_identical": all_identical,
                    "skipped": skipped,
                    "available_parallelism": default_threads(),
                    "host_ceiling": ceilings,
                    "groups": groups,
                }
            })
        );
    } else {
        println!();
        println!("summary (geometric mean of speedups):");
        for g in &groups {
            println!(
                "  {:<14} {:>2} threads: {:>5.2}x over {} case(s) (min {:.2}x, max {:.2}x)",
                g.group, g.threads, g.geomean_speedup, g.cases, g.min_speedup, g.max_speedup
            );
        }
        for c in &ceilings {
            println!(
                "  host ceiling   {:>2} threads: {:>5.2}x at the start, {:.2}x at the end (independent hashing on every thread against one thread: how busy the host is; memory-bound EVM work can pass it)",
                c.threads, c.start, c.end
            );
        }
        if !skipped.is_empty() {
            println!("skipped (could not be executed): {}", skipped.join(", "));
        }
        println!("all identical: {all_identical}");
    }
    if let Some(path) = &args.plot {
        plot::write(path, &rows)?;
        if !args.json {
            println!("plot written to {}", path.display());
        }
    }
    Ok(if all_identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gas_amounts() {
        assert_eq!(parse_gas("30000000"), Ok(30_000_000));
        assert_eq!(parse_gas("30_000_000"), Ok(30_000_000));
        assert_eq!(parse_gas("300M"), Ok(300_000_000));
        assert_eq!(parse_gas("1G"), Ok(1_000_000_000));
        assert_eq!(parse_gas("1.5g"), Ok(1_500_000_000));
        assert_eq!(parse_gas("500k"), Ok(500_000));
        assert!(parse_gas("0").is_err());
        assert!(parse_gas("x").is_err());
        assert!(parse_gas("-5M").is_err());
    }

    #[test]
    fn chain_lengths() {
        assert_eq!(parse_chain_len("N"), Ok(usize::MAX));
        assert_eq!(parse_chain_len("4"), Ok(4));
        assert!(parse_chain_len("0").is_err());
    }

    fn row(group: &str, threads: usize, speedup: f64) -> Row {
        Row {
            workload: "erc20".into(),
            preset: group.into(),
            block: None,
            txs: 1,
            gas: 1,
            threads,
            reps: 5,
            sequential_ms: 1.0,
            sequential_min_ms: 1.0,
            sequential_max_ms: 1.0,
            parallel_ms: 1.0,
            parallel_min_ms: 1.0,
            parallel_max_ms: 1.0,
            speedup,
            mgas_per_s: 1.0,
            sequential_mgas_per_s: 1.0,
            reexecutions: 0.0,
            reexecutions_total: 0.0,
            identical: true,
            path: "block-stm".into(),
        }
    }

    #[test]
    fn summary_is_a_geometric_mean_per_group_and_threads() {
        let rows = [
            row("independent", 2, 1.0),
            row("independent", 2, 4.0),
            row("chained", 2, 0.5),
            row("independent", 1, 0.9),
        ];
        let groups = summarize(&rows);
        assert_eq!(groups.len(), 3);
        assert_eq!(
            (groups[0].group.as_str(), groups[0].threads),
            ("independent", 2)
        );
        assert!((groups[0].geomean_speedup - 2.0).abs() < 1e-12);
        assert_eq!(groups[0].cases, 2);
        assert!((groups[1].geomean_speedup - 0.5).abs() < 1e-12);
        assert_eq!(groups[2].threads, 1);
    }

    #[test]
    fn plots_are_written_with_the_bundled_font() {
        let mut rows = vec![row("independent", 1, 0.9), row("independent", 2, 1.8)];
        rows.push(Row {
            workload: "mainnet".into(),
            block: Some(19_934_116),
            ..row("cancun", 2, 1.2)
        });
        let dir = std::env::temp_dir().join(format!("parevm-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let svg = dir.join("speedup.svg");
        plot::write(&svg, &rows).expect("svg");
        let text = std::fs::read_to_string(&svg).expect("read svg");
        assert!(
            text.contains("<svg")
                && text.contains("mainnet 19934116")
                && text.contains("2 threads")
        );
        let png = dir.join("speedup.png");
        plot::write(&png, &rows).expect("png");
        let bytes = std::fs::read(&png).expect("read png");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(plot::write(&dir.join("speedup.jpg"), &rows).is_err());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    fn args(workload: Option<&str>, preset: Option<&str>) -> Args {
        Args {
            workload: workload.map(str::to_owned),
            preset: preset.map(str::to_owned),
            txs: Some(10),
            gas: None,
            accounts: None,
            hot_ratio: None,
            chain_len: None,
            threads: None,
            reps: 5,
            seed: 1,
            json: false,
            plot: None,
            mode: ParallelMode::BlockStm,
            fixtures: Some(PathBuf::from("/nonexistent")),
            chain: "mainnet".into(),
        }
    }

    #[test]
    fn case_selection() {
        assert_eq!(plans(&args(None, None)).expect("suite").len(), 8);
        let one = plans(&args(Some("raw"), None)).expect("raw");
        assert_eq!(one.len(), 1);
        match &one[0] {
            Plan::Synthetic { spec, .. } => {
                assert_eq!(*spec, WorkloadSpec::new(WorkloadKind::Raw, Size::Txs(10)))
            }
            Plan::Mainnet(_) => panic!("raw is synthetic"),
        }
        assert!(plans(&args(Some("mainnet"), None))
            .expect("mainnet")
            .is_empty());
        assert_eq!(
            plans(&args(Some("mainnet,erc20"), None))
                .expect("both")
                .len(),
            1
        );
        assert_eq!(
            plans(&args(None, Some("independent")))
                .expect("presets")
                .len(),
            5
        );
        assert_eq!(
            plans(&args(Some("all"), Some("hot-pool")))
                .expect("hot-pool")
                .len(),
            3
        );
        // `all` inside a list, with mainnet and a repeated workload: the
        // five synthetic workloads once each (no fixtures here).
        let kinds: Vec<WorkloadKind> = plans(&args(Some("raw,all,mainnet"), Some("independent")))
            .expect("all in a list")
            .iter()
            .map(|plan| match plan {
                Plan::Synthetic { spec, .. } => spec.kind,
                Plan::Mainnet(_) => panic!("no fixtures at /nonexistent"),
            })
            .collect();
        assert_eq!(kinds, WorkloadKind::ALL.to_vec());
        assert!(plans(&args(Some("nope"), None)).is_err());
        assert!(plans(&args(Some("all,nope"), None)).is_err());
        assert!(plans(&args(None, Some("nope"))).is_err());
    }
}
