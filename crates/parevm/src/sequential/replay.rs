//! What a parallel path hands over to the sequential loop: its executions
//! of the transactions after its prefix, each with every answer its
//! database gave it.

use crate::evm::task::TxOutput;
use crate::types::Seen;

/// Executions of transactions that a parallel path made but could not
/// prove exact, offered to
/// [`continue_block`](super::continue_block) (module docs).
#[derive(Default)]
pub(crate) struct Replay {
    /// Runs of consecutive transactions, in block order.
    runs: Vec<ReplayRun>,
    /// The run that the next lookup starts from (lookups go upwards).
    cursor: usize,
}

/// Consecutive executions: the output of transaction `start + i` (`None`:
/// failed) and the answers it was given, `seen[bounds[i]..bounds[i + 1]]`.
pub(crate) struct ReplayRun {
    pub(crate) start: usize,
    pub(crate) outputs: Vec<Option<TxOutput>>,
    pub(crate) seen: Vec<Seen>,
    pub(crate) bounds: Vec<usize>,
}

impl Replay {
    /// Adds a run; runs must come in block order, without overlap.
    pub(crate) fn push(&mut self, run: ReplayRun) {
        if !run.outputs.is_empty() {
            self.runs.push(run);
        }
    }

    /// Takes transaction `index`'s execution, with the answers it was given.
    /// Indices must be asked for in increasing order.
    pub(super) fn take(&mut self, index: usize) -> Option<(TxOutput, &[Seen])> {
        while let Some(run) = self.runs.get(self.cursor) {
            if index < run.start + run.outputs.len() {
                break;
            }
            self.cursor += 1;
        }
        let run = self.runs.get_mut(self.cursor)?;
        let i = index.checked_sub(run.start)?;
        let (from, to) = (*run.bounds.get(i)?, *run.bounds.get(i + 1)?);
        let output = run.outputs.get_mut(i)?.take()?;
        Some((output, run.seen.get(from..to)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{TxOutcome, TxReceipt};
    use alloy_primitives::{Address, U256};

    fn output(gas_used: u64) -> TxOutput {
        TxOutput {
            receipt: TxReceipt {
                outcome: TxOutcome::Success,
                gas_used,
                cumulative_gas_used: 0,
                logs: Vec::new(),
                output: Default::default(),
                created_address: None,
            },
            changes: Default::default(),
            lazy_credit: None,
            beneficiary_written: false,
        }
    }

    fn slot(n: u64) -> Seen {
        Seen::Slot(Address::ZERO, U256::from(n), U256::from(n))
    }

    #[test]
    fn replay_hands_out_each_execution_with_its_own_answers() {
        let mut replay = Replay::default();
        // Transactions 3 and 4 (4 failed), answers of 2 before them.
        replay.push(ReplayRun {
            start: 3,
            outputs: vec![Some(output(3)), None],
            seen: vec![slot(1), slot(2), slot(3), slot(4)],
            bounds: vec![2, 4],
        });
        replay.push(ReplayRun {
            start: 7,
            outputs: vec![Some(output(7)), Some(output(8))],
            seen: vec![slot(7)],
            bounds: vec![0, 0, 1],
        });
        assert!(replay.take(0).is_none());
        let (out, seen) = replay.take(3).expect("3");
        assert_eq!((out.receipt.gas_used, seen), (3, &[slot(3), slot(4)][..]));
        assert!(replay.take(3).is_none(), "taken once");
        assert!(replay.take(4).is_none(), "failed");
        assert!(replay.take(5).is_none(), "not executed");
        let (out, seen) = replay.take(7).expect("7");
        assert_eq!((out.receipt.gas_used, seen.len()), (7, 0));
        let (out, seen) = replay.take(8).expect("8");
        assert_eq!((out.receipt.gas_used, seen), (8, &[slot(7)][..]));
        assert!(replay.take(9).is_none());
    }
}
