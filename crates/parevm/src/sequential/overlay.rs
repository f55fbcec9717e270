//! The loop's database: the pre-block storage with the changes committed so
//! far on top ([`Overlay`]), as revm reads it ([`OverlayDb`]). Chunks and
//! the block's system calls run on it too.

use alloy_primitives::{Address, B256, U256};
use revm::bytecode::Bytecode;
use revm::primitives::hardfork::SpecId;
use revm::state::AccountInfo;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::{Result, StorageError};
use crate::evm::changes::fee_credit;
use crate::evm::journal::StorageProbe;
use crate::evm::machine::Source;
use crate::evm::task::TxOutput;
use crate::evm::view::{pre_block_account, AccountValue};
use crate::output::{AccountChange, TxResult};
use crate::storage::Storage;
use crate::types::Seen;

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
    pub(super) deferred: Option<StorageError>,
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
    pub(super) fn answers(&mut self, seen: &Seen) -> bool {
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
    pub(super) fn keep(
        &mut self,
        mut output: TxOutput,
        index: usize,
        beneficiary: Address,
        spec: SpecId,
        cumulative: &mut u64,
    ) -> Result<TxResult> {
        if let Some(delta) = output.lazy_credit {
            let before = match self.overlay.accounts.get(&beneficiary) {
                Some(value) => value.clone(),
                None => pre_block_account(self.storage, &beneficiary, index)?,
            };
            if let Some(change) = fee_credit(before.as_ref(), delta, spec) {
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

impl<S: Storage> Source for OverlayDb<'_, S> {
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

    fn take_deferred(&mut self) -> Option<StorageError> {
        self.deferred.take()
    }
}
