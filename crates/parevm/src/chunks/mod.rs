//! Optimistic chunks: the cheap parallel path for blocks whose transactions
//! do not touch each other's state.
//!
//! The block is cut into one contiguous chunk per thread. Every chunk runs
//! like the sequential loop, on its own overlay over the *pre-block*
//! storage, as if the chunks before it had written nothing; it logs each
//! read that reached the pre-block storage (an account, a slot, a storage
//! probe) with the transaction that made it. Then the guess is checked:
//!
//! ```text
//!  chunk 0          chunk 1              chunk 2
//!  [tx0 .. tx9]     [tx10 .. tx19]       [tx20 .. tx29]
//!  exact: its       exact up to its      exact up to its first read of
//!  base is the      first read of a      something chunks 0 or 1 wrote,
//!  pre-block state  location chunk 0     if chunks 0 and 1 are exact
//!                   wrote
//! ```
//!
//! Why this is exact: a transaction reads, for each location, the newest
//! write below it. In chunk `c`, a read served by the chunk's own overlay
//! is the newest write below it also in the whole block; a read that went
//! to the pre-block storage is right unless an earlier chunk wrote the
//! location. So the transactions of chunk `c` before its first such read
//! computed exactly what the sequential loop computes, provided the
//! earlier chunks are exact in full. The longest prefix of the block that
//! passes is kept; the rest is left to the caller (it runs the
//! sequential loop on top of the prefix).
//!
//! A location written earlier in the same chunk is never logged: the read
//! that loaded it from the pre-block storage the first time, by the first
//! transaction of the chunk to touch it, is the one that decides.
//!
//! "Changed" means the chunk's final value differs from the pre-block one:
//! revm reports every account a transaction touched (a token contract
//! called by every transaction), and counting those would make every chunk
//! conflict. Only locations two chunks share pay for that comparison.
//!
//! Chunks start with about equal gas limits, one per thread. Gas limits
//! misjudge work, so a thread that runs out takes the back half of the
//! chunk with the most unclaimed transactions (each chunk hands out its
//! transactions one at a time under a small lock); the stolen half is one
//! more chunk, checked like the others.
//!
//! Compared with Block-STM there is no multi-version memory, no scheduler
//! and no validation per transaction: a transaction costs what it costs in
//! the sequential loop plus a vector push per pre-block read and per
//! answer from its own overlay, and the check is one hash lookup per logged read and
//! earlier chunk. The price: after the first conflict the block is
//! finished by the sequential loop, on one thread. The loop keeps each
//! execution whose recorded answers (every answer this chunk's database
//! gave, `Seen`) it would give too, so a conflict costs the transactions
//! it reaches rather than the rest of the block, but the loop checks the
//! rest one transaction at a time. `auto` mode uses chunks on blocks
//! predicted free of dependencies, or serial only through deposits or
//! shared contract entries (tracked deltas).
//!
//! Each chunk also merges its own transactions' changes into one sorted
//! diff when it ends, on its own thread: the block's state diff is then a
//! join of the chunk diffs in order (`output::join_ranges`), rather than a
//! merge of every transaction's changes after the parallel phase, and the
//! join runs next to the commit, which it does not depend on. The
//! beneficiary is left out of the chunk diffs; its credits are known only
//! once the block is committed (`output::complete_after_chunks`).
//!
//! A sender with transactions before the chunk (an exchange paying out
//! across the whole block) would make every chunk after the first fail on
//! its nonce, and a recipient paid before the chunk (an exchange's deposit
//! address) on its balance. So when a chunk reads such an account from the
//! pre-block storage and all the earlier transactions that sent from it or
//! paid it are plain transfers, the chunk reads a *prediction* instead: the
//! pre-block account (or a new one) with the nonce advanced by the
//! transfers it sent, and the balance raised by the values it received and
//! lowered by the values it sent plus 21,000 gas each at their effective
//! price (`AccountFlows`). The read is
//! logged as predicted, and the check compares the prediction with the
//! account's real value before the chunk (the last earlier chunk that holds
//! it, else the pre-block storage): a transaction's execution depends only
//! on the values it read, so a prediction that equals the real value is as
//! good as reading it, and one that does not (a transfer to a contract,
//! whose code costs gas and may move value, or value the account got
//! from a contract) is a conflict like any other.
//!
//! A prediction wrong only by the balance is often still good: the
//! earlier transfers ran code and used more gas than 21,000 (an exchange
//! paying out to a contract), or the account is the beneficiary, whose
//! fee credits the prediction does not count (a mining pool paying out in
//! its own block; the beneficiary is predicted only as a sender or
//! recipient of plain transfers before the chunk). For an account without
//! code whose nonce was right, what the chunk's transactions did with the
//! balance is usually only revm's check that a sender can pay for its
//! transaction, and additions: the check then *shifts* the account's
//! balance in the chunk's outputs by the difference, after redoing each
//! such decision with the real balance (`account_shifts`). Any other use
//! of the balance ends the exact part of the chunk: a `BALANCE` or
//! `SELFBALANCE` (transactions from or to a predictable account run with
//! the inspector, which notes them), a transaction that ran code without
//! the inspector, a delegation, or a possibly empty account.
//!
//! The beneficiary is handled like in Block-STM: a fee credit that is the
//! only use of the beneficiary in a transaction stays a lazy credit, summed in
//! the chunk and applied when a later transaction of the chunk reads the
//! beneficiary (which also logs a pre-block read of it: any credit in an
//! earlier chunk makes that a conflict).

mod check;
mod db;
mod execute;
mod flows;
mod handover;
mod shift;
mod split;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustc_hash::FxHashMap;

use self::check::find_conflicts;
use self::execute::{run_chunk, ChunkRun};
use self::flows::AccountFlows;
use self::handover::replay_run;
use self::shift::{account_shifts, apply_shifts, shift_accounts, slot_shifts};
use self::split::{boundaries, steal, Chunk};
use crate::error::{ExecError, Result};
use crate::finish::Prefix;
use crate::input::BlockInput;
use crate::output::merge::PartialState;
use crate::output::ExecutedBy;
use crate::pool::fan_out;
use crate::sequential::Replay;
use crate::storage::Storage;

/// Runs the block as optimistic chunks on `threads` threads and returns the
/// longest prefix that the check proves exact (module docs), in four
/// phases: [`execute`] the chunks, [`find_conflicts`] in each against the
/// chunks before it, [`correct`] what shifts can correct (in block order),
/// and [`assemble`] the prefix and the executions after it.
///
/// Each thread starts with one chunk of about equal gas limit; a thread
/// that finishes early splits the chunk with the most work left and runs
/// its back half, so that gas limits that misjudge the work do not leave a
/// thread idle.
///
/// With `predict_accounts` false no account is predicted: the caller
/// knows that none sends or receives twice (`choose::independence`).
///
/// # Errors
/// [`ExecError::Internal`] for a panic in a chunk or in the check (a bug),
/// or chunks that do not cover the block.
pub(crate) fn run<S: Storage + Sync>(
    storage: &S,
    input: &BlockInput,
    threads: usize,
    track: bool,
    predict_accounts: bool,
) -> Result<Prefix> {
    let internal = ExecError::Internal;
    let flows: OnceLock<AccountFlows> = OnceLock::new();
    let mut runs =
        execute(storage, input, threads, track, predict_accounts, &flows).map_err(internal)?;
    let check::Conflicts {
        first: mut conflicts,
        shared,
        parts,
    } = find_conflicts(&runs, threads).map_err(internal)?;
    let (shifts, shifted_accounts) =
        correct(&mut runs, &mut conflicts, &shared, parts, storage, input).map_err(internal)?;
    assemble(runs, conflicts, &shifts, shifted_accounts, input, threads).map_err(internal)
}

/// One chunk's slot shifts: (tracked variable, how far its slot moved).
type SlotShifts = Vec<(usize, alloy_primitives::U256)>;

/// Phase 1: runs the chunks on all threads, stealing work, and returns
/// them in block order.
fn execute<'a, S: Storage + Sync>(
    storage: &'a S,
    input: &BlockInput,
    threads: usize,
    track: bool,
    predict_accounts: bool,
    costs: &'a OnceLock<AccountFlows>,
) -> std::result::Result<Vec<ChunkRun<'a, S>>, String> {
    let bounds = boundaries(&input.txs, threads.max(1), track);
    let chunks: Mutex<Vec<Arc<Chunk>>> = Mutex::new(
        bounds
            .windows(2)
            .map(|w| Arc::new(Chunk::new(w[0], w[1])))
            .collect(),
    );
    let initial: Vec<Arc<Chunk>> = chunks.lock().map_err(|e| e.to_string())?.clone();
    // The account flows are built on the calling thread while the other
    // threads wake up (tens of microseconds, as long as building them takes
    // on a block of a few hundred transactions); the first chunk does not
    // need them (nothing comes before it), the others wait for them.
    // Without an account that sends or receives twice there is nothing to
    // predict (the caller knows from its own pass over the block). A panic
    // while building them leaves the flows empty, so that no thread waits
    // for ever, and fails the block below.
    let flows_failed = AtomicBool::new(false);
    let build_flows = || {
        let built = if predict_accounts {
            catch_unwind(AssertUnwindSafe(|| AccountFlows::new(input)))
        } else {
            Ok(AccountFlows(FxHashMap::default()))
        };
        costs.get_or_init(|| {
            built.unwrap_or_else(|_| {
                flows_failed.store(true, Ordering::Relaxed);
                AccountFlows(FxHashMap::default())
            })
        });
    };
    let per_thread = fan_out(initial.len(), |part| {
        if part == 0 {
            build_flows();
        }
        let costs = costs.wait();
        let mut runs = vec![run_chunk(storage, costs, input, &initial[part], track)];
        while let Some(chunk) = steal(&chunks) {
            runs.push(run_chunk(storage, costs, input, &chunk, track));
        }
        runs
    })?;
    if flows_failed.load(Ordering::Relaxed) {
        return Err("building the account flows panicked".into());
    }
    let mut runs: Vec<ChunkRun<'_, S>> = per_thread.into_iter().flatten().collect();
    runs.sort_by_key(|run| run.start);
    Ok(runs)
}

/// Phase 3: tracked slots that moved and predicted accounts wrong only by
/// their balance, corrected chunk by chunk in block order (a chunk's
/// corrected values are the next one's inputs), up to the first chunk that
/// is not exact: the chunks after it are discarded anyway. Returns each
/// chunk's slot shifts and how many accounts it shifted; `conflicts` ends
/// as each chunk's first transaction that is not exact.
fn correct<S: Storage + Sync>(
    runs: &mut [ChunkRun<'_, S>],
    conflicts: &mut [Option<usize>],
    shared: &[Vec<usize>],
    parts: usize,
    storage: &S,
    input: &BlockInput,
) -> std::result::Result<(Vec<SlotShifts>, Vec<usize>), String> {
    let mut shifts = vec![Vec::new(); runs.len()];
    let mut shifted_accounts = vec![0; runs.len()];
    for c in 0..runs.len() {
        let (account_conflict, account_moves) = account_shifts(runs, c, storage, input);
        let moved = slot_shifts(runs, c, shared.get(c).map_or(&[][..], Vec::as_slice));
        let Some(run) = runs.get_mut(c) else { break };
        let conflict = conflicts[c].into_iter().chain(account_conflict).min();
        conflicts[c] = apply_shifts(run, &moved, conflict, parts)?;
        shifted_accounts[c] = shift_accounts(run, &account_moves, conflicts[c]);
        let exact = conflicts[c].unwrap_or(run.outputs.len());
        shifts[c] = moved;
        if exact != run.end - run.start || matches!(run.outputs.last(), Some(Err(_))) {
            break;
        }
    }
    Ok((shifts, shifted_accounts))
}

/// Phase 4: the outputs of the exact prefix, the chunk diffs wholly inside
/// it, and every execution after it, offered to the sequential loop.
fn assemble<S: Storage + Sync>(
    runs: Vec<ChunkRun<'_, S>>,
    conflicts: Vec<Option<usize>>,
    shifts: &[SlotShifts],
    shifted_accounts: Vec<usize>,
    input: &BlockInput,
    threads: usize,
) -> std::result::Result<Prefix, String> {
    let executed: usize = runs.iter().map(|run| run.outputs.len()).sum();
    let mut outputs = Vec::with_capacity(input.txs.len());
    let mut covered = 0;
    let mut state = PartialState {
        covers: 0,
        diffs: Vec::with_capacity(runs.len()),
    };
    let mut corrected = 0;
    let mut shifted = 0;
    let mut replay = Replay::default();
    let mut ended = false;
    for (((run, conflict), moved), accounts) in runs
        .into_iter()
        .zip(conflicts)
        .zip(shifts)
        .zip(shifted_accounts)
    {
        if ended {
            // After the prefix: every execution is offered to the loop.
            // (A chunk that failed gave up the rest of its range: the runs
            // need not be contiguous here.)
            replay.push(replay_run(run, 0, input.block.beneficiary));
            continue;
        }
        if run.start != covered {
            return Err(format!(
                "chunk starting at {} follows transactions up to {covered}",
                run.start
            ));
        }
        let exact = conflict.unwrap_or(run.outputs.len()).min(run.outputs.len());
        let vars = run.db.deltas.vars();
        corrected += moved
            .iter()
            .filter(|(i, _)| vars.get(*i).is_some_and(|var| var.first_tx < exact))
            .count();
        shifted += accounts;
        let complete = exact == run.end - run.start;
        let failed = matches!(run.outputs.get(..exact).and_then(<[_]>::last), Some(Err(_)));
        if !complete || failed {
            let mut run = run;
            let tail = run.outputs.split_off(exact);
            outputs.append(&mut run.outputs);
            if failed {
                // The block fails there: nothing after it matters.
                covered = input.txs.len();
                break;
            }
            run.outputs = tail;
            replay.push(replay_run(run, exact, input.block.beneficiary));
            covered = input.txs.len();
            ended = true;
            continue;
        }
        outputs.extend(run.outputs);
        if matches!(outputs.last(), Some(Err(_))) {
            covered = input.txs.len();
            break;
        }
        if let (Some(diff), true) = (run.diff, state.covers == run.start) {
            state.diffs.push(diff);
            state.covers = run.end;
        }
        covered = run.end;
    }
    if covered != input.txs.len() {
        return Err(format!(
            "chunks cover {covered} of {} transactions",
            input.txs.len()
        ));
    }
    Ok(Prefix {
        reexecutions: executed - outputs.len(),
        counts_offers: true,
        outputs,
        threads,
        executed_by: ExecutedBy::Chunked(threads),
        partial: Some(state),
        replay: Some(replay),
        corrected_slots: corrected,
        shifted_balances: shifted,
    })
}
