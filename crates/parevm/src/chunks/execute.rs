//! Running one chunk: its transactions in order on one EVM over the
//! chunk's database, with the delta inspector where it is needed.

use revm::primitives::TxKind;

use super::db::{ChunkDb, Quiet};
use super::flows::AccountFlows;
use super::split::Chunk;
use crate::evm::deltas::DeltaTracker;
use crate::evm::machine::Machine;
use crate::evm::task::{TxFailure, TxOutput};
use crate::input::{is_plain_transfer, BlockInput, PLAIN_TRANSFER_GAS};
use crate::output::merge::{SortedChanges, StateAccumulator};
use crate::storage::Storage;

/// What one chunk produced.
pub(super) struct ChunkRun<'a, S> {
    /// First transaction of the chunk (block index).
    pub(super) start: usize,
    /// End of the range the chunk kept (others may have taken the rest).
    pub(super) end: usize,
    /// One output per executed transaction; a failure ends the chunk.
    pub(super) outputs: Vec<Result<TxOutput, TxFailure>>,
    /// The chunk's changes merged, without the beneficiary (`None` when a
    /// transaction failed: the block fails there anyway).
    pub(super) diff: Option<SortedChanges>,
    pub(super) db: ChunkDb<'a, S>,
}

/// Runs one chunk: claims and executes its transactions in order until its
/// range is exhausted or one fails.
pub(super) fn run_chunk<'a, S: Storage>(
    storage: &'a S,
    costs: &'a AccountFlows,
    input: &BlockInput,
    chunk: &Chunk,
    track: bool,
) -> ChunkRun<'a, S> {
    // The first chunk reads exact values: nothing to track.
    let track = track && chunk.start > 0;
    let beneficiary = input.block.beneficiary;
    let planned = {
        let (next, end) = *chunk.lock();
        end.saturating_sub(next)
    };
    let db = ChunkDb::new(
        storage,
        costs,
        chunk.start,
        input.spec,
        beneficiary,
        planned,
        track,
    );
    let mut machine = Machine::with_tracker(
        db,
        input.block.clone(),
        input.cfg(),
        DeltaTracker::new(track),
    );
    let mut outputs = Vec::with_capacity(planned);
    while let Some(index) = chunk.claim_next() {
        let Some(tx) = input.txs.get(index) else {
            break;
        };
        machine.source().start(index - chunk.start);
        // A transaction from or to an account the chunk may predict runs
        // with the inspector, which notes balance reads: a shift of that
        // account's balance is exact only without them (`account_shifts`).
        let watched = {
            let db = machine.source();
            db.predictable(&tx.caller) || matches!(tx.kind, TxKind::Call(to) if db.predictable(&to))
        };
        let inspect = track || watched;
        let executed = match machine.execute_lazy(tx, inspect, beneficiary, input.spec) {
            Ok(executed) => executed,
            Err(failure) => {
                outputs.push(Err(failure));
                chunk.close();
                break;
            }
        };
        // No code ran (every instruction but STOP costs gas), or the
        // inspector saw no balance read.
        let no_code =
            is_plain_transfer(tx) && executed.success && executed.gas_used == PLAIN_TRANSFER_GAS;
        let balance_read = machine.inspector().balance_read;
        let db = machine.source();
        db.quiet.push(Quiet {
            no_code,
            no_balance_read: no_code || (inspect && !balance_read),
        });
        let output = executed.output;
        if let Some(delta) = output.lazy_credit {
            db.pending = Some(db.pending.unwrap_or_default().saturating_add(delta));
            db.touched_beneficiary = true;
        }
        if output.beneficiary_written {
            // The transaction read the credits so far; its write holds them.
            db.pending = None;
            db.touched_beneficiary = true;
        }
        db.overlay.commit(&output.changes);
        db.seen_ends.push((db.seen.len(), db.reads.len()));
        outputs.push(Ok(output));
    }
    let db = std::mem::replace(
        machine.source(),
        ChunkDb::new(
            storage,
            costs,
            chunk.start,
            input.spec,
            beneficiary,
            0,
            false,
        ),
    );
    let mut db = db;
    db.deltas.pin_wiped(&db.overlay.wiped);
    // Merging here, on the chunk's thread, spreads over the threads the
    // merge the block's state diff needs anyway (module docs).
    let diff = outputs.iter().all(Result::is_ok).then(|| {
        let done = outputs.iter().flatten();
        let mut acc = StateAccumulator::with_capacity(done.clone().map(|o| o.changes.len()).sum());
        for output in done {
            acc.merge_tx(&output.changes, |address| *address != beneficiary);
        }
        acc.finish_sorted()
    });
    ChunkRun {
        start: chunk.start,
        end: chunk.lock().1,
        outputs,
        diff,
        db,
    }
}
