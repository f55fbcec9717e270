//! EVM differential tests: random conflict-heavy blocks executed in parallel
//! at several thread counts must equal the sequential path field by field.

use parevm::{execute_block, BlockResult, Config, ExecutedBy, Mode};
use parevm_testkit::gen::{random_block, GenParams};
use parevm_testkit::workload::{Preset, Size, Workload, WorkloadKind, WorkloadSpec};
use proptest::prelude::*;

const THREADS: [usize; 5] = [1, 2, 4, 8, 16];

/// The workload run by the sequential loop: the reference.
fn sequential_of(workload: &Workload) -> BlockResult {
    execute_block(&workload.storage, &workload.input, &Config::sequential()).expect("sequential")
}

/// The workload run in `mode` at `threads`; panics, naming `case`, unless
/// it equals `reference` field by field.
fn exact_run(
    workload: &Workload,
    reference: &BlockResult,
    mode: Mode,
    threads: usize,
    case: &str,
) -> BlockResult {
    let config = Config {
        mode,
        ..Config::block_stm(threads)
    };
    let result = execute_block(&workload.storage, &workload.input, &config)
        .unwrap_or_else(|e| panic!("{case} {mode:?} at {threads} threads: {e}"));
    if let Some(diff) = reference.first_difference(&result) {
        panic!("{case} {mode:?} at {threads} threads: {diff}");
    }
    result
}

fn check_seed(seed: u64, params: &GenParams) -> Result<(), TestCaseError> {
    let (storage, input) = random_block(seed, params);
    let sequential = execute_block(&storage, &input, &Config::sequential());
    // Pure Block-STM and optimistic chunks at every thread count (random
    // blocks are conflict-heavy: chunks meet conflicts all the time), and
    // `auto` at a few.
    let with_mode = |mode: Mode| {
        move |threads: usize| Config {
            mode,
            ..Config::block_stm(threads)
        }
    };
    let configs = THREADS
        .map(Config::block_stm)
        .into_iter()
        .chain(THREADS.map(with_mode(Mode::Chunked)))
        .chain(THREADS.map(with_mode(Mode::ChunkedDeltas)))
        .chain([2, 8].map(with_mode(Mode::Auto)));
    for config in configs {
        let threads = config.threads;
        let parallel = execute_block(&storage, &input, &config);
        match (&sequential, &parallel) {
            (Ok(s), Ok(p)) => {
                if let Some(diff) = s.first_difference(p) {
                    return Err(TestCaseError::fail(format!(
                        "seed {seed} ({:?}, {} txs) at {threads} threads: {diff}",
                        input.spec,
                        input.txs.len()
                    )));
                }
            }
            (Err(s), Err(p)) => prop_assert_eq!(s, p, "seed {} threads {}", seed, threads),
            _ => {
                return Err(TestCaseError::fail(format!(
                    "seed {seed} at {threads} threads: sequential {:?} vs parallel {:?}",
                    sequential.as_ref().map(|r| r.gas_used()),
                    parallel.as_ref().map(|r| r.gas_used())
                )))
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_blocks_match_sequential(seed in any::<u64>(), txs in 1usize..500, accounts in 2usize..20) {
        check_seed(seed, &GenParams { txs, accounts, invalid_percent: 5, payout_percent: 0 })?;
    }

    /// Payout blocks: one payer's plain transfers, some to contracts that
    /// run code or read the payer's balance, some payers short of funds
    /// (chunks predict the payer and shift its balance).
    #[test]
    fn random_payout_blocks_match_sequential(seed in any::<u64>(), txs in 1usize..300, accounts in 2usize..8) {
        check_seed(seed, &GenParams { txs, accounts, invalid_percent: 5, payout_percent: 100 })?;
    }

    #[test]
    fn small_hot_blocks_match_sequential(seed in any::<u64>(), txs in 1usize..60) {
        check_seed(seed, &GenParams { txs, accounts: 2, invalid_percent: 10, payout_percent: 0 })?;
    }
}

/// Most generated blocks must execute (not end in an invalid transaction),
/// or the differential test above would mostly compare errors.
#[test]
fn generated_blocks_mostly_execute() {
    let params = GenParams {
        txs: 200,
        accounts: 6,
        invalid_percent: 5,
        payout_percent: 0,
    };
    let ok = (0..40u64)
        .filter(|seed| {
            let (storage, input) = random_block(*seed, &params);
            execute_block(&storage, &input, &Config::sequential()).is_ok()
        })
        .count();
    assert!(ok >= 30, "only {ok}/40 generated blocks executed");
}

/// `auto` on a block that is one dependency chain the up-front prediction
/// cannot see (every lending operation on the same pool, from fresh
/// senders, with no address in the calldata): Block-STM
/// wastes work, gives up, and the sequential loop finishes from the final
/// prefix. The result must still be the sequential one, and the switch must
/// happen.
#[test]
fn auto_switches_to_sequential_on_a_chain_and_stays_exact() {
    let workload = WorkloadSpec::preset(WorkloadKind::Lending, Preset::HotPool, Size::Txs(600))
        .build()
        .expect("workload");
    let sequential = sequential_of(&workload);
    let mut switched = 0;
    for threads in [2, 4, 8] {
        for _ in 0..4 {
            let auto = exact_run(&workload, &sequential, Mode::Auto, threads, "hot pool");
            if let Some(at) = auto.stats.sequential_from {
                assert!(at < workload.input.txs.len());
                switched += 1;
            }
        }
    }
    assert!(
        switched > 0,
        "auto never left Block-STM on a fully chained block"
    );
}

/// When `auto` leaves Block-STM, the sequential loop keeps the executions
/// above the final prefix whose answers still hold: lending on one hot
/// pool for three transactions in five, on fresh pools for the others
/// (Block-STM gives up in the chain, with independent operations above it
/// already executed). Exact, and some executions are kept.
#[test]
fn auto_keeps_block_stm_executions_that_hold_after_giving_up() {
    let spec = WorkloadSpec {
        hot_pool: 0.6,
        ..WorkloadSpec::new(WorkloadKind::Lending, Size::Txs(600))
    };
    let workload = spec.build().expect("workload");
    let sequential = sequential_of(&workload);
    let (mut gave_up, mut kept) = (0, 0);
    for threads in [2, 4] {
        for _ in 0..4 {
            let auto = exact_run(
                &workload,
                &sequential,
                Mode::Auto,
                threads,
                "partly hot pool",
            );
            if matches!(auto.stats.executed_by, ExecutedBy::BlockStm(_))
                && auto.stats.sequential_from.is_some()
            {
                gave_up += 1;
                kept += auto.stats.kept_after_handover;
            }
        }
    }
    assert!(gave_up > 0, "Block-STM never gave up");
    assert!(kept > 0, "no Block-STM execution was kept after a give-up");
}

/// Chains of value flow (each sender was paid by the previous transaction)
/// are predicted from the transactions alone: `auto` runs them sequentially
/// from the start, while the same workloads without chains, where no two
/// transactions share a sender, recipient or contract entry, run as
/// optimistic chunks and finish without a conflict.
#[test]
fn auto_predicts_value_flow_chains_and_independence() {
    for kind in [
        WorkloadKind::Raw,
        WorkloadKind::Erc20,
        WorkloadKind::Amm,
        WorkloadKind::Lending,
        WorkloadKind::Mixed,
    ] {
        for preset in [Preset::Chained, Preset::Independent] {
            let workload = WorkloadSpec::preset(kind, preset, Size::Txs(300))
                .build()
                .expect("workload");
            let sequential = sequential_of(&workload);
            let case = format!("{kind:?} {preset:?}");
            let auto = exact_run(&workload, &sequential, Mode::Auto, 4, &case);
            let predicted = preset == Preset::Independent;
            let expected = if predicted {
                ExecutedBy::Chunked(4)
            } else {
                ExecutedBy::Sequential
            };
            // Lending chains share one pool but pass no value: Block-STM
            // finds them (the give-up test above), not the prediction.
            if kind != WorkloadKind::Lending || preset == Preset::Independent {
                assert_eq!(auto.stats.executed_by, expected, "{kind:?} {preset:?}");
            }
            if predicted {
                assert_eq!(auto.stats.sequential_from, None, "{kind:?} {preset:?}");
            }
        }
    }
}

/// 1,200 independent ERC-20 transfers, of which those at `hot` pay the
/// workloads' hot holder instead (same amounts).
fn transfers_paying_the_hot_holder_at(hot: &[usize]) -> Workload {
    use parevm_testkit::workload::contracts::{transfer_calldata, HOT_ACCOUNT};
    let spec = WorkloadSpec::new(WorkloadKind::Erc20, Size::Txs(1_200));
    let mut workload = spec.build().expect("workload");
    for &at in hot {
        let tx = &mut workload.input.txs[at];
        let amount = alloy_primitives::U256::from_be_slice(&tx.data[36..68]);
        tx.data = transfer_calldata(HOT_ACCOUNT, amount);
    }
    workload
}

/// Chunks large enough to have their state diffs joined next to the
/// commit, then a conflict late in the block: the joined diffs, the
/// sequential rest and the beneficiary must add up to the sequential
/// loop's state diff. Transactions 500 and 1,000 pay one hot account: they
/// fall in different chunks at 2 and 3 threads however the chunks are
/// split (stealing only adds boundaries), so the conflict is exactly at
/// 1,000.
#[test]
fn large_chunks_then_a_late_conflict_stay_exact() {
    let workload = transfers_paying_the_hot_holder_at(&[500, 1_000]);
    let sequential = sequential_of(&workload);
    for threads in [2, 3] {
        let chunked = exact_run(
            &workload,
            &sequential,
            Mode::Chunked,
            threads,
            "late conflict",
        );
        assert_eq!(
            chunked.stats.sequential_from,
            Some(1_000),
            "at {threads} threads the chunks should hold up to the second payment"
        );
    }
}

/// After the first conflict the sequential loop keeps every chunk
/// execution whose answers still hold: one transfer to the hot holder in
/// the second half of the block (conflicting with one in the first half)
/// is executed again, the 499 transfers after it are kept, and the result
/// is exact. Accepting a stale execution would make the hot holder's
/// balance wrong (the second payment read it before the first).
#[test]
fn chunks_keep_the_executions_that_still_hold_after_a_conflict() {
    let workload = transfers_paying_the_hot_holder_at(&[100, 700]);
    let sequential = sequential_of(&workload);
    for threads in [2, 3, 8] {
        let chunked = exact_run(&workload, &sequential, Mode::Chunked, threads, "kept");
        assert_eq!(chunked.stats.sequential_from, Some(700), "{threads}");
        assert_eq!(chunked.stats.kept_after_handover, 499, "{threads}");
        assert_eq!(chunked.stats.reexecutions, 1, "{threads}");
    }
}

/// A block that is one chain only through deposits (every transaction
/// pays one account without code; one of them carries calldata, so the
/// block does not look independent): `auto` runs it as chunks, which
/// predict the deposit address, not sequentially; exact at every thread
/// count, whether the prediction holds (before the call) or not (after
/// it: the sequential loop takes over and keeps what still holds).
#[test]
fn auto_runs_a_block_serial_only_through_deposits_as_chunks() {
    let mut workload =
        WorkloadSpec::preset(WorkloadKind::Raw, Preset::HotRecipient, Size::Txs(600))
            .build()
            .expect("workload");
    let at = 560;
    let tx = &mut workload.input.txs[at];
    tx.data = alloy_primitives::Bytes::from_static(&[1]);
    tx.gas_limit = 30_000;
    let sequential = sequential_of(&workload);
    for threads in [2, 3, 8] {
        let auto = exact_run(&workload, &sequential, Mode::Auto, threads, "deposits");
        assert_eq!(auto.stats.executed_by, ExecutedBy::Chunked(threads));
        if let Some(from) = auto.stats.sequential_from {
            assert!(from > at, "the prediction holds before the call ({from})");
        }
    }
}

/// The random payout blocks reach the chunks' balance shifts (so that the
/// proptest over them checks shifts, not only conflicts), and stay exact
/// where they do.
#[test]
fn random_payout_blocks_shift_balances() {
    let params = GenParams {
        txs: 200,
        accounts: 4,
        invalid_percent: 0,
        payout_percent: 100,
    };
    let shifted = exact_random_runs(&params, Mode::Chunked, |stats| {
        usize::from(stats.shifted_balances > 0)
    });
    assert!(shifted >= 10, "only {shifted} of 80 runs shifted a balance");
}

/// Runs the random blocks of seeds 0..40 in `mode` at 2 and 4 threads,
/// asserts each result (or error) is the sequential one, and sums `count`
/// over the runs that executed. How chunks split depends on timing
/// (stealing): two thread counts, so that a loaded machine cannot make
/// every split miss what `count` looks for.
fn exact_random_runs(
    params: &GenParams,
    mode: Mode,
    count: impl Fn(&parevm::ExecStats) -> usize,
) -> usize {
    let mut total = 0;
    for seed in 0..40u64 {
        let (storage, input) = random_block(seed, params);
        let sequential = execute_block(&storage, &input, &Config::sequential());
        for threads in [2, 4] {
            let config = Config {
                mode,
                ..Config::block_stm(threads)
            };
            let parallel = execute_block(&storage, &input, &config);
            match (&sequential, &parallel) {
                (Ok(s), Ok(p)) => {
                    assert_eq!(s.first_difference(p), None, "seed {seed} at {threads}");
                    total += count(&p.stats);
                }
                (s, p) => assert_eq!(
                    s.as_ref().err(),
                    p.as_ref().err(),
                    "seed {seed} at {threads}"
                ),
            }
        }
    }
    total
}

/// Random blocks of 200 transactions from many senders, so that chunks are
/// not all cut short by a sender's nonce: the mixer's four slots are what
/// they share.
fn many_senders() -> GenParams {
    GenParams {
        txs: 200,
        accounts: 1_000,
        ..GenParams::default()
    }
}

/// Random conflict-heavy blocks through chunks: the sequential loop keeps
/// some executions after a conflict and re-executes others (exactness at
/// every thread count is `check_seed`'s; this makes sure both branches of
/// the check are taken).
#[test]
fn random_blocks_keep_some_chunk_executions_and_repeat_others() {
    let params = many_senders();
    let (mut kept, mut repeated) = (0, 0);
    for seed in 0..40 {
        let (storage, input) = random_block(seed, &params);
        let sequential = execute_block(&storage, &input, &Config::sequential());
        let config = Config {
            mode: Mode::Chunked,
            ..Config::block_stm(4)
        };
        let chunked = execute_block(&storage, &input, &config);
        match (&sequential, &chunked) {
            (Ok(s), Ok(c)) => {
                assert_eq!(s.first_difference(c), None, "seed {seed}");
                kept += c.stats.kept_after_handover;
                repeated += c.stats.reexecutions;
            }
            (s, c) => assert_eq!(s.as_ref().err(), c.as_ref().err(), "seed {seed}"),
        }
    }
    assert!(kept > 0, "no execution was kept after a conflict");
    assert!(repeated > 0, "no execution was repeated");
}

/// Optimistic chunks on blocks full of conflicts (one hot pool, one hot
/// token recipient): every thread count, exact results, and the conflict
/// is found (the sequential loop takes over before the end). A chain of
/// plain ETH transfers (each recipient sends the next one) meets none:
/// chunks predict every account from the transfers before them.
#[test]
fn chunks_stop_at_the_first_conflict_and_stay_exact() {
    let workload = WorkloadSpec::preset(WorkloadKind::Raw, Preset::Chained, Size::Txs(200))
        .build()
        .expect("workload");
    let sequential = sequential_of(&workload);
    for threads in [1, 2, 3, 8, 16] {
        let chunked = exact_run(&workload, &sequential, Mode::Chunked, threads, "raw chain");
        assert_eq!(
            chunked.stats.sequential_from, None,
            "raw chain at {threads}"
        );
    }
    for (kind, preset) in [
        (WorkloadKind::Lending, Preset::HotPool),
        (WorkloadKind::Amm, Preset::HotRecipient),
        (WorkloadKind::Erc20, Preset::HotRecipient),
    ] {
        let workload = WorkloadSpec::preset(kind, preset, Size::Txs(200))
            .build()
            .expect("workload");
        let sequential = sequential_of(&workload);
        let case = format!("{kind:?} {preset:?}");
        for threads in [1, 2, 3, 8, 16] {
            let chunked = exact_run(&workload, &sequential, Mode::Chunked, threads, &case);
            assert_eq!(chunked.stats.executed_by, ExecutedBy::Chunked(threads));
            // One chunk is the sequential loop; more meet a conflict.
            assert_eq!(
                chunked.stats.sequential_from.is_some(),
                threads > 1,
                "{kind:?} {preset:?} at {threads} threads"
            );
        }
    }
}

/// Chunks that track storage deltas on the blocks whose conflicts are
/// shared contract entries: every thread count, exact results; transfers
/// to one holder (also as a swap's output) meet no conflict at all, the
/// holder's balance being corrected in every chunk after the first. So do
/// chained transfers (each sender pays the next one), because every
/// sender held enough before the block: its balance check holds on the
/// corrected value too. Swaps on one pool multiply the reserves: those
/// conflict.
#[test]
fn delta_chunks_stay_exact_on_hot_blocks() {
    for (kind, preset, commutes) in [
        (WorkloadKind::Erc20, Preset::HotRecipient, true),
        (WorkloadKind::Amm, Preset::HotRecipient, true),
        (WorkloadKind::Amm, Preset::HotPool, false),
        (WorkloadKind::Lending, Preset::HotPool, false),
        (WorkloadKind::Mixed, Preset::HotPool, false),
        (WorkloadKind::Erc20, Preset::Chained, true),
        (WorkloadKind::Erc20, Preset::Independent, true),
    ] {
        let workload = WorkloadSpec::preset(kind, preset, Size::Txs(300))
            .build()
            .expect("workload");
        let sequential = sequential_of(&workload);
        let case = format!("{kind:?} {preset:?}");
        for threads in [1, 2, 3, 8, 16] {
            let run = exact_run(&workload, &sequential, Mode::ChunkedDeltas, threads, &case);
            if commutes {
                assert_eq!(run.stats.sequential_from, None, "{case} at {threads}");
            }
            if preset == Preset::HotRecipient && threads > 1 {
                assert!(run.stats.corrected_slots > 0, "{case} at {threads}");
            }
            if threads > 1 && !commutes {
                assert!(run.stats.sequential_from.is_some(), "{case} at {threads}");
            }
        }
    }
}

/// `auto` sends a block of transfers to one token holder to chunks that
/// track deltas (it looks serial, but only through one contract entry),
/// and a hot pool still to the sequential loop.
#[test]
fn auto_tracks_deltas_on_transfers_to_one_holder() {
    let workload = WorkloadSpec::preset(WorkloadKind::Erc20, Preset::HotRecipient, Size::Txs(400))
        .build()
        .expect("workload");
    let sequential = sequential_of(&workload);
    let auto = exact_run(&workload, &sequential, Mode::Auto, 2, "hot recipient");
    assert_eq!(auto.stats.executed_by, ExecutedBy::Chunked(2));
    assert_eq!(auto.stats.sequential_from, None);
    assert!(auto.stats.corrected_slots > 0);
    let workload = WorkloadSpec::preset(WorkloadKind::Amm, Preset::HotPool, Size::Txs(400))
        .build()
        .expect("workload");
    let sequential = sequential_of(&workload);
    let auto = exact_run(&workload, &sequential, Mode::Auto, 2, "hot pool");
    assert_eq!(auto.stats.executed_by, ExecutedBy::Sequential);
}

/// Random blocks (increments, decisions on stored values, values logged,
/// reverts): tracking corrects slots on some of them, and every result is
/// exact (`check_seed` covers the exactness at every thread count; this
/// makes sure the corrections are not vacuous).
#[test]
fn delta_chunks_correct_slots_of_random_blocks() {
    let corrected = exact_random_runs(&many_senders(), Mode::ChunkedDeltas, |stats| {
        stats.corrected_slots
    });
    assert!(corrected > 0, "no random block had a slot corrected");
}
