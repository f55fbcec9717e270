//! The versioned view: revm's `Database` over multi-version memory and the
//! pre-block [`Storage`], as seen from one transaction's position.
//!
//! A read of location `L` by transaction `i` returns the newest write to `L`
//! by a transaction below `i`, or the pre-block value when there is none.
//! Two refinements:
//! - **Lazy balance credits.** Beneficiary fees are stored as
//!   [`EvmValue::FeeCredit`] entries that commute with each other. A full
//!   read of such an account sums the deltas down to the newest absolute
//!   value. Only transactions that really read the beneficiary pay for this.
//! - **Storage wipes.** A slot read also looks at the newest
//!   [`Location::StorageWipe`] of the account; a wipe newer than the newest
//!   slot write means the slot reads zero.
//!
//! Every read is recorded by value; validation repeats the resolution and
//! compares. Reading an ESTIMATE fails the read with [`ViewError::Blocked`],
//! which aborts the EVM run; the executor then parks the transaction.

use std::ops::ControlFlow;

use alloy_primitives::{Address, B256, U256};
use revm::bytecode::Bytecode;
use revm::database_interface::{DBErrorMarker, Database};
use revm::primitives::hardfork::SpecId;
use revm::primitives::KECCAK_EMPTY;
use revm::state::AccountInfo;

use crate::error::{ExecError, StorageError};
use crate::evm::journal::LazyBeneficiary;
use crate::evm::journal::StorageProbe;
use crate::output::AccountState;
use crate::stm::mv_memory::{Entry, MvMemory};
use crate::storage::{code_hash_of, Storage};
use crate::types::Seen;
use crate::types::{Incarnation, Location, TxIdx};

/// Account data as stored in mv-memory. Equality ignores the code bytes
/// (the hash identifies them).
#[derive(Clone, Debug)]
pub(crate) struct AccountValue {
    pub(crate) balance: U256,
    pub(crate) nonce: u64,
    pub(crate) code_hash: B256,
    pub(crate) code: Option<Bytecode>,
}

impl PartialEq for AccountValue {
    fn eq(&self, other: &Self) -> bool {
        self.balance == other.balance
            && self.nonce == other.nonce
            && self.code_hash == other.code_hash
    }
}

impl AccountValue {
    pub(crate) fn empty() -> Self {
        Self {
            balance: U256::ZERO,
            nonce: 0,
            code_hash: KECCAK_EMPTY,
            code: None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.balance.is_zero() && self.nonce == 0 && self.code_hash == KECCAK_EMPTY
    }

    pub(crate) fn to_info(&self) -> AccountInfo {
        AccountInfo {
            balance: self.balance,
            nonce: self.nonce,
            code_hash: self.code_hash,
            code: match &self.code {
                Some(code) => Some(code.clone()),
                None if self.code_hash == KECCAK_EMPTY => Some(Bytecode::default()),
                None => None,
            },
            ..Default::default()
        }
    }

    pub(crate) fn from_state(state: &AccountState, previous_code: Option<&Bytecode>) -> Self {
        Self {
            balance: state.balance,
            nonce: state.nonce,
            code_hash: state.code_hash,
            code: state.code.clone().or_else(|| previous_code.cloned()),
        }
    }
}

/// A value in the EVM's multi-version memory.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum EvmValue {
    /// The whole account (`None`: does not exist).
    Account(Option<AccountValue>),
    /// "Add this much to the balance" (a beneficiary fee), touching the account.
    FeeCredit(U256),
    /// A storage slot.
    Slot(U256),
    /// Storage was cleared by this transaction.
    Wipe,
}

/// The EVM's multi-version memory.
pub(crate) type EvmMemory = MvMemory<Location, EvmValue>;

/// Why a read through the view failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ViewError {
    /// The read met an ESTIMATE of this transaction: wait for it.
    #[error("blocked on transaction {0}")]
    Blocked(TxIdx),
    /// The pre-block storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// mv-memory held a value of the wrong kind for its location.
    #[error("invariant violated: {0}")]
    Invariant(String),
}

impl DBErrorMarker for ViewError {}

/// Where a read's value came from, for validation. A read that came from
/// one version is still valid if the newest write below the reader is still
/// that version (same writer, same incarnation); one from storage if there
/// is still no write. Only reads that summed balance deltas are re-resolved
/// and compared by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// No lower transaction wrote the location: pre-block storage.
    Storage,
    /// The newest lower write, by (writer, incarnation).
    Version(TxIdx, Incarnation),
    /// Summed from balance deltas: validate by value.
    Resolved,
}

fn origin_of(latest: Option<(TxIdx, &Entry<EvmValue>)>) -> Option<Origin> {
    match latest {
        None => Some(Origin::Storage),
        Some((writer, Entry::Data(incarnation, _))) => Some(Origin::Version(writer, *incarnation)),
        Some((_, Entry::Estimate)) => None,
    }
}

/// True when the newest write to `key` below `tx` is still the one `origin` names.
fn same_origin(mv: &EvmMemory, key: &Location, tx: TxIdx, origin: Origin) -> bool {
    mv.walk_below(key, tx, |writer, entry| {
        ControlFlow::Break(origin_of(Some((writer, entry))))
    })
    .unwrap_or(Some(Origin::Storage))
        == Some(origin)
}

/// Applies a (summed) balance credit that also touches the account, with
/// the EIP-161 rule: after Spurious Dragon a touched empty account is deleted.
pub(crate) fn apply_credit(
    base: Option<AccountValue>,
    delta: U256,
    spec: SpecId,
) -> Option<AccountValue> {
    let mut account = base.unwrap_or_else(AccountValue::empty);
    account.balance = account.balance.saturating_add(delta);
    if spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) && account.is_empty() {
        None
    } else {
        Some(account)
    }
}

pub(crate) fn storage_account<S: Storage>(
    storage: &S,
    address: &Address,
) -> Result<Option<AccountValue>, ViewError> {
    let Some(basic) = storage.account(address)? else {
        return Ok(None);
    };
    let code_hash = code_hash_of(basic.code_hash);
    let code = if code_hash == KECCAK_EMPTY {
        None
    } else {
        Some(storage.code_by_hash(&basic.code_hash)?)
    };
    Ok(Some(AccountValue {
        balance: basic.balance,
        nonce: basic.nonce,
        code_hash,
        code,
    }))
}

/// The account at `address` as transaction `tx` sees it, and where it came from.
pub(crate) fn resolve_account<S: Storage>(
    mv: &EvmMemory,
    storage: &S,
    address: Address,
    tx: TxIdx,
    spec: SpecId,
) -> Result<(Option<AccountValue>, Origin), ViewError> {
    let mut delta = U256::ZERO;
    let mut has_delta = false;
    let base = mv.walk_below(
        &Location::Account(address),
        tx,
        |writer, entry| match entry {
            Entry::Estimate => ControlFlow::Break(Err(ViewError::Blocked(writer))),
            Entry::Data(incarnation, EvmValue::Account(value)) => {
                ControlFlow::Break(Ok((value.clone(), Origin::Version(writer, *incarnation))))
            }
            Entry::Data(_, EvmValue::FeeCredit(d)) => {
                delta = delta.saturating_add(*d);
                has_delta = true;
                ControlFlow::Continue(())
            }
            Entry::Data(_, other) => ControlFlow::Break(Err(ViewError::Invariant(format!(
                "account location of {address} holds {other:?}"
            )))),
        },
    );
    let (base, origin) = match base {
        Some(result) => result?,
        None => (storage_account(storage, &address)?, Origin::Storage),
    };
    Ok(if has_delta {
        (apply_credit(base, delta, spec), Origin::Resolved)
    } else {
        (base, origin)
    })
}

/// The newest storage wipe of `address` below `tx` (its writer), and where
/// that answer came from.
fn resolve_wipe(
    mv: &EvmMemory,
    address: Address,
    tx: TxIdx,
) -> Result<(Option<TxIdx>, Origin), ViewError> {
    match mv.latest_below(&Location::StorageWipe(address), tx) {
        Some((writer, Entry::Estimate)) => Err(ViewError::Blocked(writer)),
        Some((writer, Entry::Data(incarnation, _))) => {
            Ok((Some(writer), Origin::Version(writer, incarnation)))
        }
        None => Ok((None, Origin::Storage)),
    }
}

/// The storage slot as transaction `tx` sees it, given the newest wipe of
/// the account below `tx` (`wipe`, resolved and recorded once per account
/// by the caller).
pub(crate) fn resolve_slot<S: Storage>(
    mv: &EvmMemory,
    storage: &S,
    address: Address,
    slot: U256,
    tx: TxIdx,
    wipe: Option<TxIdx>,
) -> Result<(U256, Origin), ViewError> {
    Ok(
        match mv.latest_below(&Location::Storage(address, slot), tx) {
            Some((writer, Entry::Estimate)) => return Err(ViewError::Blocked(writer)),
            // A transaction that wipes and then writes a slot: the write wins.
            Some((writer, Entry::Data(incarnation, EvmValue::Slot(value)))) => {
                let origin = Origin::Version(writer, incarnation);
                if wipe.is_none_or(|w| writer >= w) {
                    (value, origin)
                } else {
                    (U256::ZERO, origin)
                }
            }
            Some((_, Entry::Data(_, other))) => {
                return Err(ViewError::Invariant(format!(
                    "storage location of {address} holds {other:?}"
                )))
            }
            None if wipe.is_some() => (U256::ZERO, Origin::Storage),
            None => (storage.storage(&address, &slot)?, Origin::Storage),
        },
    )
}

/// What one incarnation read.
#[derive(Debug, Default)]
pub(crate) struct ReadSet {
    /// Accounts read: value (to skip writing unchanged accounts) and origin.
    /// A short vector: transactions read few accounts.
    pub(crate) accounts: Vec<(Address, Option<AccountValue>, Origin)>,
    /// Slots read, with the value returned and the origin of the slot's
    /// own value.
    pub(crate) slots: Vec<(Address, U256, U256, Origin)>,
    /// Storage wipes looked up, once per account (by slot reads and by the
    /// EIP-7610 probe), with their origin: a slot's value depends on both.
    pub(crate) wipes: Vec<(Address, Origin)>,
    /// Answers of the EIP-7610 probe (rare: creations only).
    pub(crate) probes: Vec<(Address, bool)>,
}

impl ReadSet {
    /// The value this incarnation read for `address`, if it read it.
    pub(crate) fn account(&self, address: &Address) -> Option<&Option<AccountValue>> {
        self.accounts
            .iter()
            .find(|(a, _, _)| a == address)
            .map(|(_, v, _)| v)
    }

    /// Every answer the view gave this incarnation, by value (for the
    /// sequential loop to check an execution it may keep after a give-up).
    pub(crate) fn seen(&self) -> impl Iterator<Item = Seen> + '_ {
        let accounts = self.accounts.iter().map(|(address, value, _)| {
            Seen::Account(
                *address,
                value.as_ref().map(|v| (v.balance, v.nonce, v.code_hash)),
            )
        });
        let slots = self
            .slots
            .iter()
            .map(|(address, slot, value, _)| Seen::Slot(*address, *slot, *value));
        let probes = self
            .probes
            .iter()
            .map(|(address, has)| Seen::HasStorage(*address, *has));
        accounts.chain(slots).chain(probes)
    }

    /// True when every read would still return what it returned for `tx`.
    pub(crate) fn still_valid<S: Storage>(
        &self,
        mv: &EvmMemory,
        storage: &S,
        tx: TxIdx,
        spec: SpecId,
    ) -> bool {
        self.accounts.iter().all(|(address, seen, origin)| match origin {
            Origin::Resolved => {
                matches!(resolve_account(mv, storage, *address, tx, spec), Ok((now, _)) if now == *seen)
            }
            _ => same_origin(mv, &Location::Account(*address), tx, *origin),
        }) && self.slots.iter().all(|(address, slot, _, origin)| {
            same_origin(mv, &Location::Storage(*address, *slot), tx, *origin)
        }) && self
            .wipes
            .iter()
            .all(|(address, origin)| same_origin(mv, &Location::StorageWipe(*address), tx, *origin))
    }
}

/// revm's database for one incarnation of one transaction.
pub(crate) struct VersionedView<'a, S> {
    pub(crate) mv: &'a EvmMemory,
    pub(crate) storage: &'a S,
    pub(crate) spec: SpecId,
    pub(crate) beneficiary: Address,
    pub(crate) tx: TxIdx,
    pub(crate) reads: ReadSet,
    /// Set by the handler just before the fee is credited to the beneficiary.
    pub(crate) in_reward: bool,
    /// True when the beneficiary was first loaded for the fee credit: its
    /// balance was *not* read, and the credit becomes a delta.
    pub(crate) lazy_beneficiary: bool,
    /// A failure met by the EIP-7610 probe, which cannot return it: the
    /// incarnation ends with it instead of its EVM result.
    pub(crate) deferred: Option<ViewError>,
}

impl<'a, S: Storage> VersionedView<'a, S> {
    pub(crate) fn new(
        mv: &'a EvmMemory,
        storage: &'a S,
        spec: SpecId,
        beneficiary: Address,
    ) -> Self {
        Self {
            mv,
            storage,
            spec,
            beneficiary,
            tx: 0,
            reads: ReadSet::default(),
            in_reward: false,
            lazy_beneficiary: false,
            deferred: None,
        }
    }

    /// The newest wipe of `address`'s storage below this transaction,
    /// looked up and recorded once per incarnation and account.
    fn wipe_of(&mut self, address: Address) -> Result<Option<TxIdx>, ViewError> {
        if let Some((_, origin)) = self.reads.wipes.iter().find(|(a, _)| *a == address) {
            return Ok(match origin {
                Origin::Version(writer, _) => Some(*writer),
                Origin::Storage | Origin::Resolved => None,
            });
        }
        let (wipe, origin) = resolve_wipe(self.mv, address, self.tx)?;
        self.reads.wipes.push((address, origin));
        Ok(wipe)
    }

    /// Points the view at a new incarnation of `tx`.
    pub(crate) fn reset(&mut self, tx: TxIdx) {
        self.tx = tx;
        self.reads = ReadSet::default();
        self.in_reward = false;
        self.lazy_beneficiary = false;
        self.deferred = None;
    }
}

impl<S: Storage> LazyBeneficiary for VersionedView<'_, S> {
    fn entering_reward(&mut self) {
        self.in_reward = true;
    }
}

impl<S: Storage> StorageProbe for VersionedView<'_, S> {
    fn has_storage(&mut self, address: Address) -> bool {
        // A wipe below this transaction cleared the pre-block storage (see
        // `OverlayDb`'s probe for why later writes do not matter). The wipe
        // lookup is a read like any other and is validated.
        match self.wipe_of(address) {
            Ok(Some(_)) => {
                self.reads.probes.push((address, false));
                return false;
            }
            Ok(None) => {}
            Err(blocked) => {
                self.deferred.get_or_insert(blocked);
                return true;
            }
        }
        match self.storage.has_storage(&address) {
            Ok(has) => {
                self.reads.probes.push((address, has));
                has
            }
            Err(e) => {
                self.deferred.get_or_insert(ViewError::Storage(e));
                true
            }
        }
    }
}

impl<S: Storage> Database for VersionedView<'_, S> {
    type Error = ViewError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        if self.in_reward && address == self.beneficiary && self.reads.account(&address).is_none() {
            // The fee credit is the only use of the beneficiary in this
            // transaction: hand revm a zero balance and turn what it adds
            // into a commutative lazy fee credit (see `evm::task`).
            self.lazy_beneficiary = true;
            return Ok(Some(AccountInfo::default()));
        }
        if let Some(seen) = self.reads.account(&address) {
            return Ok(seen.as_ref().map(AccountValue::to_info));
        }
        let (value, origin) = resolve_account(self.mv, self.storage, address, self.tx, self.spec)?;
        let info = value.as_ref().map(AccountValue::to_info);
        self.reads.accounts.push((address, value, origin));
        Ok(info)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        // Accounts carry their code, so revm only lands here for code it did
        // not get from `basic`: the pre-block storage has it.
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        Ok(self.storage.code_by_hash(&code_hash)?)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, Self::Error> {
        let wipe = self.wipe_of(address)?;
        let (value, origin) = resolve_slot(self.mv, self.storage, address, index, self.tx, wipe)?;
        self.reads.slots.push((address, index, value, origin));
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        Ok(self.storage.block_hash(number)?)
    }
}

/// `address` in the pre-block storage, with its code, as the commit of
/// transaction `index` needs it (for a lazy fee credit).
pub(crate) fn pre_block_account<S: Storage>(
    storage: &S,
    address: &alloy_primitives::Address,
    index: TxIdx,
) -> Result<Option<AccountValue>, ExecError> {
    storage_account(storage, address).map_err(|e| match e {
        ViewError::Storage(source) => ExecError::Storage { index, source },
        other => ExecError::Internal(other.to_string()),
    })
}
