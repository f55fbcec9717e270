//! Every execution-spec state test in the shared fixtures, for every fork it
//! lists, through the parallel path at 1 and 4 threads: each case in a
//! block of its own and independent cases merged into larger blocks (see
//! `parevm_testkit::fixtures::statetest`). Fails on any mismatch with the fixture
//! or between the parallel and the sequential path.
//!
//! Fixtures come from `$PAREVM_FIXTURES` (default `../shared/fixtures` next
//! to the repository). Without them the test prints a loud notice and
//! passes, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use parevm::Config;
use parevm_testkit::fixtures::statetest::{self, CaseVerdict};

fn fixtures_dir() -> PathBuf {
    match std::env::var_os("PAREVM_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures"
        )),
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path()
        })
        .collect();
    entries.sort();
    for entry in entries {
        let name = entry
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if entry.is_dir() {
            collect(&entry, out);
        } else if name.ends_with(".json") || name.ends_with(".json.gz") {
            out.push(entry);
        }
    }
}

/// Largest number of independent cases merged into one block.
const MAX_BATCH: usize = 64;

#[test]
fn all_state_tests_parallel_1_and_4_threads() {
    let dir = fixtures_dir().join("eest/state_tests");
    if !dir.is_dir() {
        let message = format!(
            "\n\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! state tests NOT RUN: fixtures missing at {}\n\
             !!! set PAREVM_FIXTURES to the shared fixtures directory\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
            dir.display()
        );
        eprintln!("{message}");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "fixtures are required under CI=true: {message}"
        );
        return;
    }
    let mut files = Vec::new();
    collect(&dir, &mut files);
    assert!(
        !files.is_empty(),
        "no state-test files under {}",
        dir.display()
    );

    // Files are checked on several threads at once (each check also starts
    // the engine's own workers): the cases are independent, and this keeps
    // the test's wall time close to the CLI's on a small machine.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    for threads in [1, 4] {
        let start = Instant::now();
        let config = Config::block_stm(threads);
        let next = AtomicUsize::new(0);
        let passed = AtomicUsize::new(0);
        let batched = AtomicUsize::new(0);
        let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let skips: Mutex<Vec<String>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let file = match statetest::read_file(path) {
                        Ok(file) => file,
                        Err(error) => {
                            failures
                                .lock()
                                .expect("no panics while held")
                                .push(format!("unreadable: {error}"));
                            continue;
                        }
                    };
                    for skip in &file.skipped {
                        skips.lock().expect("no panics while held").push(format!(
                            "{} ({} cases): {}",
                            skip.name, skip.cases, skip.reason
                        ));
                    }
                    let report = statetest::check_file(&file, &config, MAX_BATCH);
                    for case in report.cases {
                        if case.batched {
                            batched.fetch_add(1, Ordering::Relaxed);
                        }
                        match case.verdict {
                            CaseVerdict::Pass => {
                                passed.fetch_add(1, Ordering::Relaxed);
                            }
                            CaseVerdict::Skipped(reason) => skips
                                .lock()
                                .expect("no panics while held")
                                .push(format!("{}: {reason}", case.name)),
                            CaseVerdict::Mismatch(d) => {
                                failures.lock().expect("no panics while held").push(format!(
                                    "{} ({}): fixture mismatch: {d}",
                                    case.name,
                                    path.display()
                                ))
                            }
                            CaseVerdict::PathsDiffer(d) => {
                                failures.lock().expect("no panics while held").push(format!(
                                    "{} ({}): PARALLEL != SEQUENTIAL: {d}",
                                    case.name,
                                    path.display()
                                ))
                            }
                        }
                    }
                });
            }
        });
        let failures = failures.into_inner().expect("workers finished");
        let skips = skips.into_inner().expect("workers finished");
        for skip in &skips {
            eprintln!("SKIP {skip}");
        }
        eprintln!(
            "state tests, parallel path with {threads} threads: {} passed ({} also in merged blocks), \
             {} failed, {} skipped groups, {} files, {:.1} s",
            passed.load(Ordering::Relaxed),
            batched.load(Ordering::Relaxed),
            failures.len(),
            skips.len(),
            files.len(),
            start.elapsed().as_secs_f64()
        );
        assert!(
            failures.is_empty(),
            "{} state-test failures at {threads} threads (first 50):\n{}",
            failures.len(),
            failures
                .iter()
                .take(50)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(passed.load(Ordering::Relaxed) > 0, "no state test ran");
    }
}
