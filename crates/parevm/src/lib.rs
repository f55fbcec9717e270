//! # parevm — a parallel EVM block executor
//!
//! parevm runs the transactions of an Ethereum block on many threads at once
//! and produces exactly what sequential execution produces: the same
//! receipts, logs, gas and state, on every run and at every thread count.
//! The EVM itself is [revm](https://github.com/bluealloy/revm).
//!
//! ```no_run
//! use parevm::{execute_block, BlockInput, Config, InMemoryStorage};
//! # fn input() -> BlockInput { unimplemented!() }
//! let storage = InMemoryStorage::new();
//! let result = execute_block(&storage, &input(), &Config::default())?;
//! println!("gas used: {}", result.gas_used());
//! # Ok::<(), parevm::ExecError>(())
//! ```
//!
//! ## The algorithm: Block-STM
//! Transactions are executed *optimistically* in parallel, each against a
//! multi-version memory (`mv_memory`) that holds, for every location, the
//! value written by each transaction of the block. Transaction `i` reads the
//! newest write below `i`, or the pre-block [`Storage`]. Every execution
//! records what it read; a later *validation* repeats those reads. If one
//! changed, because a lower transaction re-executed and wrote something
//! else, the transaction is aborted: its writes become ESTIMATE markers,
//! and it runs again with the next *incarnation* number. A transaction that
//! reads an ESTIMATE is parked until the writer finishes, instead of
//! running on values that are probably stale.
//!
//! The `scheduler` hands out execution and validation tasks in block
//! order, preferring low transactions, and decides when the block is done:
//! every transaction executed, and its last incarnation validated after
//! every lower transaction's last write. At that point each transaction has
//! read exactly what a sequential run would have given it, so the outputs,
//! committed in block order, are the sequential outputs.
//!
//! ## The other parallel path: optimistic chunks
//! Block-STM pays for its generality on every transaction (multi-version
//! writes, read sets, validation). When no transaction touches another's
//! state, a cheaper scheme is exact: cut the block into one contiguous
//! chunk per thread, run each chunk like the sequential loop on the
//! pre-block state, log every read that reached the pre-block state, and
//! afterwards check those reads against what the earlier chunks changed.
//! The prefix up to the first stale read is exact; the sequential loop
//! finishes the rest ([`Mode::Chunked`], module `chunked`). It keeps the
//! chunks' executions after the conflict whose every database answer it
//! would give too (each chunk records them all), and executes only the
//! others ([`ExecStats::kept_after_handover`]).
//!
//! Chunks may also *track storage deltas* ([`Mode::ChunkedDeltas`], module
//! `deltas`): an inspector follows the values a chunk derived from the
//! slots it read before the chunk, and records every decision it took on
//! them (comparisons, branch conditions, the zero-ness that prices an
//! `SSTORE`). A stale slot is then not a conflict: the check computes how
//! far the slot really moved, re-evaluates the recorded decisions with the
//! moved value, and, if all come out the same, moves the chunk's writes of
//! the slot by the same amount. Transfers of one token to one holder add
//! up this way without conflict.
//!
//! ## Choosing the path
//! [`Mode::Auto`] runs small blocks sequentially, and blocks whose longest
//! predicted dependency chain (a sender's nonces, value passed from one
//! sender to the next, payments to one recipient; read from the
//! transactions alone) is most of the block. Blocks in which no two
//! transactions share a sender, a recipient of value, a calldata address
//! or a (contract, function) without addresses run as optimistic chunks.
//! Blocks that look serial, but only through contract entries that many
//! distinct senders share (every sender distinct, no value passed along),
//! run as chunks that track deltas; blocks serial only through deposits
//! (plain transfers to code-less accounts that send nothing) run as
//! chunks, which predict those accounts; other serial-looking blocks run
//! sequentially.
//! Otherwise it starts Block-STM, and gives up once validation aborted more
//! than 30% of the executions: the workers stop, the longest prefix of
//! transactions whose outputs are final is kept, and the sequential loop
//! executes the rest on top of it ([`ExecStats::sequential_from`]). The
//! prediction only picks the path; every path returns the same result.
//!
//! ## EVM specifics
//! - **Locations** ([`types::Location`]): an account (balance, nonce, code),
//!   a storage slot, or a "storage wiped" marker per account.
//! - **The beneficiary** would serialise every block, since every
//!   transaction pays it. Its fee credit is stored as a commutative delta,
//!   resolved only by transactions that really read its balance and at the
//!   end of the block (`tx_task`).
//! - **Same-sender chains**: nonces force an order; the scheduler parks a
//!   transaction on its sender's previous one before executing it.
//! - **Errors** are results: an invalid transaction or a storage error is
//!   the *output* of an incarnation and is validated like any other; only a
//!   validated one becomes the block's [`ExecError`], for the lowest index,
//!   exactly as in a sequential loop. A panic in a worker stops all workers
//!   and becomes [`ExecError::Internal`].
//!
//! ## Modules
//! - `scheduler`: the collaborative scheduler (no EVM knowledge).
//! - `mv_memory`: multi-version memory, generic over keys and values.
//! - `executor`: the worker loop and the `VmTask` seam.
//! - `view`: revm `Database` over mv-memory and storage.
//! - `tx_task`: revm glue for one incarnation.
//! - `chunked`: optimistic chunks and their check.
//! - `deltas`: the inspector that tracks values derived from stale slots,
//!   and the facts a chunk's correction is checked against.
//! - `sequential`: the reference sequential path.
//! - `journal`: revm's journal plus the EIP-7610 storage-collision rule.
//! - `predict`: the dependency estimates `auto` mode decides with.
//! - [`storage`], [`chain`], [`output`], [`error`], [`types`].

pub mod block;
pub mod chain;
pub(crate) mod chunked;
mod deltas;
pub mod error;
pub(crate) mod executor;
pub mod fixtures;
pub mod gen;
pub(crate) mod journal;
pub(crate) mod mv_memory;
pub mod output;
pub(crate) mod predict;
pub(crate) mod scheduler;
pub(crate) mod sequential;
pub mod storage;
pub mod trie;
pub(crate) mod tx_task;
pub mod types;
pub(crate) mod view;
pub mod workload;

/// Synchronisation primitives of the scheduler, swappable for a model checker.
pub(crate) mod sync {
    pub(crate) use std::sync::{atomic, Mutex, MutexGuard};
}

use std::num::NonZeroUsize;

use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::primitives::hardfork::SpecId;
use revm::state::{Account, TransactionId};

pub use chain::spec_id_for_mainnet;
pub use error::{ExecError, Result, StorageError};
pub use output::{
    AccountChange, AccountState, BlockResult, ExecStats, ExecutedBy, StateDiff, TxChanges,
    TxOutcome, TxReceipt, TxResult,
};
pub use revm;
pub use storage::{AccountBasic, InMemoryStorage, Storage};
pub use types::{Incarnation, Location, TxIdx, Version};

use output::{
    account_change, complete_after_chunks, join_ranges, merge_parallel, AccountFold, PartialState,
};
use tx_task::{EvmTask, TxOutput};
use view::AccountValue;

/// Everything needed to execute a block's transactions.
#[derive(Clone, Debug)]
pub struct BlockInput {
    /// The fork rules (see [`spec_id_for_mainnet`]).
    pub spec: SpecId,
    /// Chain id (1 for Ethereum mainnet).
    pub chain_id: u64,
    /// Number, timestamp, beneficiary, base fee, gas limit, prevrandao /
    /// difficulty and blob gas price of the block.
    pub block: BlockEnv,
    /// The transactions, in block order, with recovered senders.
    pub txs: Vec<TxEnv>,
}

impl BlockInput {
    /// revm's configuration for this block: the fork's mainnet gas
    /// parameters, the chain id and the per-transaction blob limit.
    pub fn cfg(&self) -> CfgEnv {
        let mut cfg = CfgEnv::new_with_spec(self.spec);
        cfg.chain_id = self.chain_id;
        // revm checks no blob count unless told: EIP-4844 (Cancun) allows
        // 6 blobs, EIP-7691 (Prague) 9, EIP-7594 (Osaka) caps a
        // transaction at 6 again.
        if let Some(max) = max_blobs_per_tx(self.spec) {
            cfg.set_max_blobs_per_tx(max);
        }
        cfg
    }
}

/// The most blobs one transaction may carry under `spec` (`None` before
/// Cancun, where blob transactions are rejected anyway).
pub fn max_blobs_per_tx(spec: SpecId) -> Option<u64> {
    if spec.is_enabled_in(SpecId::OSAKA) {
        Some(6)
    } else if spec.is_enabled_in(SpecId::PRAGUE) {
        Some(9)
    } else if spec.is_enabled_in(SpecId::CANCUN) {
        Some(6)
    } else {
        None
    }
}

/// Which path [`execute_block`] takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Parallel unless the block is too small or too serial to gain from it.
    #[default]
    Auto,
    /// Always Block-STM (even with one thread).
    Parallel,
    /// Always optimistic chunks (one contiguous chunk of the block per
    /// thread, checked afterwards; the sequential loop finishes the block
    /// from the first conflict). Fastest on blocks without dependencies.
    Chunked,
    /// Always optimistic chunks, whose storage reads from before the chunk
    /// are tracked as deltas (module `deltas`): transactions that only add
    /// to or subtract from the same slots (transfers to one token holder)
    /// do not conflict, as long as every decision they took comes out the
    /// same with the real values. Tracking costs an inspector on every
    /// instruction of the chunks after the first.
    ChunkedDeltas,
    /// Always the sequential loop.
    Sequential,
}

/// How to execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Worker threads for the parallel path.
    pub threads: NonZeroUsize,
    /// Path selection.
    pub mode: Mode,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            mode: Mode::Auto,
        }
    }
}

impl Config {
    /// Parallel with `threads` workers.
    pub fn parallel(threads: usize) -> Self {
        Self {
            threads: NonZeroUsize::new(threads).unwrap_or(NonZeroUsize::MIN),
            mode: Mode::Parallel,
        }
    }

    /// The sequential path.
    pub fn sequential() -> Self {
        Self {
            threads: NonZeroUsize::MIN,
            mode: Mode::Sequential,
        }
    }
}

/// Below this many transactions `auto` mode runs sequentially: starting
/// workers and the Block-STM bookkeeping cost more than they can save.
const AUTO_MIN_TXS: usize = 24;

/// For each transaction, the previous transaction of the same sender.
fn sender_predecessors(txs: &[TxEnv]) -> Vec<Option<TxIdx>> {
    let mut last = rustc_hash::FxHashMap::default();
    txs.iter()
        .enumerate()
        .map(|(i, tx)| last.insert(tx.caller, i))
        .collect()
}

/// Executes the transactions of a block and returns their receipts and
/// state changes.
///
/// # Errors
/// [`ExecError::InvalidTransaction`] or [`ExecError::Storage`] for the lowest
/// transaction that fails, [`ExecError::InvalidHeader`] for a bad block
/// environment, [`ExecError::Internal`] if the engine itself fails (a bug).
/// The error is the same on both paths.
pub fn execute_block<S: Storage>(
    storage: &S,
    input: &BlockInput,
    config: &Config,
) -> Result<BlockResult> {
    let threads = config.threads.get();
    let path = match config.mode {
        Mode::Sequential => Path::Sequential,
        Mode::Parallel => Path::BlockStm { give_up: None },
        Mode::Chunked => Path::Chunked {
            track: false,
            predict_accounts: true,
        },
        Mode::ChunkedDeltas => Path::Chunked {
            track: true,
            predict_accounts: true,
        },
        Mode::Auto if threads == 1 || input.txs.len() < AUTO_MIN_TXS => Path::Sequential,
        Mode::Auto => auto_path(storage, input, threads),
    };
    match path {
        Path::Sequential => sequential::execute(
            storage,
            input.spec,
            input.cfg(),
            input.block.clone(),
            &input.txs,
        ),
        Path::BlockStm { give_up } => execute_parallel(storage, input, threads, give_up),
        Path::Chunked {
            track,
            predict_accounts,
        } => execute_chunked(storage, input, threads, track, predict_accounts),
    }
}

/// Blocks of at least this many transactions run `auto`'s independence
/// pass on all threads.
const PARALLEL_PREDICT_MIN: usize = 2_048;

/// The path [`execute_block`] takes for one block.
enum Path {
    Sequential,
    BlockStm {
        give_up: Option<executor::GiveUp>,
    },
    /// Optimistic chunks, tracking deltas or not; `predict_accounts`:
    /// some account sends or receives more than once, so the chunks may
    /// have accounts to predict (`chunked::AccountFlows`).
    Chunked {
        track: bool,
        predict_accounts: bool,
    },
}

/// The path `auto` picks for a block large enough to run in parallel.
fn auto_path<S: Storage>(storage: &S, input: &BlockInput, threads: usize) -> Path {
    let beneficiary = input.block.beneficiary;
    // Payouts (one sender's transactions are most of the block): the
    // passes below would reach the same answer.
    if let Some(chunks) = predict::payout_path(&input.txs) {
        return if chunks {
            Path::Chunked {
                track: false,
                predict_accounts: true,
            }
        } else {
            Path::Sequential
        };
    }
    // Nothing predicted to depend on anything (plain transfers from one
    // sender or to one deposit address aside: chunks predict those
    // accounts): chunks, which cost almost nothing per transaction when
    // the prediction holds.
    // The pass is split over the threads on large blocks (it reads the
    // whole block before anything runs).
    let parts = if input.txs.len() >= PARALLEL_PREDICT_MIN {
        threads
    } else {
        1
    };
    if let Some(independent) = predict::independence(
        &input.txs,
        beneficiary,
        |address| has_code(storage, address),
        parts,
    ) {
        return Path::Chunked {
            track: false,
            predict_accounts: independent.repeats,
        };
    }
    // When one predicted dependency chain (a sender's nonces, or value
    // passed from one sender to the next) is most of the block, there is
    // little to overlap and every conflict costs an abort: run it
    // sequentially from the start.
    //
    // Unless the chain only runs through contract entries that many
    // senders touch (transfers of one token to one holder): chunks that
    // track deltas may add those up without conflict. If they do not, the
    // first chunk is still exact and the loss is small.
    //
    // Unless the chain only runs through deposits (plain transfers to
    // accounts without code): chunks predict those accounts.
    if predict::looks_serial(&input.txs) {
        return if predict::looks_commutative(&input.txs) {
            Path::Chunked {
                track: true,
                predict_accounts: true,
            }
        } else if !predict::looks_serial_beyond_deposits(&input.txs, beneficiary, |address| {
            has_code(storage, address)
        }) {
            Path::Chunked {
                track: false,
                predict_accounts: true,
            }
        } else {
            Path::Sequential
        };
    }
    // Little code to overlap: most transactions are plain transfers, which
    // cost about what Block-STM's bookkeeping of them costs.
    if predict::mostly_transfers(&input.txs, AUTO_MIN_TXS) {
        return Path::Sequential;
    }
    // Block-STM, stopped in favour of the sequential loop when it keeps
    // aborting.
    Path::BlockStm {
        give_up: Some(AUTO_GIVE_UP),
    }
}

/// Blocks whose chunks cover at least this many transactions join the
/// chunk diffs on a thread of their own, next to the commit; below it the
/// thread would cost more than it saves.
const CONCURRENT_JOIN_MIN: usize = 256;

/// When `auto` gives up on Block-STM: after 32 finished executions, once
/// validation aborted more than three in ten of them. Independent blocks
/// abort none. On two threads, blocks that are one dependency chain (one
/// hot pool, one hot lending market) abort 36-40% of their executions and
/// lose to the sequential loop, while the mainnet fixture blocks that gain
/// from Block-STM abort 9-27% (a block losing at 33% is the exception).
const AUTO_GIVE_UP: executor::GiveUp = executor::GiveUp {
    min_executions: 32,
    max_waste: 0.3,
};

fn execute_parallel<S: Storage>(
    storage: &S,
    input: &BlockInput,
    threads: usize,
    give_up: Option<executor::GiveUp>,
) -> Result<BlockResult> {
    let task = EvmTask {
        storage,
        spec: input.spec,
        cfg: input.cfg(),
        block: input.block.clone(),
        txs: &input.txs,
    };
    let predecessors = sender_predecessors(&input.txs);
    let head_start = predict::head_start(&input.txs, threads, &predecessors);
    let run = executor::run_block(
        &task,
        input.txs.len(),
        threads,
        predecessors,
        head_start,
        give_up,
    )
    .map_err(ExecError::Internal)?;
    // After a give-up, the last executions above the final prefix, for the
    // sequential loop to keep where their answers still hold.
    let replay = (!run.leftovers.is_empty()).then(|| {
        let start = run.outputs.len();
        let mut outputs = Vec::with_capacity(input.txs.len().saturating_sub(start));
        let mut seen = Vec::new();
        let mut bounds = vec![0];
        for (tx, reads, output) in run.leftovers {
            while start + outputs.len() < tx {
                outputs.push(None);
                bounds.push(seen.len());
            }
            seen.extend(reads.seen());
            outputs.push(output.ok());
            bounds.push(seen.len());
        }
        let mut replay = sequential::Replay::default();
        replay.push(sequential::ReplayRun {
            start,
            outputs,
            seen,
            bounds,
        });
        replay
    });
    finish(
        storage,
        input,
        run.outputs,
        threads,
        ExecutedBy::Parallel(threads),
        run.incarnations.iter().sum(),
        (None, replay),
    )
}

/// Optimistic chunks (`chunked`), then the sequential loop from the first
/// conflict.
fn execute_chunked<S: Storage>(
    storage: &S,
    input: &BlockInput,
    threads: usize,
    track: bool,
    predict_accounts: bool,
) -> Result<BlockResult> {
    let prefix = chunked::run(storage, input, threads, track, predict_accounts)
        .map_err(ExecError::Internal)?;
    let (corrected, shifted) = (prefix.corrected, prefix.shifted);
    let mut result = finish(
        storage,
        input,
        prefix.outputs,
        threads,
        ExecutedBy::Chunked(threads),
        prefix.discarded,
        (Some(prefix.state), Some(prefix.replay)),
    )?;
    result.stats.corrected_slots = corrected;
    result.stats.shifted_balances = shifted;
    // A kept execution was not repeated.
    result.stats.reexecutions = result
        .stats
        .reexecutions
        .saturating_sub(result.stats.kept_after_handover);
    Ok(result)
}

/// Whether `address` has code before the block (a failing read counts as
/// yes: the answer only steers `auto`).
fn has_code<S: Storage>(storage: &S, address: &alloy_primitives::Address) -> bool {
    match storage.account(address) {
        Ok(Some(account)) => {
            chunked::code_hash_of(account.code_hash) != revm::primitives::KECCAK_EMPTY
        }
        Ok(None) => false,
        Err(_) => true,
    }
}

/// Commits the outputs of a parallel run (a prefix of the block, or all of
/// it), runs the rest of the block sequentially and merges the state.
/// `rest` holds the part of the state the run merged already (chunks) and
/// its executions after the prefix, which the sequential loop keeps where
/// they still hold.
fn finish<S: Storage>(
    storage: &S,
    input: &BlockInput,
    outputs: Vec<std::result::Result<TxOutput, tx_task::TxFailure>>,
    threads: usize,
    executed_by: ExecutedBy,
    reexecutions: usize,
    rest: (Option<PartialState>, Option<sequential::Replay>),
) -> Result<BlockResult> {
    let (partial, replay) = rest;
    let beneficiary = input.block.beneficiary;
    let (mut txs, joined, credited) = match partial {
        // The chunk diffs do not depend on the commit: a large block joins
        // them on one of its threads while the others commit, and then
        // merge the beneficiary's changes (the join takes longer).
        Some(partial) if threads > 1 && partial.covers >= CONCURRENT_JOIN_MIN => {
            // On a pool thread, not a spawned one: a fresh thread starts
            // with a cold allocator heap, and the join allocates the
            // block's whole diff (page faults cost more than the join).
            let covers = partial.covers;
            let (committed, joined) = executor::join2(
                || {
                    let txs = commit(storage, input, outputs, threads - 1)?;
                    let mut credited = AccountFold::default();
                    credited.extend(&txs, beneficiary);
                    Ok::<_, ExecError>((txs, credited))
                },
                || join_ranges(partial.diffs),
            )
            .map_err(|e| ExecError::Internal(format!("committing and joining: {e}")))?;
            let (txs, credited) = committed?;
            (txs, Some((covers, joined)), credited)
        }
        Some(partial) if partial.covers > 0 => {
            let txs = commit(storage, input, outputs, threads)?;
            let joined = join_ranges(partial.diffs);
            (txs, Some((partial.covers, joined)), AccountFold::default())
        }
        _ => (
            commit(storage, input, outputs, threads)?,
            None,
            AccountFold::default(),
        ),
    };
    let sequential_from = (txs.len() < input.txs.len()).then_some(txs.len());
    let mut kept = 0;
    if sequential_from.is_some() {
        kept = sequential::continue_block(
            storage,
            input.spec,
            input.cfg(),
            input.block.clone(),
            &input.txs,
            &mut txs,
            replay,
        )?;
    }
    let state = match joined {
        Some((covers, mut state)) => {
            complete_after_chunks(&mut state, &txs, covers, beneficiary, credited);
            state
        }
        None => merge_parallel(&txs, threads).map_err(ExecError::Internal)?,
    };
    Ok(BlockResult {
        state,
        txs,
        stats: ExecStats {
            executed_by,
            reexecutions,
            sequential_from,
            corrected_slots: 0,
            shifted_balances: 0,
            kept_after_handover: kept,
        },
    })
}

/// Transactions per thread of the commit's parallel part, at least.
const COMMIT_PART_MIN: usize = 1_024;

/// Turns the final outputs of Block-STM into the block's transaction
/// results: the lowest failure becomes the block's error, each lazy
/// beneficiary credit becomes a change against the beneficiary's state as
/// of that transaction, and receipts get their cumulative gas.
///
/// Only the beneficiary's running state is serial, and it is computed from
/// the outputs' inline fields; the per-transaction work (inserting the
/// credit into the changes, which touches every transaction's heap data)
/// is split over `threads`.
fn commit<S: Storage>(
    storage: &S,
    input: &BlockInput,
    mut outputs: Vec<std::result::Result<TxOutput, tx_task::TxFailure>>,
    threads: usize,
) -> Result<Vec<TxResult>> {
    let beneficiary = input.block.beneficiary;
    let mut credits: Vec<Option<AccountChange>> = Vec::with_capacity(outputs.len());
    let mut cumulative: Vec<u64> = Vec::with_capacity(outputs.len());
    let mut gas = 0u64;
    // The beneficiary as of the transaction being committed; resolved from
    // storage the first time a lazy credit needs it.
    let mut current: Option<Option<AccountValue>> = None;
    for (index, output) in outputs.iter().enumerate() {
        let output = output
            .as_ref()
            .map_err(|failure| failure.clone().into_error(index))?;
        let mut credited = None;
        if let Some(delta) = output.beneficiary_delta {
            let before = match current.take() {
                Some(value) => value,
                None => pre_block_account(storage, &beneficiary, index)?,
            };
            credited = credit(before.as_ref(), delta, input.spec);
            // Without a change the account stays as it was (an untouched
            // pre-Spurious empty account).
            current = Some(match &credited {
                Some(change) => state_after(change, before.as_ref()),
                None => before,
            });
        } else if output.beneficiary_written {
            if let Some(change) = output.changes.get(&beneficiary) {
                let before = current.take().flatten();
                current = Some(state_after(change, before.as_ref()));
            }
        }
        credits.push(credited);
        gas += output.receipt.gas_used;
        cumulative.push(gas);
    }
    // One part per 1,024 transactions at most: waking a pool thread costs
    // tens of microseconds, what inserting a few hundred credits takes.
    let parts = (outputs.len() / COMMIT_PART_MIN).clamp(1, threads.max(1));
    let chunk = outputs.len().div_ceil(parts).max(1);
    let work: Vec<_> = outputs
        .chunks_mut(chunk)
        .zip(credits.chunks_mut(chunk))
        .zip(cumulative.chunks(chunk))
        .map(|work| std::sync::Mutex::new(Some(work)))
        .collect();
    let finished = executor::fan_out(work.len(), |part| {
        let taken = work[part].lock().ok().and_then(|mut w| w.take());
        let Some(((outputs, credits), cumulative)) = taken else {
            return Err(format!("commit part {part} found no work"));
        };
        for ((output, credited), cumulative) in outputs.iter_mut().zip(credits).zip(cumulative) {
            if let Ok(output) = output {
                if let Some(change) = credited.take() {
                    output.changes.insert(beneficiary, change);
                }
                output.receipt.cumulative_gas_used = *cumulative;
            }
        }
        Ok(())
    })
    .map_err(ExecError::Internal)?;
    finished
        .into_iter()
        .collect::<std::result::Result<(), String>>()
        .map_err(ExecError::Internal)?;
    drop(work);
    Ok(outputs
        .into_iter()
        .filter_map(|output| {
            output.ok().map(|output| TxResult {
                receipt: output.receipt,
                changes: output.changes,
            })
        })
        .collect())
}

/// `address` in the pre-block storage, with its code, as the commit of
/// transaction `index` needs it (for a lazy fee credit).
fn pre_block_account<S: Storage>(
    storage: &S,
    address: &alloy_primitives::Address,
    index: TxIdx,
) -> Result<Option<AccountValue>> {
    view::storage_account(storage, address).map_err(|e| match e {
        view::ViewError::Storage(source) => ExecError::Storage { index, source },
        other => ExecError::Internal(other.to_string()),
    })
}

/// The beneficiary's state after `change`, keeping the code it had.
fn state_after(change: &AccountChange, before: Option<&AccountValue>) -> Option<AccountValue> {
    let previous_code = before.and_then(|b| b.code.as_ref());
    change
        .info
        .as_ref()
        .map(|state| AccountValue::from_state(state, previous_code))
}

/// The change revm's journal would record for crediting `delta` to an
/// account in state `before`. After Spurious Dragon this is computed
/// directly (it is on the commit path of every transaction);
/// `credit_via_journal` is the reference, checked against it by a test.
fn credit(
    before: Option<&AccountValue>,
    delta: alloy_primitives::U256,
    spec: SpecId,
) -> Option<AccountChange> {
    if !spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) {
        return credit_via_journal(before, delta, spec);
    }
    // EIP-161: a touched account that ends empty is deleted. An existing
    // account keeps its code, so the change carries none.
    let (balance, nonce, code_hash) = before.map_or(
        (
            alloy_primitives::U256::ZERO,
            0,
            revm::primitives::KECCAK_EMPTY,
        ),
        |v| (v.balance, v.nonce, v.code_hash),
    );
    let balance = balance.saturating_add(delta);
    let info = output::AccountState {
        balance,
        nonce,
        code_hash,
        code: None,
    };
    Some(if info.is_empty() {
        AccountChange {
            info: None,
            storage_cleared: true,
            storage: Default::default(),
        }
    } else {
        AccountChange {
            info: Some(info),
            storage_cleared: false,
            storage: Default::default(),
        }
    })
}

/// The credit as revm's journal records it: an [`Account`] built like revm
/// builds it, normalised and read by the same [`account_change`] the
/// sequential path uses.
fn credit_via_journal(
    before: Option<&AccountValue>,
    delta: alloy_primitives::U256,
    spec: SpecId,
) -> Option<AccountChange> {
    let mut account = match before {
        Some(value) => Account::from(value.to_info()),
        None => Account::new_not_existing(TransactionId::ZERO),
    };
    account.mark_touch();
    account.info.balance = account.info.balance.saturating_add(delta);
    output::normalize_pre_spurious(&mut account, spec);
    account_change(&account, spec)
}

#[cfg(test)]
mod credit_tests {
    use super::*;
    use alloy_primitives::{B256, U256};

    #[test]
    fn direct_credit_matches_the_journal() {
        let contract = revm::bytecode::Bytecode::new_legacy(vec![0x60, 0x00].into());
        let befores = [
            None,
            Some(AccountValue::empty()),
            Some(AccountValue {
                balance: U256::from(7),
                nonce: 3,
                ..AccountValue::empty()
            }),
            Some(AccountValue {
                balance: U256::ZERO,
                nonce: 1,
                code_hash: contract.hash_slow(),
                code: Some(contract.clone()),
            }),
            Some(AccountValue {
                balance: U256::MAX,
                nonce: 0,
                code_hash: B256::repeat_byte(1),
                code: None,
            }),
        ];
        for spec in [
            SpecId::FRONTIER,
            SpecId::TANGERINE,
            SpecId::SPURIOUS_DRAGON,
            SpecId::LONDON,
            SpecId::CANCUN,
            SpecId::OSAKA,
        ] {
            for before in &befores {
                for delta in [U256::ZERO, U256::from(5)] {
                    assert_eq!(
                        credit(before.as_ref(), delta, spec),
                        credit_via_journal(before.as_ref(), delta, spec),
                        "{spec:?} {before:?} +{delta}"
                    );
                }
            }
        }
    }
}
