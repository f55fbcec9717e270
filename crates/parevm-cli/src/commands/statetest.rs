//! `parevm statetest PATH...`: Ethereum execution-spec state tests through
//! the parallel path.
//!
//! Every case runs in a block of its own on the parallel path (checked
//! against the sequential path and the fixture's post-state root, logs hash
//! and expected exception), and the cases of a file that passed and are
//! independent are then merged into larger blocks so that the scheduler
//! really runs them concurrently (see
//! `parevm_testkit::fixtures::statetest::check_batch` for what that checks).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use parevm::Config;
use parevm_testkit::fixtures::statetest::{self, CaseVerdict};
use serde_json::json;

use crate::util::default_threads;

/// Arguments of `parevm statetest`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// State-test files (`.json` or `.json.gz`) or directories to search
    /// recursively.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Worker threads of the parallel path (default: available parallelism).
    #[arg(long)]
    threads: Option<usize>,
    /// Largest number of independent cases merged into one block.
    #[arg(long, default_value_t = 64)]
    max_batch: usize,
    /// Print one JSON object per file and a final summary object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threads = match args.threads {
        Some(0) => anyhow::bail!("--threads must be at least 1"),
        Some(n) => n,
        None => default_threads(),
    };
    let config = Config::block_stm(threads);
    let files = parevm_testkit::fixtures::collect_json_files(&args.paths)?;
    let bar = if args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(files.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files  {elapsed_precise}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let say = |line: String| {
        // `println` of a hidden bar prints nothing: suspend it instead.
        if !args.json {
            bar.suspend(|| println!("{line}"));
        }
    };

    let start = Instant::now();
    let mut per_fork: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut failing = Vec::new();
    let mut malformed = Vec::new();
    let (mut batches, mut batched) = (0usize, 0usize);
    for path in &files {
        bar.set_message(short_name(path));
        let file_start = Instant::now();
        let file = match statetest::read_file(path) {
            Ok(file) => file,
            Err(error) => {
                // Keep going: report every malformed file, exit 2 at the end.
                if args.json {
                    println!("{}", json!({ "file": path, "error": error.to_string() }));
                } else {
                    bar.suspend(|| println!("ERROR {error}"));
                }
                malformed.push(error.to_string());
                bar.inc(1);
                continue;
            }
        };
        let report = statetest::check_file(&file, &config, args.max_batch);
        let mut file_tally = Tally::default();
        let mut failures = Vec::new();
        let mut skips = Vec::new();
        for case in &report.cases {
            let tally = per_fork.entry(case.fork.clone()).or_default();
            if case.verdict.passed() {
                tally.passed += 1;
                file_tally.passed += 1;
            } else if let CaseVerdict::Skipped(reason) = &case.verdict {
                tally.skipped += 1;
                file_tally.skipped += 1;
                say(format!("SKIP {}: {reason}", case.name));
                skips.push(json!({ "case": case.name, "cases": 1, "reason": reason }));
            } else {
                tally.failed += 1;
                file_tally.failed += 1;
                let (kind, detail) = match &case.verdict {
                    CaseVerdict::PathsDiffer(d) => ("parallel_vs_sequential", d.as_str()),
                    CaseVerdict::Mismatch(d) => ("fixture_mismatch", d.as_str()),
                    CaseVerdict::Pass | CaseVerdict::Skipped(_) => ("pass", ""),
                };
                say(format!(
                    "FAIL {} ({}): {kind}: {detail}",
                    case.name,
                    path.display()
                ));
                failures.push(json!({ "case": case.name, "kind": kind, "error": detail }));
                failing.push(case.name.clone());
            }
        }
        for skip in &file.skipped {
            per_fork.entry(skip.fork.clone()).or_default().skipped += skip.cases;
            file_tally.skipped += skip.cases;
            say(format!(
                "SKIP {} ({} cases): {}",
                skip.name, skip.cases, skip.reason
            ));
            skips.push(json!({ "case": skip.name, "cases": skip.cases, "reason": skip.reason }));
        }
        let file_batched = report.cases.iter().filter(|c| c.batched).count();
        batches += report.batches;
        batched += file_batched;
        if args.json {
            println!(
                "{}",
                json!({
                    "file": path,
                    "cases": report.cases.len(),
                    "passed": file_tally.passed,
                    "failed": file_tally.failed,
                    "skipped": file_tally.skipped,
                    "batches": report.batches,
                    "batched_cases": file_batched,
                    "ok": file_tally.failed == 0,
                    "ms": file_start.elapsed().as_secs_f64() * 1e3,
                    "failures": failures,
                    "skips": skips,
                })
            );
        }
        total.passed += file_tally.passed;
        total.failed += file_tally.failed;
        total.skipped += file_tally.skipped;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();

    if args.json {
        println!(
            "{}",
            json!({
                "summary": true,
                "files": files.len(),
                "threads": threads,
                "passed": total.passed,
                "failed": total.failed,
                "skipped": total.skipped,
                "malformed_files": malformed.len(),
                "batches": batches,
                "batched_cases": batched,
                "seconds": seconds,
                "failing": failing,
                "malformed": malformed,
            })
        );
    } else {
        println!(
            "{:<20} {:>8} {:>8} {:>8}",
            "fork", "passed", "failed", "skipped"
        );
        for (fork, t) in &per_fork {
            println!(
                "{fork:<20} {:>8} {:>8} {:>8}",
                t.passed, t.failed, t.skipped
            );
        }
        println!(
            "{} files in {seconds:.1} s, parallel path with {threads} threads; \
             {batched} cases also checked in {batches} merged blocks",
            files.len()
        );
        if !failing.is_empty() {
            println!("failing cases:");
            for name in &failing {
                println!("  {name}");
            }
        }
        for error in &malformed {
            println!("malformed: {error}");
        }
        println!(
            "{} passed, {} failed, {} skipped",
            total.passed, total.failed, total.skipped
        );
    }
    Ok(if !malformed.is_empty() {
        ExitCode::from(2)
    } else if total.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn short_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
