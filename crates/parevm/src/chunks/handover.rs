//! The hand-over: a chunk's executions after the exact prefix, with every
//! answer each was given, offered to the sequential loop.

use alloy_primitives::Address;

use super::db::{BaseRead, ChunkDb};
use super::execute::ChunkRun;
use crate::evm::task::TxOutput;
use crate::sequential::ReplayRun;
use crate::types::Seen;

/// The executions of `run` from its `skip`th transaction on (its outputs
/// already start there), with every answer each was given, for the
/// sequential loop: its logged pre-block reads (the pre-block value, or
/// the prediction) followed by its other answers. A failed execution is
/// not offered.
pub(super) fn replay_run<S>(run: ChunkRun<'_, S>, skip: usize, beneficiary: Address) -> ReplayRun {
    let ChunkRun {
        start, outputs, db, ..
    } = run;
    let ChunkDb {
        seen,
        seen_ends,
        reads,
        predictions,
        ..
    } = db;
    let mut outputs: Vec<Option<TxOutput>> = outputs.into_iter().map(Result::ok).collect();
    let mut answers = Vec::new();
    let mut bounds = Vec::with_capacity(outputs.len() + 1);
    bounds.push(0);
    let mut from = match skip {
        0 => (0, 0),
        _ => seen_ends
            .get(skip - 1)
            .copied()
            .unwrap_or((seen.len(), reads.len())),
    };
    for (i, &to) in seen_ends.get(skip..).unwrap_or_default().iter().enumerate() {
        for (read, _) in reads.get(from.1..to.1).unwrap_or_default() {
            answers.push(match *read {
                // Its answer, with the pending credits, is in `seen`.
                BaseRead::Account(address) | BaseRead::Predicted(address)
                    if address == beneficiary =>
                {
                    continue
                }
                BaseRead::Account(address) => Seen::PreBlockAccount(address),
                BaseRead::Slot(address, slot) => Seen::PreBlockSlot(address, slot),
                BaseRead::HasStorage(address) => Seen::PreBlockProbe(address),
                BaseRead::Predicted(address) => match predictions.get(&address) {
                    Some(&value) => Seen::Account(address, Some(value)),
                    // Every predicted read has its prediction; without
                    // one the execution is not offered.
                    None => {
                        if let Some(output) = outputs.get_mut(i) {
                            *output = None;
                        }
                        continue;
                    }
                },
            });
        }
        answers.extend(seen.get(from.0..to.0).unwrap_or_default().iter().cloned());
        bounds.push(answers.len());
        from = to;
    }
    ReplayRun {
        start: start + skip,
        outputs,
        seen: answers,
        bounds,
    }
}
