//! The database a chunk's transactions run on: the chunk's own overlay over
//! the pre-block storage, logging every read that reaches the pre-block
//! storage (the check's input), predicting the accounts that earlier plain
//! transfers sent from or paid, deferring the beneficiary's fee credits,
//! and recording every answer it gives for the hand-over.

use alloy_primitives::{Address, B256, U256};
use revm::bytecode::Bytecode;
use revm::primitives::hardfork::SpecId;
use revm::primitives::KECCAK_EMPTY;
use revm::state::AccountInfo;
use rustc_hash::FxHashMap;

use super::flows::AccountFlows;
use crate::error::StorageError;
use crate::evm::deltas::{SlotVars, TracksSlots};
use crate::evm::journal::LazyBeneficiary;
use crate::evm::journal::StorageProbe;
use crate::evm::machine::{LazySource, Source};
use crate::evm::view::{apply_credit, storage_account, AccountValue};
use crate::sequential::{probe_storage, storage_code, storage_info, Overlay};
use crate::storage::{code_hash_of, Storage};
use crate::types::Seen;

/// A read that reached the pre-block storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BaseRead {
    /// Balance, nonce and code of an account.
    Account(Address),
    /// One storage slot.
    Slot(Address, U256),
    /// Whether the account has pre-block storage (the EIP-7610 probe).
    HasStorage(Address),
    /// Balance, nonce and code of a sender with transfers before the
    /// chunk, served as predicted (`ChunkDb::predictions`) rather than as
    /// the pre-block account.
    Predicted(Address),
}

/// What an executed transaction of a chunk did with the balances it was
/// given, beyond revm's checks before execution (`account_shifts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Quiet {
    /// A successful plain transfer that ran no code (exactly 21,000 gas).
    pub(super) no_code: bool,
    /// It ran no `BALANCE` or `SELFBALANCE` (as seen by the inspector, or
    /// no code ran).
    pub(super) no_balance_read: bool,
}

/// revm's database for the transactions of one chunk.
pub(super) struct ChunkDb<'a, S> {
    pub(super) storage: &'a S,
    pub(super) costs: &'a AccountFlows,
    /// First transaction of the chunk (block index).
    pub(super) first: usize,
    /// Predicted accounts at the start of the chunk (balance, nonce, code
    /// hash) of accounts that plain transfers before it sent from or paid.
    pub(super) predictions: FxHashMap<Address, (U256, u64, B256)>,
    pub(super) spec: SpecId,
    pub(super) beneficiary: Address,
    /// What the chunk's transactions wrote so far.
    pub(super) overlay: Overlay,
    /// Fee credits to the beneficiary since the chunk last wrote it
    /// outright (`None`: none; a zero credit still touches the account).
    pub(super) pending: Option<U256>,
    /// The chunk credited or wrote the beneficiary.
    pub(super) touched_beneficiary: bool,
    /// Pre-block reads, with the chunk-relative transaction that made them.
    pub(super) reads: Vec<(BaseRead, usize)>,
    /// The executing transaction, relative to the chunk's start.
    pub(super) tx: usize,
    /// revm is about to credit the fee.
    pub(super) in_reward: bool,
    /// The beneficiary was loaded by this transaction before the credit.
    pub(super) beneficiary_loaded: bool,
    /// The credit went to a stand-in: it is a delta.
    pub(super) lazy_beneficiary: bool,
    /// A failure the EIP-7610 probe could not return.
    pub(super) deferred: Option<StorageError>,
    /// Slots read from the pre-block storage, as tracked variables (a
    /// tracked chunk after the first; `evm::deltas` module).
    pub(super) deltas: SlotVars,
    /// The answers this database gave that `reads` does not name: those
    /// from the chunk's own overlay, and the beneficiary with its pending
    /// credits. With `reads` (whose answers are the pre-block values, or
    /// the predictions) they are every answer, for the sequential loop to
    /// check executions it may keep after a conflict (`Replay`). Kept
    /// apart so that a chunk of fresh accounts records almost nothing.
    pub(super) seen: Vec<Seen>,
    /// Where each executed transaction's entries end in `seen` and `reads`.
    pub(super) seen_ends: Vec<(usize, usize)>,
    /// Every answer this database gave for a predicted account (one named
    /// in `predictions`), in order: the account, the chunk-relative
    /// transaction, and the balance it was given (`None`: no account). The
    /// check shifts a prediction that was off by a balance only if each of
    /// these was a decision it can redo ([`account_shifts`]).
    pub(super) observed: Vec<(Address, usize, Option<U256>)>,
    /// Per executed transaction: how little it did with balances.
    pub(super) quiet: Vec<Quiet>,
}

impl<'a, S: Storage> ChunkDb<'a, S> {
    /// A database for a chunk of about `txs` transactions.
    pub(super) fn new(
        storage: &'a S,
        costs: &'a AccountFlows,
        first: usize,
        spec: SpecId,
        beneficiary: Address,
        txs: usize,
        track: bool,
    ) -> Self {
        Self {
            storage,
            costs,
            first,
            predictions: FxHashMap::default(),
            spec,
            beneficiary,
            overlay: Overlay::for_txs(txs),
            pending: None,
            touched_beneficiary: false,
            reads: Vec::new(),
            tx: 0,
            in_reward: false,
            beneficiary_loaded: false,
            lazy_beneficiary: false,
            deferred: None,
            deltas: SlotVars::new(track, txs),
            seen: Vec::new(),
            seen_ends: Vec::with_capacity(txs),
            observed: Vec::new(),
            quiet: Vec::with_capacity(txs),
        }
    }

    /// The account as the plain transfers before the chunk left it, if
    /// any sent from or paid `address`: (balance, nonce, code hash), from
    /// its pre-block ones (zero for an account that did not exist).
    pub(super) fn prediction(
        &self,
        address: &Address,
        balance: U256,
        nonce: u64,
        code_hash: B256,
    ) -> Option<(U256, u64, B256)> {
        let flow = self.costs.before(address, self.first)?;
        // Overflow is not what a valid block does: no prediction then,
        // and the check decides on the plain read.
        let nonce = nonce.checked_add(flow.nonce)?;
        let balance = balance.checked_add(flow.credit)?.checked_sub(flow.debit)?;
        Some((balance, nonce, code_hash_of(code_hash)))
    }

    /// Serves `prediction` for `address` instead of the pre-block read
    /// just logged.
    pub(super) fn note_prediction(&mut self, address: Address, prediction: (U256, u64, B256)) {
        self.predictions.insert(address, prediction);
        self.reads.pop();
        self.reads.push((BaseRead::Predicted(address), self.tx));
    }

    /// Whether the chunk predicts `address`, or would on its first read.
    pub(super) fn predictable(&self, address: &Address) -> bool {
        self.predictions.contains_key(address)
            || (!self.costs.0.is_empty() && self.costs.before(address, self.first).is_some())
    }

    /// Notes an answer about `address` if it is a predicted account.
    pub(super) fn observe(&mut self, address: Address, balance: Option<U256>) {
        if !self.predictions.is_empty() && self.predictions.contains_key(&address) {
            self.observed.push((address, self.tx, balance));
        }
    }

    pub(super) fn start(&mut self, tx: usize) {
        self.tx = tx;
        self.deltas.start(tx);
        self.in_reward = false;
        self.beneficiary_loaded = false;
        self.lazy_beneficiary = false;
    }

    /// The beneficiary as this transaction sees it: the chunk's last write
    /// of it or the pre-block account, plus the credits since.
    pub(super) fn beneficiary_value(&mut self) -> Result<Option<AccountInfo>, StorageError> {
        let address = self.beneficiary;
        let base = match self.overlay.accounts.get(&address) {
            Some(value) => value.clone(),
            None => {
                self.reads.push((BaseRead::Account(address), self.tx));
                let stored = storage_account(self.storage, &address).map_err(|e| match e {
                    crate::evm::view::ViewError::Storage(e) => e,
                    other => StorageError::new(other.to_string()),
                })?;
                // A beneficiary that sent transactions before the chunk (a
                // mining pool paying out in its own block) is predicted like
                // any sender; its fee credits before the chunk make the
                // prediction's balance wrong, which the check shifts.
                let (balance, nonce, code_hash) =
                    stored.as_ref().map_or((U256::ZERO, 0, KECCAK_EMPTY), |v| {
                        (v.balance, v.nonce, v.code_hash)
                    });
                match self.prediction(&address, balance, nonce, code_hash) {
                    Some(predicted) => {
                        self.note_prediction(address, predicted);
                        let (balance, nonce, code_hash) = predicted;
                        Some(AccountValue {
                            balance,
                            nonce,
                            code_hash,
                            code: stored.and_then(|v| v.code),
                        })
                    }
                    None => stored,
                }
            }
        };
        let value = match self.pending {
            Some(delta) => apply_credit(base, delta, self.spec),
            None => base,
        };
        self.observe(address, value.as_ref().map(|v| v.balance));
        let info = value.as_ref().map(|v| v.to_info());
        self.seen.push(Seen::account(address, info.as_ref()));
        Ok(info)
    }

    /// Whether this chunk left `read`'s location different from the
    /// pre-block storage, so that a later chunk's pre-block read of it is
    /// stale. Transactions also report accounts they only touched, so an
    /// account (or slot) the chunk holds is compared with the pre-block
    /// value; that costs a storage read, but only for locations two chunks
    /// share. A failing storage read counts as a change.
    pub(super) fn changed(&self, read: &BaseRead) -> bool {
        match read {
            BaseRead::Account(address) => {
                (*address == self.beneficiary && self.touched_beneficiary)
                    || self.account_changed(address)
            }
            BaseRead::Slot(address, slot) => {
                self.overlay.wiped.contains(address)
                    || self
                        .overlay
                        .slots
                        .get(&(*address, *slot))
                        .is_some_and(|value| {
                            !self
                                .storage
                                .storage(address, slot)
                                .is_ok_and(|before| before == *value)
                        })
            }
            BaseRead::HasStorage(address) => {
                self.overlay.wiped.contains(address) || self.account_changed(address)
            }
            // Checked against the value before the chunk instead
            // (`prediction_holds`).
            BaseRead::Predicted(_) => false,
        }
    }

    pub(super) fn account_changed(&self, address: &Address) -> bool {
        let Some(after) = self.overlay.accounts.get(address) else {
            return false;
        };
        // A predicted account's value here may still shift (`account_shifts`,
        // after this check): count it as changed.
        if self.predictions.contains_key(address) {
            return true;
        }
        let before = match self.storage.account(address) {
            Ok(before) => before,
            Err(_) => return true,
        };
        match (before, after) {
            (None, None) => false,
            (Some(before), Some(after)) => {
                before.balance != after.balance
                    || before.nonce != after.nonce
                    || code_hash_of(before.code_hash) != after.code_hash
            }
            _ => true,
        }
    }
}

impl<S: Storage> TracksSlots for ChunkDb<'_, S> {
    fn slot_vars(&mut self) -> &mut SlotVars {
        &mut self.deltas
    }
}

impl<S: Storage> LazyBeneficiary for ChunkDb<'_, S> {
    fn entering_reward(&mut self) {
        self.in_reward = true;
    }
}

impl<S: Storage> StorageProbe for ChunkDb<'_, S> {
    fn has_storage(&mut self, address: Address) -> bool {
        if self.overlay.wiped.contains(&address) {
            self.seen.push(Seen::HasStorage(address, false));
            return false;
        }
        self.reads.push((BaseRead::HasStorage(address), self.tx));
        probe_storage(self.storage, &address, &mut self.deferred)
    }
}

impl<S: Storage> Source for ChunkDb<'_, S> {
    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StorageError> {
        if address == self.beneficiary {
            if self.in_reward && !self.beneficiary_loaded {
                // The fee credit is the beneficiary's only use: credit a
                // zero-balance stand-in and keep what revm adds as a delta.
                self.lazy_beneficiary = true;
                return Ok(Some(AccountInfo::default()));
            }
            self.beneficiary_loaded = true;
            return self.beneficiary_value();
        }
        if let Some(value) = self.overlay.accounts.get(&address) {
            let info = value.as_ref().map(|v| v.to_info());
            let balance = value.as_ref().map(|v| v.balance);
            self.seen.push(Seen::account(address, info.as_ref()));
            self.observe(address, balance);
            return Ok(info);
        }
        // Logged before the storage is asked: a read that fails stays a
        // plain pre-block read.
        self.reads.push((BaseRead::Account(address), self.tx));
        let stored = storage_info(self.storage, &address)?;
        let (balance, nonce, code_hash) = stored
            .as_ref()
            .map_or((U256::ZERO, 0, KECCAK_EMPTY), |info| {
                (info.balance, info.nonce, info.code_hash)
            });
        let Some(predicted) = self.prediction(&address, balance, nonce, code_hash) else {
            return Ok(stored);
        };
        self.note_prediction(address, predicted);
        let (balance, nonce, _) = predicted;
        self.observe(address, Some(balance));
        // The account as the plain transfers before the chunk left it (a
        // new account if they created it).
        let info = stored.unwrap_or_else(|| AccountInfo {
            code_hash: KECCAK_EMPTY,
            ..AccountInfo::default()
        });
        Ok(Some(AccountInfo {
            balance,
            nonce,
            ..info
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StorageError> {
        storage_code(self.storage, &code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, StorageError> {
        if let Some(value) = self.overlay.slot(address, index) {
            self.seen.push(Seen::Slot(address, index, value));
            return Ok(value);
        }
        self.reads.push((BaseRead::Slot(address, index), self.tx));
        let value = self.storage.storage(&address, &index)?;
        self.deltas.register(address, index, value);
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, StorageError> {
        self.storage.block_hash(number)
    }

    fn take_deferred(&mut self) -> Option<StorageError> {
        self.deferred.take()
    }
}

impl<S: Storage> LazySource for ChunkDb<'_, S> {
    fn credit_was_lazy(&self) -> bool {
        self.lazy_beneficiary
    }
}
