//! The end every path shares: the exact prefix a path computed becomes the
//! block's result.
//!
//! Each path returns a [`Prefix`]: the outputs of the block's first
//! transactions, proven final (all of them, or up to a conflict or a
//! give-up), and what the path learnt on the way (executions after the
//! prefix it offers to the sequential loop, state it merged already).
//! [`finish`] then, in this order:
//!
//! 1. **commits** the outputs: the lowest failure becomes the block's
//!    error; each lazy fee credit becomes a change of the beneficiary as of
//!    its transaction (the beneficiary's running state is the one serial
//!    part, computed from the outputs' inline fields); receipts get their
//!    cumulative gas. The per-transaction part runs on the pool.
//! 2. **hands over** to the sequential loop for the rest of the block, if
//!    the prefix stops short of it, keeping the offered executions whose
//!    answers still hold.
//! 3. **merges** the state diff: on all threads by account, or, after
//!    chunks, as a join of the chunk diffs (on a thread of its own while
//!    the commit runs) completed with the rest of the block.
//!
//! Only [`execute_block`](crate::execute_block) calls [`finish`].

use crate::error::{ExecError, Result};
use crate::evm::changes::fee_credit;
use crate::evm::task::{TxFailure, TxOutput};
use crate::evm::view::{pre_block_account, AccountValue};
use crate::input::BlockInput;
use crate::output::merge::{
    complete_after_chunks, join_ranges, merge_parallel, AccountFold, PartialState,
};
use crate::output::{AccountChange, BlockResult, ExecStats, ExecutedBy, TxResult};
use crate::pool::{fan_out, join2};
use crate::sequential::{self, Replay};
use crate::storage::Storage;

/// What a path computed: the outputs of the block's first transactions,
/// final (a failure, if any, is the last one), and what finishing the block
/// can use.
pub(crate) struct Prefix {
    /// The outputs of transactions `0..outputs.len()`.
    pub(crate) outputs: Vec<std::result::Result<TxOutput, TxFailure>>,
    /// Threads the path ran on (the commit and the merge use as many).
    pub(crate) threads: usize,
    /// Which path it was.
    pub(crate) executed_by: ExecutedBy,
    /// Executions beyond the first of each transaction, and executions
    /// thrown away.
    pub(crate) reexecutions: usize,
    /// `reexecutions` counts the executions offered in `replay` (as thrown
    /// away): the ones the sequential loop keeps are taken off it.
    pub(crate) counts_offers: bool,
    /// The state the path merged already (chunks).
    pub(crate) partial: Option<PartialState>,
    /// Executions of transactions after the prefix, for the sequential
    /// loop to keep where their answers still hold.
    pub(crate) replay: Option<Replay>,
    /// Tracked slots that chunks read stale and corrected.
    pub(crate) corrected_slots: usize,
    /// Predicted balances that chunks shifted.
    pub(crate) shifted_balances: usize,
}

impl Prefix {
    /// An empty prefix: the sequential loop runs the whole block.
    pub(crate) fn empty(executed_by: ExecutedBy) -> Self {
        Self {
            outputs: Vec::new(),
            threads: 1,
            executed_by,
            reexecutions: 0,
            counts_offers: false,
            partial: None,
            replay: None,
            corrected_slots: 0,
            shifted_balances: 0,
        }
    }
}

/// Blocks whose chunks cover at least this many transactions join the
/// chunk diffs on a thread of their own, next to the commit; below it the
/// thread would cost more than it saves.
const CONCURRENT_JOIN_MIN: usize = 256;

/// Completes a block from a path's [`Prefix`]: commits its outputs, runs
/// the rest of the block sequentially (keeping the offered executions that
/// still hold) and merges the state.
pub(crate) fn finish<S: Storage>(
    storage: &S,
    input: &BlockInput,
    prefix: Prefix,
) -> Result<BlockResult> {
    let Prefix {
        outputs,
        threads,
        executed_by,
        reexecutions,
        counts_offers,
        partial,
        replay,
        corrected_slots,
        shifted_balances,
    } = prefix;
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
            let (committed, joined) = join2(
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
    let done = txs.len();
    let handed_over = done < input.txs.len();
    let mut kept = 0;
    if handed_over {
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
            // An offered execution kept after the hand-over was not thrown
            // away after all.
            reexecutions: if counts_offers {
                reexecutions.saturating_sub(kept)
            } else {
                reexecutions
            },
            sequential_from: (handed_over && executed_by != ExecutedBy::Sequential).then_some(done),
            corrected_slots,
            shifted_balances,
            kept_after_handover: kept,
        },
    })
}

/// Transactions per thread of the commit's parallel part, at least.
const COMMIT_PART_MIN: usize = 1_024;

/// Turns the final outputs of a path into the block's transaction
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
    mut outputs: Vec<std::result::Result<TxOutput, TxFailure>>,
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
        if let Some(delta) = output.lazy_credit {
            let before = match current.take() {
                Some(value) => value,
                None => pre_block_account(storage, &beneficiary, index)?,
            };
            credited = fee_credit(before.as_ref(), delta, input.spec);
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
    let finished = fan_out(work.len(), |part| {
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

/// The beneficiary's state after `change`, keeping the code it had.
fn state_after(change: &AccountChange, before: Option<&AccountValue>) -> Option<AccountValue> {
    let previous_code = before.and_then(|b| b.code.as_ref());
    change
        .info
        .as_ref()
        .map(|state| AccountValue::from_state(state, previous_code))
}
