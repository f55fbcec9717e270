//! `parevm blocktest`: import blockchain tests block by block through the
//! parallel path with whole-block processing.

use std::path::PathBuf;
use std::process::ExitCode;

use parevm::{Config, Mode};
use parevm_testkit::fixtures::blocktest::{
    read_blockchain_test_file, run_blockchain_test, TestOutcome,
};
use parevm_testkit::fixtures::blocktest_db::run_blockchain_test_in_db;
use parevm_testkit::fixtures::collect_json_files;
use serde_json::json;

use crate::report::progress_bar;
use crate::util::{default_threads, timed};

/// Arguments of `parevm blocktest`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Blockchain test files (.json / .json.gz) or directories of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Worker threads of the parallel path.
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// The parallel path to check against the sequential one: `block-stm`,
    /// `chunked` (optimistic chunks), `chunked-deltas` or `auto`.
    #[arg(long, value_enum, default_value_t = CheckedMode::BlockStm)]
    mode: CheckedMode,
    /// Print one JSON object per test and a final summary object.
    #[arg(long)]
    json: bool,
    /// Import each test through a state database (in memory): every block
    /// committed with its state root checked by the database's
    /// incremental trie, instead of the in-memory state.
    #[arg(long)]
    db: bool,
}

/// `--mode` of `blocktest`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CheckedMode {
    /// Block-STM to the end (`Mode::BlockStm`).
    BlockStm,
    /// Optimistic chunks (`Mode::Chunked`).
    Chunked,
    /// Optimistic chunks that track storage deltas (`Mode::ChunkedDeltas`).
    ChunkedDeltas,
    /// The library default (`Mode::Auto`).
    Auto,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threads = args.threads.max(1);
    let config = Config {
        mode: match args.mode {
            CheckedMode::BlockStm => Mode::BlockStm,
            CheckedMode::Chunked => Mode::Chunked,
            CheckedMode::ChunkedDeltas => Mode::ChunkedDeltas,
            CheckedMode::Auto => Mode::Auto,
        },
        ..Config::block_stm(threads)
    };
    let files = collect_json_files(&args.paths)?;
    let bar = progress_bar(files.len() as u64, !args.json);
    let (mut passed, mut failed, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let mut total_ms = 0.0;
    for file in &files {
        bar.set_message(file.display().to_string());
        let tests = read_blockchain_test_file(file)?;
        for (name, test) in &tests {
            let (outcome, ms) = timed(|| {
                if args.db {
                    run_blockchain_test_in_db(test, &config)
                } else {
                    run_blockchain_test(test, &config)
                }
            });
            total_ms += ms;
            if args.json {
                let mut object = json!({
                    "file": file.display().to_string(),
                    "name": name,
                    "network": test.network,
                    "blocks": test.blocks.len(),
                    "ok": outcome == TestOutcome::Passed,
                    "ms": ms,
                });
                match &outcome {
                    TestOutcome::Failed(e) => object["error"] = json!(e),
                    TestOutcome::Skipped(r) => object["skipped"] = json!(r),
                    TestOutcome::Passed => {}
                }
                println!("{object}");
            }
            match outcome {
                TestOutcome::Passed => passed.push(name.clone()),
                TestOutcome::Failed(e) => {
                    if !args.json {
                        bar.suspend(|| eprintln!("FAIL {name} ({}): {e}", file.display()));
                    }
                    failed.push((name.clone(), e));
                }
                TestOutcome::Skipped(r) => {
                    if !args.json {
                        bar.suspend(|| eprintln!("skip {name}: {r}"));
                    }
                    skipped.push((name.clone(), r));
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if args.json {
        println!(
            "{}",
            json!({
                "summary": true,
                "files": files.len(),
                "passed": passed.len(),
                "failed": failed.len(),
                "skipped": skipped.len(),
                "failed_tests": failed.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                "threads": threads,
                "ms": total_ms,
            })
        );
    } else {
        if !failed.is_empty() {
            println!("failed tests:");
            for (name, error) in &failed {
                println!("  {name}: {error}");
            }
        }
        println!(
            "{} files, {} tests at {threads} threads in {:.1} s",
            files.len(),
            passed.len() + failed.len() + skipped.len(),
            total_ms / 1e3
        );
        println!(
            "{} passed, {} failed, {} skipped",
            passed.len(),
            failed.len(),
            skipped.len()
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
