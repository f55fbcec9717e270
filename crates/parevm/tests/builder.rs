//! The builder's option (`execute_block_skipping_invalid`): random valid
//! blocks with transactions sprinkled in that are invalid whatever runs
//! before them (copies of the block's own with a gas limit above the
//! block's, rejected before their nonce is looked at). Exactly those are
//! left out, on every path and at 1-16 threads, and what remains is the
//! valid block as it was.

use parevm::{execute_block, execute_block_skipping_invalid, Config, Mode, Skipped};
use parevm_testkit::gen::{random_block, GenParams};

#[test]
fn invalid_transactions_are_left_out_the_same_everywhere() {
    let params = GenParams {
        txs: 60,
        invalid_percent: 0,
        ..GenParams::default()
    };
    for seed in 0..12u64 {
        let (storage, valid) = random_block(seed, &params);
        let too_big = valid.block.gas_limit + 1;
        // After every sixth transaction (shifted by the seed), a copy of it
        // that can never fit.
        let mut input = valid.clone();
        input.txs.clear();
        let mut spoiled = Vec::new();
        for (i, tx) in valid.txs.iter().enumerate() {
            input.txs.push(tx.clone());
            if (i + seed as usize) % 6 == 2 {
                let mut copy = tx.clone();
                copy.gas_limit = too_big;
                spoiled.push(input.txs.len());
                input.txs.push(copy);
            }
        }
        assert!(!spoiled.is_empty());
        let expected = execute_block(&storage, &valid, &Config::sequential())
            .expect("the block without them is valid");
        for mode in [
            Mode::Sequential,
            Mode::BlockStm,
            Mode::ChunkedDeltas,
            Mode::Auto,
        ] {
            for threads in [1, 2, 3, 4, 8, 16] {
                let config = Config {
                    threads: std::num::NonZeroUsize::new(threads).expect("positive"),
                    mode,
                };
                let (result, skipped) =
                    execute_block_skipping_invalid(&storage, &input, &config).expect("executes");
                let indices: Vec<usize> = skipped.iter().map(|s: &Skipped| s.index).collect();
                assert_eq!(
                    indices, spoiled,
                    "seed {seed}, {mode:?} at {threads} threads"
                );
                assert!(skipped.iter().all(|s| !s.reason.is_empty()));
                assert_eq!(
                    expected.first_difference(&result),
                    None,
                    "seed {seed}, {mode:?} at {threads} threads"
                );
            }
        }
    }
}

#[test]
fn a_valid_block_runs_once_and_skips_nothing() {
    let (storage, input) = random_block(
        99,
        &GenParams {
            invalid_percent: 0,
            ..GenParams::default()
        },
    );
    let (result, skipped) =
        execute_block_skipping_invalid(&storage, &input, &Config::block_stm(4)).expect("executes");
    assert!(skipped.is_empty());
    let plain = execute_block(&storage, &input, &Config::sequential()).expect("executes");
    assert_eq!(plain.first_difference(&result), None);
}
