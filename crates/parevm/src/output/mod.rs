//! What executing a block produces: per-transaction receipts and state
//! changes, and the merged state diff of the block.
//!
//! Every path builds these from revm's per-transaction state with the same
//! function (`evm::changes::account_change`), and all maps are ordered, so two
//! results can be compared field by field and print the same on every run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub(crate) mod merge;

use alloy_primitives::{Address, Bytes, Log, B256, U256};
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;

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
    BlockStm(usize),
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

pub(crate) fn diff_states(a: &StateDiff, b: &StateDiff) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn change(balance: u64) -> AccountChange {
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
}
