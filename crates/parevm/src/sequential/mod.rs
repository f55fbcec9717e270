//! The sequential path: a plain revm loop over the same [`Storage`], with
//! an in-memory overlay of the changes committed so far.
//!
//! It is the oracle every parallel result is compared with, and what `auto`
//! mode runs when parallelism cannot pay. It uses revm's stock mainnet
//! handler and one EVM for the whole block, like a hand-written loop.
//!
//! When it finishes a block that a parallel path left unfinished
//! ([`continue_block`]), it may be handed the executions that path made of
//! the remaining transactions, each with every answer its database gave
//! it (a [`Replay`]). A transaction's execution is a function of those
//! answers alone (revm is deterministic, and code and block hashes do not
//! change within a block), so where the loop's own database gives the same
//! answer to every one of them, the execution is the one the loop would
//! make, and it is kept instead of repeated. One changed answer and the
//! loop executes the transaction itself. Checking an answer costs a hash
//! lookup; executing costs the whole EVM.

use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::primitives::hardfork::SpecId;

use crate::error::Result;
use crate::evm::machine::Machine;
use crate::output::TxResult;
use crate::storage::Storage;

mod overlay;
mod replay;

pub(crate) use overlay::{probe_storage, storage_code, storage_info, Overlay, OverlayDb};
pub(crate) use replay::{Replay, ReplayRun};

/// Executes `txs[done.len()..]` one after another on top of the results
/// `done` of the transactions before them, and appends their results.
/// Executions in `replay` whose every answer the loop's database still
/// gives are kept instead of repeated (module docs); returns how many.
///
/// # Errors
/// The first transaction that is invalid or whose reads fail.
pub(crate) fn continue_block<S: Storage>(
    storage: &S,
    spec: SpecId,
    cfg: CfgEnv,
    block: BlockEnv,
    txs: &[TxEnv],
    done: &mut Vec<TxResult>,
    mut replay: Option<Replay>,
) -> Result<usize> {
    let mut db = OverlayDb::for_txs(storage, txs.len());
    for result in done.iter() {
        db.commit(&result.changes);
    }
    let beneficiary = block.beneficiary;
    let mut machine = Machine::new(db, block, cfg);
    let mut cumulative = done.last().map_or(0, |r| r.receipt.cumulative_gas_used);
    let mut kept = 0;
    for (index, tx) in txs.iter().enumerate().skip(done.len()) {
        if let Some((output, seen)) = replay.as_mut().and_then(|r| r.take(index)) {
            let db = machine.source();
            if seen.iter().all(|seen| db.answers(seen)) {
                done.push(db.keep(output, index, beneficiary, spec, &mut cumulative)?);
                kept += 1;
                continue;
            }
        }
        let result = step(&mut machine, tx, index, spec, &mut cumulative)?;
        done.push(result);
    }
    Ok(kept)
}

/// One transaction of the sequential loop: execute, commit, build the result.
fn step<S: Storage>(
    machine: &mut Machine<OverlayDb<'_, S>>,
    tx: &TxEnv,
    index: usize,
    spec: SpecId,
    cumulative: &mut u64,
) -> Result<TxResult> {
    let (mut receipt, changes) = machine
        .transact(tx, spec)
        .map_err(|failure| failure.into_error(index))?;
    machine.source().commit(&changes);
    *cumulative += receipt.gas_used;
    receipt.cumulative_gas_used = *cumulative;
    Ok(TxResult { receipt, changes })
}
