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

use alloy_primitives::{Address, B256, U256};
use revm::bytecode::Bytecode;
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::database_interface::Database;
use revm::primitives::hardfork::SpecId;
use revm::state::AccountInfo;
use revm::ExecuteEvm;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::{Result, StorageError};
use crate::journal::{mainnet_evm, Eip7610Evm, StorageProbe};
use crate::output::{
    merge_sequential, AccountChange, BlockResult, ExecStats, ExecutedBy, TxResult,
};
use crate::storage::Storage;
use crate::tx_task::{changes_of, receipt_of, TxFailure, TxOutput};
use crate::view::AccountValue;

/// One answer a transaction's database gave it: the location asked about
/// and the value returned. Code (by hash) and block hashes are left out:
/// they cannot differ between two databases of the same block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// `basic(address)`: balance, nonce and code hash, or no account.
    Account(Address, Option<(U256, u64, B256)>),
    /// `storage(address, slot)` and its value.
    Slot(Address, U256, U256),
    /// The EIP-7610 probe: whether the account has storage.
    HasStorage(Address, bool),
    /// `basic(address)` answered with the pre-block account.
    PreBlockAccount(Address),
    /// `storage(address, slot)` answered with the pre-block value.
    PreBlockSlot(Address, U256),
    /// The EIP-7610 probe answered from the pre-block storage.
    PreBlockProbe(Address),
}

impl Seen {
    /// The answer `basic` gave.
    pub(crate) fn account(address: Address, info: Option<&AccountInfo>) -> Self {
        Self::Account(address, info.map(|i| (i.balance, i.nonce, i.code_hash)))
    }
}

/// Executions of transactions that a parallel path made but could not
/// prove exact, offered to [`continue_block`] (module docs).
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
    fn take(&mut self, index: usize) -> Option<(TxOutput, &[Seen])> {
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

/// The changes of the transactions executed so far, by location: what a
/// loop over the block has written on top of the pre-block storage.
#[derive(Default)]
pub(crate) struct Overlay {
    pub(crate) accounts: FxHashMap<Address, Option<AccountValue>>,
    pub(crate) slots: FxHashMap<(Address, U256), U256>,
    /// Accounts whose pre-block storage was cleared (wiped or deleted).
    pub(crate) wiped: FxHashSet<Address>,
}

impl Overlay {
    /// An overlay sized for the changes of about `txs` transactions (two
    /// accounts and two slots each), so that it does not rehash while the
    /// loop runs.
    pub(crate) fn for_txs(txs: usize) -> Self {
        Self {
            accounts: FxHashMap::with_capacity_and_hasher(2 * txs, Default::default()),
            slots: FxHashMap::with_capacity_and_hasher(2 * txs, Default::default()),
            wiped: FxHashSet::default(),
        }
    }

    /// Applies one transaction's changes.
    pub(crate) fn commit<'c>(
        &mut self,
        changes: impl IntoIterator<Item = (&'c Address, &'c AccountChange)>,
    ) {
        for (address, change) in changes {
            if change.storage_cleared {
                self.wiped.insert(*address);
                self.slots.retain(|(a, _), _| a != address);
            }
            let previous_code = self
                .accounts
                .get(address)
                .and_then(|a| a.as_ref())
                .and_then(|a| a.code.clone());
            let value = match &change.info {
                Some(state) => {
                    let code = match (&state.code, previous_code) {
                        (Some(code), _) => Some(code.clone()),
                        (None, Some(code)) => Some(code),
                        (None, None) => None,
                    };
                    Some(AccountValue::from_state(state, code.as_ref()))
                }
                None => None,
            };
            self.accounts.insert(*address, value);
            for (slot, value) in &change.storage {
                self.slots.insert((*address, *slot), *value);
            }
        }
    }

    /// The slot's value if the loop wrote it or wiped its account's storage.
    pub(crate) fn slot(&self, address: Address, index: U256) -> Option<U256> {
        match self.slots.get(&(address, index)) {
            Some(value) => Some(*value),
            None => self.wiped.contains(&address).then_some(U256::ZERO),
        }
    }
}

/// Pre-block storage plus the changes of the transactions executed so far.
pub(crate) struct OverlayDb<'a, S> {
    storage: &'a S,
    overlay: Overlay,
    /// A storage failure met by the EIP-7610 probe, reported after the
    /// transaction (the journal cannot return it).
    deferred: Option<StorageError>,
}

impl<'a, S: Storage> OverlayDb<'a, S> {
    pub(crate) fn new(storage: &'a S) -> Self {
        Self::for_txs(storage, 0)
    }

    /// An overlay database sized for about `txs` transactions.
    pub(crate) fn for_txs(storage: &'a S, txs: usize) -> Self {
        Self {
            storage,
            overlay: Overlay::for_txs(txs),
            deferred: None,
        }
    }

    /// Applies one transaction's changes.
    pub(crate) fn commit<'c>(
        &mut self,
        changes: impl IntoIterator<Item = (&'c Address, &'c AccountChange)>,
    ) {
        self.overlay.commit(changes);
    }

    /// Whether this database gives `seen`'s answer now. A failing read
    /// counts as a different answer (the transaction is then executed, and
    /// fails there as it would have).
    fn answers(&mut self, seen: &Seen) -> bool {
        match seen {
            Seen::Account(address, value) => self
                .basic(*address)
                .is_ok_and(|info| info.map(|i| (i.balance, i.nonce, i.code_hash)) == *value),
            Seen::Slot(address, slot, value) => {
                self.storage(*address, *slot).is_ok_and(|v| v == *value)
            }
            Seen::HasStorage(address, has) => {
                if self.overlay.wiped.contains(address) {
                    !*has
                } else {
                    self.storage.has_storage(address).is_ok_and(|h| h == *has)
                }
            }
            // This database gives the pre-block value unless its overlay
            // holds the location; then the two are compared.
            Seen::PreBlockAccount(address) => match self.overlay.accounts.get(address) {
                None => true,
                Some(now) => storage_info(self.storage, address).is_ok_and(|before| {
                    before.map(|i| (i.balance, i.nonce, i.code_hash))
                        == now.as_ref().map(|v| (v.balance, v.nonce, v.code_hash))
                }),
            },
            Seen::PreBlockSlot(address, slot) => match self.overlay.slot(*address, *slot) {
                None => true,
                Some(now) => self.storage.storage(address, slot).is_ok_and(|v| v == now),
            },
            Seen::PreBlockProbe(address) => {
                !self.overlay.wiped.contains(address)
                    || self.storage.has_storage(address).is_ok_and(|has| !has)
            }
        }
    }

    /// Commits a kept execution of transaction `index` like the loop
    /// commits its own: its lazy fee credit, if any, becomes a change of
    /// the beneficiary as the loop holds it now.
    fn keep(
        &mut self,
        mut output: TxOutput,
        index: usize,
        beneficiary: Address,
        spec: SpecId,
        cumulative: &mut u64,
    ) -> Result<TxResult> {
        if let Some(delta) = output.beneficiary_delta {
            let before = match self.overlay.accounts.get(&beneficiary) {
                Some(value) => value.clone(),
                None => crate::pre_block_account(self.storage, &beneficiary, index)?,
            };
            if let Some(change) = crate::credit(before.as_ref(), delta, spec) {
                output.changes.insert(beneficiary, change);
            }
        }
        self.commit(&output.changes);
        let mut receipt = output.receipt;
        *cumulative += receipt.gas_used;
        receipt.cumulative_gas_used = *cumulative;
        Ok(TxResult {
            receipt,
            changes: output.changes,
        })
    }
}

impl<S: Storage> StorageProbe for OverlayDb<'_, S> {
    fn has_storage(&mut self, address: Address) -> bool {
        // A wipe or deletion earlier in the block cleared the pre-block
        // storage; storage written since belongs to an account created in
        // the block, which has a nonce or code and is refused by revm.
        if self.overlay.wiped.contains(&address) {
            return false;
        }
        probe_storage(self.storage, &address, &mut self.deferred)
    }
}

/// The EIP-7610 probe against the pre-block storage. A failure is kept in
/// `deferred` (the journal cannot return it) and the answer is `true`.
pub(crate) fn probe_storage<S: Storage>(
    storage: &S,
    address: &Address,
    deferred: &mut Option<StorageError>,
) -> bool {
    match storage.has_storage(address) {
        Ok(has) => has,
        Err(e) => {
            deferred.get_or_insert(e);
            true
        }
    }
}

/// An account of the pre-block storage as revm sees it, without its code
/// (revm asks for that by hash).
pub(crate) fn storage_info<S: Storage>(
    storage: &S,
    address: &Address,
) -> Result<Option<AccountInfo>, StorageError> {
    Ok(storage.account(address)?.map(|basic| AccountInfo {
        balance: basic.balance,
        nonce: basic.nonce,
        code_hash: basic.code_hash,
        code: None,
        ..Default::default()
    }))
}

/// Code by hash from the pre-block storage; the empty code needs no lookup.
pub(crate) fn storage_code<S: Storage>(
    storage: &S,
    code_hash: &B256,
) -> Result<Bytecode, StorageError> {
    if *code_hash == revm::primitives::KECCAK_EMPTY {
        return Ok(Bytecode::default());
    }
    storage.code_by_hash(code_hash)
}

impl<S: Storage> Database for OverlayDb<'_, S> {
    type Error = StorageError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StorageError> {
        if let Some(value) = self.overlay.accounts.get(&address) {
            // Code not cached here is fetched by `code_by_hash`.
            return Ok(value.as_ref().map(AccountValue::to_info));
        }
        storage_info(self.storage, &address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StorageError> {
        storage_code(self.storage, &code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, StorageError> {
        match self.overlay.slot(address, index) {
            Some(value) => Ok(value),
            None => self.storage.storage(&address, &index),
        }
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, StorageError> {
        self.storage.block_hash(number)
    }
}

/// Executes the block one transaction after another.
///
/// # Errors
/// The first transaction that is invalid or whose reads fail.
pub(crate) fn execute<S: Storage>(
    storage: &S,
    spec: SpecId,
    cfg: CfgEnv,
    block: BlockEnv,
    txs: &[TxEnv],
) -> Result<BlockResult> {
    let mut results = Vec::with_capacity(txs.len());
    continue_block(storage, spec, cfg, block, txs, &mut results, None)?;
    Ok(BlockResult {
        state: merge_sequential(&results),
        txs: results,
        stats: ExecStats {
            executed_by: ExecutedBy::Sequential,
            reexecutions: 0,
            sequential_from: None,
            corrected_slots: 0,
            shifted_balances: 0,
            kept_after_handover: 0,
        },
    })
}

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
    let mut evm = mainnet_evm(db, block, cfg);
    let mut cumulative = done.last().map_or(0, |r| r.receipt.cumulative_gas_used);
    let mut kept = 0;
    for (index, tx) in txs.iter().enumerate().skip(done.len()) {
        if let Some((output, seen)) = replay.as_mut().and_then(|r| r.take(index)) {
            let db = evm.ctx.journaled_state.database();
            if seen.iter().all(|seen| db.answers(seen)) {
                done.push(db.keep(output, index, beneficiary, spec, &mut cumulative)?);
                kept += 1;
                continue;
            }
        }
        let result = step(&mut evm, tx, index, spec, &mut cumulative)?;
        done.push(result);
    }
    Ok(kept)
}

/// One transaction of the sequential loop: execute, commit, build the result.
fn step<S: Storage>(
    evm: &mut SeqEvm<'_, S>,
    tx: &TxEnv,
    index: usize,
    spec: SpecId,
    cumulative: &mut u64,
) -> Result<TxResult> {
    let outcome = evm.transact(tx.clone());
    if let Some(source) = evm.ctx.journaled_state.database().deferred.take() {
        return Err(crate::ExecError::Storage { index, source });
    }
    let outcome =
        outcome.map_err(|e| TxFailure::from_evm(e, TxFailure::Storage).into_error(index))?;
    let changes = changes_of(&outcome.state, spec);
    evm.ctx.journaled_state.database().commit(&changes);
    let mut receipt = receipt_of(outcome.result);
    *cumulative += receipt.gas_used;
    receipt.cumulative_gas_used = *cumulative;
    Ok(TxResult { receipt, changes })
}

/// The sequential path's EVM.
type SeqEvm<'a, S> = Eip7610Evm<OverlayDb<'a, S>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{TxOutcome, TxReceipt};

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
            beneficiary_delta: None,
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
