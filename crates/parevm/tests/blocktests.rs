//! Every blockchain test of the fixtures (execution-spec-tests
//! `blockchain_tests` and ethereum/tests `ValidBlocks`) imported block by
//! block through the parallel path (Block-STM at 1 and 4 threads, optimistic
//! chunks at 3), each block also
//! compared with the sequential path. Any failure fails the test; skips
//! carry their reason and are printed.

use std::path::PathBuf;

use parevm::{Config, Mode};
use parevm_testkit::fixtures::blocktest::{
    read_blockchain_test_file, run_blockchain_test, BlockchainTest, TestOutcome,
};
use parevm_testkit::fixtures::blocktest_db::run_blockchain_test_in_db;
use parevm_testkit::fixtures::{collect_json_files, default_fixtures_dir};

fn suite(relative: &str) -> Option<Vec<PathBuf>> {
    let root = default_fixtures_dir().join(relative);
    if !root.is_dir() {
        let notice = format!(
            "\n!!!!! BLOCKCHAIN TEST FIXTURES MISSING at {} (set PAREVM_FIXTURES) — NOT tested !!!!!\n",
            root.display()
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{notice}");
        eprintln!("{notice}");
        return None;
    }
    Some(collect_json_files(&[root]).unwrap_or_else(|e| panic!("{e}")))
}

fn run_suite(relative: &str, mode: Mode, threads: usize) {
    run_suite_with(relative, mode, threads, run_blockchain_test);
}

fn run_suite_with(
    relative: &str,
    mode: Mode,
    threads: usize,
    runner: fn(&BlockchainTest, &Config) -> TestOutcome,
) {
    let config = Config {
        mode,
        ..Config::block_stm(threads)
    };
    let Some(files) = suite(relative) else { return };
    assert!(!files.is_empty(), "no test files under {relative}");
    let (mut passed, mut skipped, mut failed) = (0usize, Vec::new(), Vec::new());
    for file in &files {
        let tests = read_blockchain_test_file(file).unwrap_or_else(|e| panic!("{e}"));
        for (name, test) in &tests {
            match runner(test, &config) {
                TestOutcome::Passed => passed += 1,
                TestOutcome::Skipped(reason) => skipped.push(format!("{name}: {reason}")),
                TestOutcome::Failed(reason) => failed.push(format!("{name}: {reason}")),
            }
        }
    }
    for skip in &skipped {
        eprintln!("skip {skip}");
    }
    eprintln!(
        "{relative} ({mode:?}) at {threads} threads: {passed} passed, {} failed, {} skipped",
        failed.len(),
        skipped.len()
    );
    assert!(passed > 0, "no test passed under {relative}");
    assert!(
        failed.is_empty(),
        "{} failures:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn eest_blockchain_tests_threads_1() {
    run_suite("eest/blockchain_tests", Mode::BlockStm, 1);
}

#[test]
fn eest_blockchain_tests_threads_4() {
    run_suite("eest/blockchain_tests", Mode::BlockStm, 4);
}

#[test]
fn eest_blockchain_tests_chunked_3() {
    run_suite("eest/blockchain_tests", Mode::Chunked, 3);
}

#[test]
fn valid_blocks_threads_1() {
    run_suite(
        "ethereum-tests/BlockchainTests/ValidBlocks",
        Mode::BlockStm,
        1,
    );
}

#[test]
fn valid_blocks_threads_4() {
    run_suite(
        "ethereum-tests/BlockchainTests/ValidBlocks",
        Mode::BlockStm,
        4,
    );
}

#[test]
fn valid_blocks_chunked_3() {
    run_suite(
        "ethereum-tests/BlockchainTests/ValidBlocks",
        Mode::Chunked,
        3,
    );
}

/// The same tests imported through the state database (`parevm-db`):
/// genesis, every block committed with its state root checked by the
/// database's incremental trie, the final root against the expected
/// post-state.
#[test]
fn eest_blockchain_tests_through_the_database() {
    run_suite_with(
        "eest/blockchain_tests",
        Mode::Auto,
        2,
        run_blockchain_test_in_db,
    );
}

#[test]
fn valid_blocks_through_the_database() {
    run_suite_with(
        "ethereum-tests/BlockchainTests/ValidBlocks",
        Mode::Auto,
        2,
        run_blockchain_test_in_db,
    );
}
