//! Merging per-transaction changes into a block's state diff: in block
//! order on one thread, by account on many, and as a join of the diffs of
//! consecutive ranges (chunks) built while they ran.

use alloy_primitives::Address;

use super::{AccountChange, StateDiff, TxChanges, TxResult};
use crate::pool::fan_out;

/// Applies a later change of an account on top of an earlier one.
fn merge_change(entry: &mut AccountChange, change: &AccountChange) {
    if change.storage_cleared {
        entry.storage_cleared = true;
        entry.storage.clear();
    }
    let prev_code = entry
        .info
        .as_ref()
        .and_then(|i| i.code.clone().map(|c| (i.code_hash, c)));
    entry.info = change.info.clone();
    // Keep code set by an earlier change if this one did not set it.
    if let (Some(info), Some((hash, code))) = (entry.info.as_mut(), prev_code) {
        if info.code.is_none() && info.code_hash == hash {
            info.code = Some(code);
        }
    }
    entry
        .storage
        .extend(change.storage.iter().map(|(k, v)| (*k, *v)));
}

/// Folds `changes` into an ordered diff (for callers that keep one).
pub(crate) fn merge_into<'a>(
    acc: &mut StateDiff,
    changes: impl IntoIterator<Item = (&'a Address, &'a AccountChange)>,
) {
    for (address, change) in changes {
        merge_change(acc.entry(*address).or_default(), change);
    }
}

/// Accumulates per-transaction changes into the block's state diff.
///
/// The merged changes sit in a vector in first-touch order, found through a
/// hash map of small (address, position) entries: one lookup per touched
/// account instead of a B-tree search, and the large changes are never
/// moved by a rehash. Ordered once at the end.
pub(crate) struct StateAccumulator {
    position: rustc_hash::FxHashMap<Address, usize>,
    changes: Vec<AccountChange>,
}

impl StateAccumulator {
    pub(crate) fn with_capacity(accounts: usize) -> Self {
        Self {
            position: rustc_hash::FxHashMap::with_capacity_and_hasher(accounts, Default::default()),
            changes: Vec::with_capacity(accounts),
        }
    }

    fn merge_one(&mut self, addr: Address, change: &AccountChange) {
        match self.position.entry(addr) {
            std::collections::hash_map::Entry::Occupied(at) => {
                merge_change(&mut self.changes[*at.get()], change);
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(self.changes.len());
                // The first change of an account is the merge onto nothing.
                self.changes.push(change.clone());
            }
        }
    }

    /// Folds in the changes of every transaction, in order, keeping only
    /// the accounts `keep` selects.
    fn merge_filtered(&mut self, txs: &[TxResult], keep: impl Fn(&Address) -> bool) {
        for tx in txs {
            self.merge_tx(&tx.changes, &keep);
        }
    }

    /// Folds in the changes of one transaction, keeping only the accounts
    /// `keep` selects.
    pub(crate) fn merge_tx(&mut self, changes: &TxChanges, keep: impl Fn(&Address) -> bool) {
        for (address, change) in changes {
            if keep(address) {
                self.merge_one(*address, change);
            }
        }
    }

    /// The merged diff, ordered by address.
    pub(crate) fn finish(self) -> StateDiff {
        // Sorted input: collecting it is a linear bulk build.
        self.finish_sorted().into_iter().collect()
    }

    /// The merged changes as a vector ordered by address.
    pub(crate) fn finish_sorted(mut self) -> SortedChanges {
        // Sort (address, position) pairs, not the large changes, then move
        // each change once.
        let mut order: Vec<(Address, usize)> = self.position.into_iter().collect();
        order.sort_unstable_by_key(|(address, _)| *address);
        order
            .into_iter()
            .map(|(address, i)| (address, std::mem::take(&mut self.changes[i])))
            .collect()
    }
}

/// Merges the changes of all transactions, in block order, on this thread.
pub(crate) fn merge_sequential(txs: &[TxResult]) -> StateDiff {
    let mut acc = StateAccumulator::with_capacity(txs.iter().map(|tx| tx.changes.len()).sum());
    acc.merge_filtered(txs, |_| true);
    acc.finish()
}

/// Merges the changes of all transactions on `threads` threads: each thread
/// owns the accounts whose address hashes to it, so no two threads touch the
/// same entry and each still sees that account's changes in block order.
///
/// # Errors
/// A message if a merging thread panicked (a bug).
pub(crate) fn merge_parallel(txs: &[TxResult], threads: usize) -> Result<StateDiff, String> {
    if threads <= 1 || txs.len() < 256 {
        return Ok(merge_sequential(txs));
    }
    let part = |address: &Address| {
        let b = address.as_slice();
        (usize::from(b[19]) ^ usize::from(b[18]) << 8 ^ usize::from(b[0])) % threads
    };
    let changes: usize = txs.iter().map(|tx| tx.changes.len()).sum();
    let parts = fan_out(threads, |p| {
        let mut acc = StateAccumulator::with_capacity(changes / threads);
        acc.merge_filtered(txs, |a| part(a) == p);
        acc.finish()
    })?;
    let mut merged = StateDiff::new();
    for mut part in parts {
        merged.append(&mut part);
    }
    Ok(merged)
}

/// Merged changes ordered by address (a [`StateDiff`] before it is built).
pub(crate) type SortedChanges = Vec<(Address, AccountChange)>;

/// The merged changes of consecutive ranges of a block's transactions,
/// built while those ranges ran (one per chunk), without the beneficiary.
pub(crate) struct PartialState {
    /// The ranges cover transactions `0..covers`.
    pub(crate) covers: usize,
    /// One diff per range, in block order.
    pub(crate) diffs: Vec<SortedChanges>,
}

/// Joins two diffs of consecutive ranges into the diff of both: for an
/// account in both, the later change is applied on top of the earlier.
///
/// This equals folding the two ranges' transactions one by one, because
/// `merge_change` is associative on changes that follow each other: the
/// storage rule (a clear drops what came before) and the info rule (the
/// last wins) are, and so is the code rule, since a change without code
/// keeps the code hash the account had before it.
fn join(earlier: SortedChanges, later: SortedChanges) -> SortedChanges {
    if earlier.is_empty() {
        return later;
    }
    let mut joined = Vec::with_capacity(earlier.len() + later.len());
    let mut later = later.into_iter().peekable();
    for (address, mut change) in earlier {
        while let Some(entry) = later.next_if(|(a, _)| *a < address) {
            joined.push(entry);
        }
        if let Some((_, newer)) = later.next_if(|(a, _)| *a == address) {
            merge_change(&mut change, &newer);
        }
        joined.push((address, change));
    }
    joined.extend(later);
    joined
}

/// Joins the diffs of consecutive ranges, in block order, into one diff.
pub(crate) fn join_ranges(mut diffs: Vec<SortedChanges>) -> StateDiff {
    // Join neighbours pairwise, so that each entry moves about log2(ranges)
    // times rather than once per range.
    while diffs.len() > 1 {
        let mut pairs = Vec::with_capacity(diffs.len().div_ceil(2));
        let mut drain = diffs.into_iter();
        while let Some(earlier) = drain.next() {
            pairs.push(match drain.next() {
                Some(later) => join(earlier, later),
                None => earlier,
            });
        }
        diffs = pairs;
    }
    // Sorted input: collecting it is a linear bulk build.
    diffs.pop().unwrap_or_default().into_iter().collect()
}

/// The changes `txs` made to `address`, merged in order (`None` if none
/// touched it).
#[derive(Clone, Debug, Default)]
pub(crate) struct AccountFold {
    /// Transactions folded so far: `txs[..upto]`.
    upto: usize,
    merged: Option<AccountChange>,
}

impl AccountFold {
    /// Folds in the transactions of `txs` after those folded so far.
    pub(crate) fn extend(&mut self, txs: &[TxResult], address: Address) {
        for tx in txs.get(self.upto..).unwrap_or_default() {
            if let Some(change) = tx.changes.get(&address) {
                match self.merged.as_mut() {
                    Some(entry) => merge_change(entry, change),
                    None => self.merged = Some(change.clone()),
                }
            }
        }
        self.upto = self.upto.max(txs.len());
    }
}

/// Completes `state`, the joined diffs of the chunks that cover
/// `txs[..covers]`, into the block's state diff: folds in the transactions
/// after them and the beneficiary (which the chunk diffs leave out: its fee
/// credits are only known once the block is committed). `credited` holds
/// the beneficiary's changes of a prefix of `txs` merged already (next to
/// the join of the chunk diffs, which takes longer).
pub(crate) fn complete_after_chunks(
    state: &mut StateDiff,
    txs: &[TxResult],
    covers: usize,
    beneficiary: Address,
    mut credited: AccountFold,
) {
    for tx in txs.get(covers..).unwrap_or_default() {
        for (address, change) in &tx.changes {
            if *address != beneficiary {
                // Onto nothing, a change is merged into a copy of itself.
                merge_change(state.entry(*address).or_default(), change);
            }
        }
    }
    credited.extend(txs, beneficiary);
    if let Some(change) = credited.merged {
        state.insert(beneficiary, change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::diff_states;
    use crate::output::tests::change;
    use crate::output::{TxOutcome, TxReceipt};
    use alloy_primitives::{Bytes, U256};
    use revm::bytecode::Bytecode;

    /// A block of transactions that write, clear, delete and re-create a
    /// few accounts (one of them the beneficiary), with code set along the
    /// way: every kind of change `merge_change` folds.
    fn churning_block() -> (Vec<TxResult>, Address) {
        let beneficiary = Address::repeat_byte(0xbe);
        let accounts = [
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
            beneficiary,
        ];
        let code = Bytecode::new_raw(Bytes::from_static(&[0x60, 0x00, 0x00]));
        let txs = (0..24u64)
            .map(|i| {
                let changes = accounts
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| !(i + *k as u64).is_multiple_of(3))
                    .map(|(k, address)| {
                        let mut change = change(i * 10 + k as u64);
                        match (i + k as u64) % 5 {
                            0 => change.info = None,
                            1 => {
                                if let Some(info) = change.info.as_mut() {
                                    info.code_hash = code.hash_slow();
                                    info.code = Some(code.clone());
                                }
                                change.storage_cleared = true;
                            }
                            _ => {}
                        }
                        change
                            .storage
                            .insert(U256::from(i % 4), U256::from(i * 100 + k as u64));
                        (*address, change)
                    })
                    .collect();
                TxResult {
                    receipt: TxReceipt {
                        outcome: TxOutcome::Success,
                        gas_used: 0,
                        cumulative_gas_used: 0,
                        logs: Vec::new(),
                        created_address: None,
                        output: Bytes::new(),
                    },
                    changes,
                }
            })
            .collect();
        (txs, beneficiary)
    }

    #[test]
    fn chunk_diffs_join_into_the_sequential_merge() {
        let (txs, beneficiary) = churning_block();
        let expected = merge_sequential(&txs);
        let range_diff = |range: &[TxResult]| {
            let mut acc = StateAccumulator::with_capacity(8);
            for tx in range {
                acc.merge_tx(&tx.changes, |a| *a != beneficiary);
            }
            acc.finish_sorted()
        };
        // Every split into ranges at multiples of 3 and 4, with the chunk
        // diffs covering a prefix and the rest merged afterwards.
        for step in [1, 3, 4, 7, 24] {
            for covers in [0, step.min(txs.len()), txs.len() / 2, txs.len()] {
                let bounds: Vec<usize> = (0..covers).step_by(step).chain([covers]).collect();
                let diffs = bounds
                    .windows(2)
                    .map(|w| range_diff(&txs[w[0]..w[1]]))
                    .collect();
                let joined = join_ranges(diffs);
                // The beneficiary folded beforehand up to any point.
                for folded in [0, covers / 2, covers, txs.len()] {
                    let mut credited = AccountFold::default();
                    credited.extend(&txs[..folded], beneficiary);
                    let mut merged = joined.clone();
                    complete_after_chunks(&mut merged, &txs, covers, beneficiary, credited);
                    assert_eq!(
                        diff_states(&merged, &expected),
                        None,
                        "ranges of {step}, chunks cover {covers}, folded {folded}"
                    );
                    assert_eq!(merged, expected);
                }
            }
        }
    }
}
