//! What executing a block produces: per-transaction receipts and state
//! changes, and the merged state diff of the block.
//!
//! Both execution paths build these from revm's per-transaction state with
//! the same function (`account_change`), and all maps are ordered, so two
//! results can be compared field by field and print the same on every run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use alloy_primitives::{Address, Bytes, Log, B256, U256};
use revm::bytecode::Bytecode;
use revm::primitives::hardfork::SpecId;
use revm::primitives::KECCAK_EMPTY;
use revm::state::Account;

/// How a transaction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxOutcome {
    /// Ran to the end (STOP/RETURN/SELFDESTRUCT).
    Success,
    /// Ended with REVERT.
    Revert,
    /// Exceptional halt (out of gas, invalid opcode, ...), with revm's reason.
    Halt(String),
}

/// The receipt-equivalent result of one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxReceipt {
    /// Success, revert or halt.
    pub outcome: TxOutcome,
    /// Gas used by this transaction (what the receipt reports).
    pub gas_used: u64,
    /// Gas used by this and all earlier transactions of the block.
    pub cumulative_gas_used: u64,
    /// Logs emitted (empty unless successful).
    pub logs: Vec<Log>,
    /// Address of the contract created by a successful CREATE transaction.
    pub created_address: Option<Address>,
    /// Return or revert data.
    pub output: Bytes,
}

impl TxReceipt {
    /// EIP-658 status: true when the transaction succeeded.
    pub fn success(&self) -> bool {
        self.outcome == TxOutcome::Success
    }
}

/// The state of an account after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Hash of the code ([`KECCAK_EMPTY`] without code).
    pub code_hash: B256,
    /// The code, when this change set it (contract creation, EIP-7702 delegation).
    pub code: Option<Bytecode>,
}

impl AccountState {
    /// True when balance and nonce are zero and there is no code (EIP-161).
    pub fn is_empty(&self) -> bool {
        self.balance.is_zero() && self.nonce == 0 && self.code_hash == KECCAK_EMPTY
    }
}

/// How one account changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// The account after the change; `None` if it was deleted (SELFDESTRUCT,
    /// or an empty account touched after Spurious Dragon).
    pub info: Option<AccountState>,
    /// All storage of the account was cleared before `storage` was applied.
    pub storage_cleared: bool,
    /// Slots written, with their new values.
    pub storage: BTreeMap<U256, U256>,
}

/// Changes per account, ordered by address.
pub type StateDiff = BTreeMap<Address, AccountChange>;

/// One transaction's changes, ordered by address.
///
/// A sorted vector rather than a [`StateDiff`]: a transaction touches a
/// handful of accounts, and a B-tree node for them is a kilobyte-sized
/// allocation per transaction that both execution paths would pay.
/// Iterating a `&TxChanges` yields `(&Address, &AccountChange)` like a map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxChanges(Vec<(Address, AccountChange)>);

impl TxChanges {
    /// Where `address` is (`Ok`) or would be inserted (`Err`).
    fn position(&self, address: &Address) -> Result<usize, usize> {
        self.0.binary_search_by(|(a, _)| a.cmp(address))
    }

    /// The change of `address`, if the transaction touched it.
    pub fn get(&self, address: &Address) -> Option<&AccountChange> {
        self.position(address).ok().map(|i| &self.0[i].1)
    }

    /// The change of `address`, to correct in place.
    pub(crate) fn get_mut(&mut self, address: &Address) -> Option<&mut AccountChange> {
        let i = self.position(address).ok()?;
        Some(&mut self.0[i].1)
    }

    /// Sets the change of `address`, replacing an earlier one.
    pub fn insert(&mut self, address: Address, change: AccountChange) {
        match self.position(&address) {
            Ok(i) => self.0[i].1 = change,
            Err(i) => self.0.insert(i, (address, change)),
        }
    }

    /// Removes and returns the change of `address`.
    pub fn remove(&mut self, address: &Address) -> Option<AccountChange> {
        let i = self.position(address).ok()?;
        Some(self.0.remove(i).1)
    }

    /// The touched accounts, in address order.
    pub fn keys(&self) -> impl Iterator<Item = &Address> {
        self.0.iter().map(|(a, _)| a)
    }

    /// Accounts and changes, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (&Address, &AccountChange)> {
        self.into_iter()
    }

    /// Number of touched accounts.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the transaction changed nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The changes as an ordered map.
    pub fn to_diff(&self) -> StateDiff {
        self.iter().map(|(a, c)| (*a, c.clone())).collect()
    }
}

impl FromIterator<(Address, AccountChange)> for TxChanges {
    /// Collects changes; for an address given twice the later one wins.
    fn from_iter<I: IntoIterator<Item = (Address, AccountChange)>>(iter: I) -> Self {
        let mut changes: Vec<(Address, AccountChange)> = iter.into_iter().collect();
        if !changes.is_sorted_by(|x, y| x.0 < y.0) {
            // Stable: of two changes of one address the later stays later.
            changes.sort_by_key(|x| x.0);
        }
        if changes.windows(2).any(|w| w[0].0 == w[1].0) {
            let mut deduped: Vec<(Address, AccountChange)> = Vec::with_capacity(changes.len());
            for (address, change) in changes {
                match deduped.last_mut() {
                    Some(last) if last.0 == address => last.1 = change,
                    _ => deduped.push((address, change)),
                }
            }
            changes = deduped;
        }
        Self(changes)
    }
}

impl<'a> IntoIterator for &'a TxChanges {
    type Item = (&'a Address, &'a AccountChange);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Address, AccountChange)>,
        fn(&'a (Address, AccountChange)) -> (&'a Address, &'a AccountChange),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(a, c)| (a, c))
    }
}

/// The result of one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxResult {
    /// Receipt fields.
    pub receipt: TxReceipt,
    /// Accounts this transaction touched, and how.
    pub changes: TxChanges,
}

/// Which path executed a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutedBy {
    /// The sequential revm loop.
    Sequential,
    /// Block-STM with this many worker threads.
    Parallel(usize),
    /// Optimistic chunks, one per thread (`Mode::Chunked`).
    Chunked(usize),
}

/// Counters about how the block was executed; not part of the result's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecStats {
    /// Which path ran.
    pub executed_by: ExecutedBy,
    /// Total executions beyond the first of each transaction.
    pub reexecutions: usize,
    /// Set when the parallel run stopped short of the end of the block and
    /// the transactions from this index on ran sequentially (the ones below
    /// it were already final): `auto` found the block too conflicted for
    /// Block-STM to win, or the chunks met a conflict here.
    pub sequential_from: Option<usize>,
    /// Storage slots that a chunk read before an earlier chunk changed
    /// them and that were corrected instead of ending the chunk
    /// ([`Mode::ChunkedDeltas`](crate::Mode::ChunkedDeltas)), counted once
    /// per chunk.
    pub corrected_slots: usize,
    /// Account balances that a chunk predicted wrong only by their amount
    /// (a sender whose earlier transfers ran code, a mining pool paying
    /// out in its own block) and that were shifted to the real balance
    /// instead of ending the chunk ([`Mode::Chunked`](crate::Mode::Chunked)),
    /// counted once per chunk.
    pub shifted_balances: usize,
    /// Transactions from `sequential_from` on whose parallel execution the
    /// sequential loop checked (every value it was given is the value the
    /// loop would give it) and kept instead of executing them again.
    pub kept_after_handover: usize,
}

/// The result of a block.
#[derive(Clone, Debug)]
pub struct BlockResult {
    /// One result per transaction, in block order.
    pub txs: Vec<TxResult>,
    /// All changes of the block merged in order: the post-block state diff.
    pub state: StateDiff,
    /// Execution counters.
    pub stats: ExecStats,
}

impl PartialEq for BlockResult {
    fn eq(&self, other: &Self) -> bool {
        self.txs == other.txs && self.state == other.state
    }
}

impl BlockResult {
    /// Total gas used by the block.
    pub fn gas_used(&self) -> u64 {
        self.txs.last().map_or(0, |t| t.receipt.cumulative_gas_used)
    }

    /// Describes the first difference from `other`, field by field, or
    /// `None` when the two results are identical (statistics aside).
    pub fn first_difference(&self, other: &Self) -> Option<String> {
        if self.txs.len() != other.txs.len() {
            return Some(format!(
                "tx count {} != {}",
                self.txs.len(),
                other.txs.len()
            ));
        }
        for (i, (a, b)) in self.txs.iter().zip(&other.txs).enumerate() {
            let (ra, rb) = (&a.receipt, &b.receipt);
            let mut out = String::new();
            if ra.outcome != rb.outcome {
                let _ = write!(out, "outcome {:?} != {:?}; ", ra.outcome, rb.outcome);
            }
            if ra.gas_used != rb.gas_used {
                let _ = write!(out, "gas_used {} != {}; ", ra.gas_used, rb.gas_used);
            }
            if ra.cumulative_gas_used != rb.cumulative_gas_used {
                let _ = write!(
                    out,
                    "cumulative gas {} != {}; ",
                    ra.cumulative_gas_used, rb.cumulative_gas_used
                );
            }
            if ra.logs != rb.logs {
                let _ = write!(out, "logs differ; ");
            }
            if ra.created_address != rb.created_address {
                let _ = write!(
                    out,
                    "created {:?} != {:?}; ",
                    ra.created_address, rb.created_address
                );
            }
            if ra.output != rb.output {
                let _ = write!(out, "output differs; ");
            }
            let changes = (a.changes != b.changes)
                .then(|| diff_states(&a.changes.to_diff(), &b.changes.to_diff()))
                .flatten();
            if let Some(d) = changes {
                let _ = write!(out, "changes: {d}");
            }
            if !out.is_empty() {
                return Some(format!("tx {i}: {out}"));
            }
        }
        diff_states(&self.state, &other.state).map(|d| format!("block state: {d}"))
    }
}

fn diff_states(a: &StateDiff, b: &StateDiff) -> Option<String> {
    for (addr, ca) in a {
        match b.get(addr) {
            None => return Some(format!("{addr} only on the left: {ca:?}")),
            Some(cb) if cb != ca => return Some(format!("{addr}: {ca:?} != {cb:?}")),
            _ => {}
        }
    }
    b.iter()
        .find(|(addr, _)| !a.contains_key(*addr))
        .map(|(addr, change)| format!("{addr} only on the right: {change:?}"))
}

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
    let parts = crate::executor::fan_out(threads, |p| {
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

/// Before Spurious Dragon a touched empty account is kept, not deleted:
/// revm's journal expresses this at the end of each transaction by marking
/// an account that did not exist as created, and by un-touching one that
/// existed. Accounts we build ourselves (the lazy beneficiary credit) go
/// through the same rule so both paths describe them alike.
pub(crate) fn normalize_pre_spurious(account: &mut Account, spec: SpecId) {
    if spec.is_enabled_in(SpecId::SPURIOUS_DRAGON)
        || !account.is_touched()
        || !account.is_empty()
        || account.is_selfdestructed()
        || account.is_created()
    {
        return;
    }
    if account.is_loaded_as_not_existing() {
        account.mark_created();
    } else {
        account.unmark_touch();
    }
}

/// The change revm's journal recorded for one account, or `None` if the
/// account was only read. Shared by both execution paths, so that they agree
/// by construction on what "changed" means.
pub(crate) fn account_change(account: &Account, spec: SpecId) -> Option<AccountChange> {
    if !account.is_touched() {
        return None;
    }
    let deleted = account.is_selfdestructed()
        || (spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) && account.is_empty());
    if deleted {
        return Some(AccountChange {
            info: None,
            storage_cleared: true,
            storage: BTreeMap::new(),
        });
    }
    let info = &account.info;
    // Code is reported when this change set it; an account without code
    // needs none (and plain accounts skip the clone of the original info).
    let code_changed = info.code_hash != KECCAK_EMPTY
        && (account.is_created() || account.original_info().code_hash != info.code_hash);
    Some(AccountChange {
        info: Some(AccountState {
            balance: info.balance,
            nonce: info.nonce,
            code_hash: info.code_hash,
            code: if code_changed {
                info.code.clone()
            } else {
                None
            },
        }),
        storage_cleared: account.is_created(),
        storage: account
            .changed_storage_slots()
            .map(|(k, v)| (*k, v.present_value))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(balance: u64) -> AccountChange {
        AccountChange {
            info: Some(AccountState {
                balance: U256::from(balance),
                nonce: 0,
                code_hash: KECCAK_EMPTY,
                code: None,
            }),
            ..AccountChange::default()
        }
    }

    #[test]
    fn tx_changes_are_sorted_deduplicated_and_searchable() {
        let (a, b, c) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        );
        let mut changes: TxChanges = [(c, change(3)), (a, change(1)), (c, change(4))]
            .into_iter()
            .collect();
        assert_eq!(changes.keys().copied().collect::<Vec<_>>(), vec![a, c]);
        assert_eq!(changes.get(&c), Some(&change(4)), "the later change wins");
        changes.insert(b, change(2));
        changes.insert(a, change(5));
        let pairs: Vec<(Address, AccountChange)> =
            changes.iter().map(|(x, y)| (*x, y.clone())).collect();
        assert_eq!(pairs, vec![(a, change(5)), (b, change(2)), (c, change(4))]);
        assert_eq!(changes.remove(&b), Some(change(2)));
        assert_eq!(changes.get(&b), None);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes.to_diff().len(), 2);
    }

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
