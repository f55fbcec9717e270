//! Block-STM: optimistic execution against a multi-version memory,
//! validation of every read set, re-execution on conflict, results
//! committed in block order.
//!
//! Transactions are executed *optimistically* in parallel, each against a
//! multi-version memory (`stm::mv_memory`) that holds, for every location, the
//! value written by each transaction of the block. Transaction `i` reads
//! the newest write below `i`, or the pre-block storage. Every execution
//! records what it read; a later *validation* repeats those reads. If one
//! changed, because a lower transaction re-executed and wrote something
//! else, the transaction is aborted: its writes become ESTIMATE markers,
//! and it runs again with the next *incarnation* number. A transaction
//! that reads an ESTIMATE is parked until the writer finishes, instead of
//! running on values that are probably stale.
//!
//! The scheduler (`stm::scheduler`) hands out execution and validation tasks in block
//! order, preferring low transactions (after the [`head_start`]), and
//! decides when the block is done: every transaction executed, and its last
//! incarnation validated after every lower transaction's last write. At
//! that point each transaction has read exactly what a sequential run would
//! have given it. The worker loop (`stm::executor`) runs any `VmTask`; the
//! EVM's is `evm::task::EvmTask`, a mock's is in the tests. That core
//! (`stm/`: scheduler, mv-memory, worker loop) knows nothing about the EVM;
//! this folder is the path that binds it to the EVM.
//!
//! A run that aborts too much gives up ([`GiveUp`]): the workers stop, the
//! longest prefix whose outputs are final is found by validating upwards in
//! the quiet mv-memory, and the last executions above it are offered to the
//! sequential loop, which keeps those whose answers still hold.

pub(crate) mod head_start;

pub(crate) use crate::stm::executor::GiveUp;

use revm::context::TxEnv;

use crate::error::{ExecError, Result};
use crate::evm::task::EvmTask;
use crate::finish::Prefix;
use crate::input::BlockInput;
use crate::output::ExecutedBy;
use crate::sequential::{Replay, ReplayRun};
use crate::storage::Storage;
use crate::types::TxIdx;

/// Runs `input` with Block-STM on `threads` workers and returns the final
/// prefix: the whole block, or, after a give-up, the transactions up to
/// the longest final prefix, with the executions above it.
///
/// # Errors
/// [`ExecError::Internal`] when a worker panicked (a bug).
pub(crate) fn run<S: Storage>(
    storage: &S,
    input: &BlockInput,
    threads: usize,
    give_up: Option<GiveUp>,
) -> Result<Prefix> {
    let task = EvmTask {
        storage,
        spec: input.spec,
        cfg: input.cfg(),
        block: input.block.clone(),
        txs: &input.txs,
    };
    let predecessors = sender_predecessors(&input.txs);
    let head_start = head_start::head_start(&input.txs, threads, &predecessors);
    let run = crate::stm::executor::run_block(
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
        let mut replay = Replay::default();
        replay.push(ReplayRun {
            start,
            outputs,
            seen,
            bounds,
        });
        replay
    });
    Ok(Prefix {
        outputs: run.outputs,
        threads,
        executed_by: ExecutedBy::BlockStm(threads),
        reexecutions: run.incarnations.iter().sum(),
        counts_offers: false,
        partial: None,
        replay,
        corrected_slots: 0,
        shifted_balances: 0,
    })
}

/// For each transaction, the previous transaction of the same sender.
fn sender_predecessors(txs: &[TxEnv]) -> Vec<Option<TxIdx>> {
    let mut last = rustc_hash::FxHashMap::default();
    txs.iter()
        .enumerate()
        .map(|(i, tx)| last.insert(tx.caller, i))
        .collect()
}
