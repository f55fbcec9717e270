//! Optimistic chunks: the cheap parallel path for blocks whose transactions
//! do not touch each other's state.
//!
//! The block is cut into one contiguous chunk per thread. Every chunk runs
//! like the sequential loop, on its own overlay over the *pre-block*
//! storage, as if the chunks before it had written nothing; it logs each
//! read that reached the pre-block storage (an account, a slot, a storage
//! probe) with the transaction that made it. Then the guess is checked:
//!
//! ```text
//!  chunk 0          chunk 1              chunk 2
//!  [tx0 .. tx9]     [tx10 .. tx19]       [tx20 .. tx29]
//!  exact: its       exact up to its      exact up to its first read of
//!  base is the      first read of a      something chunks 0 or 1 wrote,
//!  pre-block state  location chunk 0     if chunks 0 and 1 are exact
//!                   wrote
//! ```
//!
//! Why this is exact: a transaction reads, for each location, the newest
//! write below it. In chunk `c`, a read served by the chunk's own overlay
//! is the newest write below it also in the whole block; a read that went
//! to the pre-block storage is right unless an earlier chunk wrote the
//! location. So the transactions of chunk `c` before its first such read
//! computed exactly what the sequential loop computes, provided the
//! earlier chunks are exact in full. The longest prefix of the block that
//! passes is kept; the rest is left to the caller (it runs the
//! sequential loop on top of the prefix).
//!
//! A location written earlier in the same chunk is never logged: the read
//! that loaded it from the pre-block storage the first time, by the first
//! transaction of the chunk to touch it, is the one that decides.
//!
//! "Changed" means the chunk's final value differs from the pre-block one:
//! revm reports every account a transaction touched (a token contract
//! called by every transaction), and counting those would make every chunk
//! conflict. Only locations two chunks share pay for that comparison.
//!
//! Chunks start with about equal gas limits, one per thread. Gas limits
//! misjudge work, so a thread that runs out takes the back half of the
//! chunk with the most unclaimed transactions (each chunk hands out its
//! transactions one at a time under a small lock); the stolen half is one
//! more chunk, checked like the others.
//!
//! Compared with Block-STM there is no multi-version memory, no scheduler
//! and no validation per transaction: a transaction costs what it costs in
//! the sequential loop plus a vector push per pre-block read and per
//! answer from its own overlay, and the check is one hash lookup per logged read and
//! earlier chunk. The price: after the first conflict the block is
//! finished by the sequential loop, on one thread. The loop keeps each
//! execution whose recorded answers (every answer this chunk's database
//! gave, `Seen`) it would give too, so a conflict costs the transactions
//! it reaches rather than the rest of the block, but the loop checks the
//! rest one transaction at a time. `auto` mode uses chunks on blocks
//! predicted free of dependencies, or serial only through deposits or
//! shared contract entries (tracked deltas).
//!
//! Each chunk also merges its own transactions' changes into one sorted
//! diff when it ends, on its own thread: the block's state diff is then a
//! join of the chunk diffs in order (`output::join_ranges`), rather than a
//! merge of every transaction's changes after the parallel phase, and the
//! join runs next to the commit, which it does not depend on. The
//! beneficiary is left out of the chunk diffs; its credits are known only
//! once the block is committed (`output::complete_after_chunks`).
//!
//! A sender with transactions before the chunk (an exchange paying out
//! across the whole block) would make every chunk after the first fail on
//! its nonce, and a recipient paid before the chunk (an exchange's deposit
//! address) on its balance. So when a chunk reads such an account from the
//! pre-block storage and all the earlier transactions that sent from it or
//! paid it are plain transfers, the chunk reads a *prediction* instead: the
//! pre-block account (or a new one) with the nonce advanced by the
//! transfers it sent, and the balance raised by the values it received and
//! lowered by the values it sent plus 21,000 gas each at their effective
//! price (`AccountFlows`). The read is
//! logged as predicted, and the check compares the prediction with the
//! account's real value before the chunk (the last earlier chunk that holds
//! it, else the pre-block storage): a transaction's execution depends only
//! on the values it read, so a prediction that equals the real value is as
//! good as reading it, and one that does not (a transfer to a contract,
//! whose code costs gas and may move value, or value the account got
//! from a contract) is a conflict like any other.
//!
//! A prediction wrong only by the balance is often still good: the
//! earlier transfers ran code and used more gas than 21,000 (an exchange
//! paying out to a contract), or the account is the beneficiary, whose
//! fee credits the prediction does not count (a mining pool paying out in
//! its own block; the beneficiary is predicted only as a sender or
//! recipient of plain transfers before the chunk). For an account without
//! code whose nonce was right, what the chunk's transactions did with the
//! balance is usually only revm's check that a sender can pay for its
//! transaction, and additions: the check then *shifts* the account's
//! balance in the chunk's outputs by the difference, after redoing each
//! such decision with the real balance (`account_shifts`). Any other use
//! of the balance ends the exact part of the chunk: a `BALANCE` or
//! `SELFBALANCE` (transactions from or to a predictable account run with
//! the inspector, which notes them), a transaction that ran code without
//! the inspector, a delegation, or a possibly empty account.
//!
//! The beneficiary is handled like in Block-STM: a fee credit that is the
//! only use of the beneficiary in a transaction becomes a delta, summed in
//! the chunk and applied when a later transaction of the chunk reads the
//! beneficiary (which also logs a pre-block read of it: any credit in an
//! earlier chunk makes that a conflict).

use alloy_primitives::{Address, B256, U256};
use revm::bytecode::Bytecode;
use revm::context::TxEnv;
use revm::context_interface::result::EVMError;
use revm::context_interface::ContextSetters;
use revm::context_interface::Transaction as _;
use revm::database_interface::Database;
use revm::handler::Handler;
use revm::inspector::InspectorHandler;
use revm::primitives::hardfork::SpecId;
use revm::primitives::KECCAK_EMPTY;
use revm::state::AccountInfo;
use revm::ExecuteEvm;
use rustc_hash::FxHashMap;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::deltas::{DeltaTracker, SlotVars, TracksSlots};
use crate::error::StorageError;
use crate::executor;
use crate::journal::{mainnet_evm_with, StorageProbe};
use crate::output::{PartialState, SortedChanges, StateAccumulator};
use crate::predict;
use crate::sequential::{
    probe_storage, storage_code, storage_info, Overlay, Replay, ReplayRun, Seen,
};
use crate::storage::Storage;
use crate::tx_task::{output_of, LazyBeneficiary, LazyBeneficiaryHandler, TxFailure, TxOutput};
use crate::view::{apply_delta, storage_account, AccountValue};
use crate::BlockInput;

/// A read that reached the pre-block storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BaseRead {
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
struct Quiet {
    /// A successful plain transfer that ran no code (exactly 21,000 gas).
    no_code: bool,
    /// It ran no `BALANCE` or `SELFBALANCE` (as seen by the inspector, or
    /// no code ran).
    no_balance_read: bool,
}

/// What one transaction does to an account it sends from or pays, when it
/// is a plain transfer: the nonce it adds, and what it adds to and takes
/// from the balance if the transfer goes to an account without code (the
/// value; the value plus 21,000 gas at the effective price).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Flow {
    nonce: u64,
    credit: U256,
    debit: U256,
}

/// For accounts that more than one transaction sends from or pays: each
/// such transaction's index and, for a plain transfer, its [`Flow`] on
/// the account (`None`: not a plain transfer, unpredictable).
struct AccountFlows(FxHashMap<Address, Vec<(usize, Option<Flow>)>>);

impl AccountFlows {
    fn new(input: &BlockInput) -> Self {
        // Only plain transfers make a flow: without one, `before` answers
        // `None` for every account, as it does for an account not listed.
        // (A block of calls to one token listed the token with a
        // flow-less entry per transaction, while the threads waited.)
        if !input.txs.iter().any(predict::is_plain_transfer) {
            return Self(FxHashMap::default());
        }
        let mut flows = Self::listed(input);
        // `before` stops at an account's first entry without a flow: what
        // follows it never counts, and an account whose first entry has
        // none is never predicted (nor looked up on every transaction).
        flows.retain(|_, entries| {
            if let Some(stop) = entries.iter().position(|(_, flow)| flow.is_none()) {
                entries.truncate(stop + 1);
            }
            matches!(entries.first(), Some((_, Some(_))))
        });
        Self(flows)
    }

    /// Every transaction of every account that sends or receives more
    /// than once, with its flow if it is a plain transfer.
    fn listed(input: &BlockInput) -> FxHashMap<Address, Vec<(usize, Option<Flow>)>> {
        let basefee = u128::from(input.block.basefee);
        let recipient = |tx: &TxEnv| match tx.kind {
            revm::primitives::TxKind::Call(to) if to != tx.caller => Some(to),
            _ => None,
        };
        // Counted first, so that a block of distinct accounts allocates no
        // list per account.
        let mut counts: FxHashMap<Address, u32> =
            FxHashMap::with_capacity_and_hasher(2 * input.txs.len(), Default::default());
        for tx in &input.txs {
            *counts.entry(tx.caller).or_default() += 1;
            if let Some(to) = recipient(tx) {
                *counts.entry(to).or_default() += 1;
            }
        }
        let repeated = |address: &Address| counts.get(address).is_some_and(|n| *n >= 2);
        let mut flows: FxHashMap<Address, Vec<(usize, Option<Flow>)>> = FxHashMap::default();
        for (index, tx) in input.txs.iter().enumerate() {
            let plain = predict::is_plain_transfer(tx);
            if repeated(&tx.caller) {
                // A transfer to oneself pays only the gas.
                let value = if recipient(tx).is_some() {
                    tx.value
                } else {
                    U256::ZERO
                };
                let debit = U256::from(predict::PLAIN_TRANSFER_GAS)
                    .checked_mul(U256::from(tx.effective_gas_price(basefee)))
                    .and_then(|fee| fee.checked_add(value));
                let flow = debit.filter(|_| plain).map(|debit| Flow {
                    nonce: 1,
                    debit,
                    ..Flow::default()
                });
                flows.entry(tx.caller).or_default().push((index, flow));
            }
            if let Some(to) = recipient(tx).filter(|to| repeated(to)) {
                let flow = plain.then_some(Flow {
                    credit: tx.value,
                    ..Flow::default()
                });
                flows.entry(to).or_default().push((index, flow));
            }
        }
        flows
    }

    /// What the transactions before transaction `start` did to `address`'s
    /// account, summed; `None` if none sent from or paid it, or one that
    /// did is not a plain transfer.
    fn before(&self, address: &Address, start: usize) -> Option<Flow> {
        let mut total = Flow::default();
        let mut any = false;
        for (index, flow) in self.0.get(address)? {
            if *index >= start {
                break;
            }
            let flow = (*flow)?;
            total = Flow {
                nonce: total.nonce.checked_add(flow.nonce)?,
                credit: total.credit.checked_add(flow.credit)?,
                debit: total.debit.checked_add(flow.debit)?,
            };
            any = true;
        }
        any.then_some(total)
    }
}

/// revm's database for the transactions of one chunk.
struct ChunkDb<'a, S> {
    storage: &'a S,
    costs: &'a AccountFlows,
    /// First transaction of the chunk (block index).
    first: usize,
    /// Predicted accounts at the start of the chunk (balance, nonce, code
    /// hash) of accounts that plain transfers before it sent from or paid.
    predictions: FxHashMap<Address, (U256, u64, B256)>,
    spec: SpecId,
    beneficiary: Address,
    /// What the chunk's transactions wrote so far.
    overlay: Overlay,
    /// Fee credits to the beneficiary since the chunk last wrote it
    /// outright (`None`: none; a zero credit still touches the account).
    pending: Option<U256>,
    /// The chunk credited or wrote the beneficiary.
    touched_beneficiary: bool,
    /// Pre-block reads, with the chunk-relative transaction that made them.
    reads: Vec<(BaseRead, usize)>,
    /// The executing transaction, relative to the chunk's start.
    tx: usize,
    /// revm is about to credit the fee.
    in_reward: bool,
    /// The beneficiary was loaded by this transaction before the credit.
    beneficiary_loaded: bool,
    /// The credit went to a stand-in: it is a delta.
    lazy_beneficiary: bool,
    /// A failure the EIP-7610 probe could not return.
    deferred: Option<StorageError>,
    /// Slots read from the pre-block storage, as tracked variables (a
    /// tracked chunk after the first; `deltas` module).
    deltas: SlotVars,
    /// The answers this database gave that `reads` does not name: those
    /// from the chunk's own overlay, and the beneficiary with its pending
    /// credits. With `reads` (whose answers are the pre-block values, or
    /// the predictions) they are every answer, for the sequential loop to
    /// check executions it may keep after a conflict (`Replay`). Kept
    /// apart so that a chunk of fresh accounts records almost nothing.
    seen: Vec<Seen>,
    /// Where each executed transaction's entries end in `seen` and `reads`.
    seen_ends: Vec<(usize, usize)>,
    /// Every answer this database gave for a predicted account (one named
    /// in `predictions`), in order: the account, the chunk-relative
    /// transaction, and the balance it was given (`None`: no account). The
    /// check shifts a prediction that was off by a balance only if each of
    /// these was a decision it can redo ([`account_shifts`]).
    observed: Vec<(Address, usize, Option<U256>)>,
    /// Per executed transaction: how little it did with balances.
    quiet: Vec<Quiet>,
}

impl<'a, S: Storage> ChunkDb<'a, S> {
    /// A database for a chunk of about `txs` transactions.
    fn new(
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
    fn prediction(
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
    fn note_prediction(&mut self, address: Address, prediction: (U256, u64, B256)) {
        self.predictions.insert(address, prediction);
        self.reads.pop();
        self.reads.push((BaseRead::Predicted(address), self.tx));
    }

    /// Whether the chunk predicts `address`, or would on its first read.
    fn predictable(&self, address: &Address) -> bool {
        self.predictions.contains_key(address)
            || (!self.costs.0.is_empty() && self.costs.before(address, self.first).is_some())
    }

    /// Notes an answer about `address` if it is a predicted account.
    fn observe(&mut self, address: Address, balance: Option<U256>) {
        if !self.predictions.is_empty() && self.predictions.contains_key(&address) {
            self.observed.push((address, self.tx, balance));
        }
    }

    fn start(&mut self, tx: usize) {
        self.tx = tx;
        self.deltas.start(tx);
        self.in_reward = false;
        self.beneficiary_loaded = false;
        self.lazy_beneficiary = false;
    }

    /// The beneficiary as this transaction sees it: the chunk's last write
    /// of it or the pre-block account, plus the credits since.
    fn beneficiary_value(&mut self) -> Result<Option<AccountInfo>, StorageError> {
        let address = self.beneficiary;
        let base = match self.overlay.accounts.get(&address) {
            Some(value) => value.clone(),
            None => {
                self.reads.push((BaseRead::Account(address), self.tx));
                let stored = storage_account(self.storage, &address).map_err(|e| match e {
                    crate::view::ViewError::Storage(e) => e,
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
            Some(delta) => apply_delta(base, delta, self.spec),
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
    fn changed(&self, read: &BaseRead) -> bool {
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

    fn account_changed(&self, address: &Address) -> bool {
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

/// A stored code hash, with zero (some storages' "no code") as the empty one.
pub(crate) fn code_hash_of(hash: B256) -> B256 {
    if hash.is_zero() {
        KECCAK_EMPTY
    } else {
        hash
    }
}

/// `address`'s account when chunk `c` started, as (balance, nonce, code
/// hash), `None` if there was none: its value at the end of the last
/// earlier chunk that holds it, else in the pre-block storage. The
/// beneficiary's value also takes the fee credits each earlier chunk
/// made after its last write of it. The earlier chunks must be exact and
/// shifted already (the check goes in block order). `Err`: a storage read
/// failed.
fn account_before<S: Storage>(
    earlier: &[ChunkRun<'_, S>],
    storage: &S,
    address: &Address,
    beneficiary: Address,
    spec: SpecId,
) -> Result<Option<(U256, u64, B256)>, ()> {
    let parts = |value: &AccountValue| (value.balance, value.nonce, code_hash_of(value.code_hash));
    if *address == beneficiary {
        let mut value = storage_account(storage, address).map_err(|_| ())?;
        for run in earlier {
            if let Some(written) = run.db.overlay.accounts.get(address) {
                value.clone_from(written);
            }
            if let Some(delta) = run.db.pending {
                value = apply_delta(value, delta, spec);
            }
        }
        return Ok(value.as_ref().map(parts));
    }
    for run in earlier.iter().rev() {
        if let Some(value) = run.db.overlay.accounts.get(address) {
            return Ok(value.as_ref().map(parts));
        }
    }
    Ok(storage
        .account(address)
        .map_err(|_| ())?
        .map(|before| (before.balance, before.nonce, code_hash_of(before.code_hash))))
}

/// Checks chunk `c`'s predicted accounts against their real values before
/// it (the chunks before `c` are exact and shifted). A prediction that
/// holds costs nothing. One whose nonce, code or existence is wrong is a
/// conflict at the account's first answer. One that is wrong only by its
/// balance (a transfer before the chunk ran code and used more gas, or a
/// mining pool's own fee credits) is *shifted*: the chunk's balances of
/// the account all move by the same amount, which is exact for every
/// transaction of the chunk up to the first answer about it that was
/// not one of these decisions, redone with the real balance:
/// - the account sent a plain transfer that ran no code: revm only checked
///   that the balance covers the transaction's maximum cost, then
///   subtracted it (and refunded, and credited the fee);
/// - it received one: revm only added the value, and removes an empty
///   account afterwards, so the account must be empty under both
///   balances or under neither.
///
/// Returns the first transaction the shifts do not cover (the conflict)
/// and each shifted account with its shift (real minus predicted balance,
/// wrapping).
fn account_shifts<S: Storage>(
    runs: &[ChunkRun<'_, S>],
    c: usize,
    storage: &S,
    input: &BlockInput,
) -> (Option<usize>, Vec<(Address, U256)>) {
    let (Some(earlier), Some(run)) = (runs.get(..c), runs.get(c)) else {
        return (None, Vec::new());
    };
    let db = &run.db;
    if db.predictions.is_empty() {
        return (None, Vec::new());
    }
    let beneficiary = input.block.beneficiary;
    // Per predicted account: `None` when only an exact prediction would
    // do, else (shift up?, magnitude, nonce).
    let mut verdicts: FxHashMap<Address, Option<(bool, U256, u64)>> = FxHashMap::default();
    let mut moves = Vec::new();
    for (&address, &(balance, nonce, code_hash)) in &db.predictions {
        let real = account_before(earlier, storage, &address, beneficiary, input.spec);
        let verdict = match real {
            // The prediction holds.
            Ok(Some(real)) if real == (balance, nonce, code_hash) => continue,
            // Wrong only by the balance, of an account without code (code
            // could move its balance on decisions of its own).
            Ok(Some((real, real_nonce, real_code)))
                if real_nonce == nonce && real_code == code_hash && code_hash == KECCAK_EMPTY =>
            {
                moves.push((address, real.wrapping_sub(balance)));
                Some(if real > balance {
                    (true, real - balance, nonce)
                } else {
                    (false, balance - real, nonce)
                })
            }
            _ => None,
        };
        verdicts.insert(address, verdict);
    }
    let holds = |address: Address, t: usize, seen: Option<U256>| -> bool {
        let Some(Some((up, magnitude, nonce))) = verdicts.get(&address).copied() else {
            return false;
        };
        let (Some(quiet), Some(seen), Some(tx)) =
            (db.quiet.get(t).copied(), seen, input.txs.get(run.start + t))
        else {
            return false;
        };
        // A delegation could give the account code, which could move
        // its balance on a decision of its own.
        if !quiet.no_balance_read || !tx.authorization_list.is_empty() {
            return false;
        }
        let real = if up {
            seen.checked_add(magnitude)
        } else {
            seen.checked_sub(magnitude)
        };
        let Some(real) = real else {
            return false;
        };
        if tx.caller == address {
            // The only decision on it: the balance covers the maximum cost.
            tx.ensure_enough_balance(seen).is_ok() && tx.ensure_enough_balance(real).is_ok()
        } else if nonce > 0 {
            // Never empty, without code: only credited.
            true
        } else {
            // Possibly empty: only a plain transfer to it, whose credit
            // leaves it non-empty under both balances or under neither.
            quiet.no_code
                && tx.kind == revm::primitives::TxKind::Call(address)
                && (!tx.value.is_zero() || (!seen.is_zero() && !real.is_zero()))
        }
    };
    let conflict = db
        .observed
        .iter()
        .find(|&&(address, t, seen)| verdicts.contains_key(&address) && !holds(address, t, seen))
        .map(|&(_, t, _)| t);
    (conflict, moves)
}

/// Moves the shifted accounts' balances (`account_shifts`) in the outputs
/// before `conflict`, in the chunk's diff and in its overlay. Returns how
/// many accounts moved.
fn shift_accounts<S>(
    run: &mut ChunkRun<'_, S>,
    moves: &[(Address, U256)],
    conflict: Option<usize>,
) -> usize {
    if moves.is_empty() {
        return 0;
    }
    let kept = conflict.unwrap_or(run.outputs.len()).min(run.outputs.len());
    for output in run.outputs[..kept].iter_mut().flatten() {
        for &(address, shift) in moves {
            if let Some(info) = output
                .changes
                .get_mut(&address)
                .and_then(|change| change.info.as_mut())
            {
                info.balance = info.balance.wrapping_add(shift);
            }
        }
    }
    for &(address, shift) in moves {
        if let Some(Some(value)) = run.db.overlay.accounts.get_mut(&address) {
            value.balance = value.balance.wrapping_add(shift);
        }
        if let Some(info) = run.diff.as_mut().and_then(|diff| {
            let i = diff.binary_search_by(|(a, _)| a.cmp(&address)).ok()?;
            diff[i].1.info.as_mut()
        }) {
            info.balance = info.balance.wrapping_add(shift);
        }
    }
    moves.len()
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

impl<S: Storage> Database for ChunkDb<'_, S> {
    type Error = StorageError;

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
}

/// A chunk being executed: the range it still owns. Its owner claims one
/// transaction at a time from the front; an idle thread may take the back
/// half (see [`steal`]).
struct Chunk {
    start: usize,
    /// `(next, end)`: the next transaction to claim and the end of the range.
    claim: Mutex<(usize, usize)>,
}

impl Chunk {
    fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            claim: Mutex::new((start, end)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, usize)> {
        self.claim.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next transaction of the range, if any is left.
    fn claim_next(&self) -> Option<usize> {
        let mut claim = self.lock();
        let (next, end) = *claim;
        (next < end).then(|| {
            claim.0 += 1;
            next
        })
    }

    /// Gives up the rest of the range (after a failure).
    fn close(&self) {
        let mut claim = self.lock();
        claim.1 = claim.0;
    }
}

/// Below this many unclaimed transactions a chunk is not split: each chunk
/// costs a check against every chunk before it.
const MIN_STEAL: usize = 8;

/// Takes the back half of the chunk with the most unclaimed transactions,
/// as a new chunk, or `None` when no chunk has enough left.
fn steal(chunks: &Mutex<Vec<Arc<Chunk>>>) -> Option<Arc<Chunk>> {
    let mut chunks = chunks.lock().unwrap_or_else(|p| p.into_inner());
    let mut claim = chunks
        .iter()
        .map(|chunk| chunk.lock())
        .max_by_key(|claim| claim.1.saturating_sub(claim.0))?;
    let left = claim.1.saturating_sub(claim.0);
    if left < MIN_STEAL {
        return None;
    }
    let middle = claim.0 + left / 2;
    let stolen = Arc::new(Chunk::new(middle, claim.1));
    claim.1 = middle;
    drop(claim);
    chunks.push(Arc::clone(&stolen));
    Some(stolen)
}

/// What one chunk produced.
struct ChunkRun<'a, S> {
    /// First transaction of the chunk (block index).
    start: usize,
    /// End of the range the chunk kept (others may have taken the rest).
    end: usize,
    /// One output per executed transaction; a failure ends the chunk.
    outputs: Vec<Result<TxOutput, TxFailure>>,
    /// The chunk's changes merged, without the beneficiary (`None` when a
    /// transaction failed: the block fails there anyway).
    diff: Option<SortedChanges>,
    db: ChunkDb<'a, S>,
}

/// Runs one chunk: claims and executes its transactions in order until its
/// range is exhausted or one fails.
fn run_chunk<'a, S: Storage>(
    storage: &'a S,
    costs: &'a AccountFlows,
    input: &BlockInput,
    chunk: &Chunk,
    track: bool,
) -> ChunkRun<'a, S> {
    // The first chunk reads exact values: nothing to track.
    let track = track && chunk.start > 0;
    let beneficiary = input.block.beneficiary;
    let planned = {
        let (next, end) = *chunk.lock();
        end.saturating_sub(next)
    };
    let db = ChunkDb::new(
        storage,
        costs,
        chunk.start,
        input.spec,
        beneficiary,
        planned,
        track,
    );
    let mut evm = mainnet_evm_with(
        db,
        input.block.clone(),
        input.cfg(),
        DeltaTracker::new(track),
    );
    let mut outputs = Vec::with_capacity(planned);
    while let Some(index) = chunk.claim_next() {
        let Some(tx) = input.txs.get(index) else {
            break;
        };
        evm.ctx
            .journaled_state
            .database()
            .start(index - chunk.start);
        evm.ctx.set_tx(tx.clone());
        // A transaction from or to an account the chunk may predict runs
        // with the inspector, which notes balance reads: a shift of that
        // account's balance is exact only without them (`account_shifts`).
        let watched = {
            let db = evm.ctx.journaled_state.database();
            db.predictable(&tx.caller)
                || matches!(tx.kind, revm::primitives::TxKind::Call(to) if db.predictable(&to))
        };
        let result = if track || watched {
            evm.inspector.start_tx();
            LazyBeneficiaryHandler::new().inspect_run(&mut evm)
        } else {
            LazyBeneficiaryHandler::new().run(&mut evm)
        };
        let mut state = evm.finalize();
        let db = evm.ctx.journaled_state.database();
        let result = match db.deferred.take() {
            Some(error) => Err(EVMError::Database(error)),
            None => result,
        };
        let result = match result {
            Ok(result) => result,
            Err(error) => {
                outputs.push(Err(TxFailure::from_evm(error, TxFailure::Storage)));
                chunk.close();
                break;
            }
        };
        // No code ran (every instruction but STOP costs gas), or the
        // inspector saw no balance read.
        let no_code = predict::is_plain_transfer(tx)
            && result.is_success()
            && result.tx_gas_used() == predict::PLAIN_TRANSFER_GAS;
        db.quiet.push(Quiet {
            no_code,
            no_balance_read: no_code || ((track || watched) && !evm.inspector.balance_read),
        });
        let output = output_of(
            &mut state,
            result,
            db.lazy_beneficiary,
            beneficiary,
            input.spec,
        );
        if let Some(delta) = output.beneficiary_delta {
            db.pending = Some(db.pending.unwrap_or_default().saturating_add(delta));
            db.touched_beneficiary = true;
        }
        if output.beneficiary_written {
            // The transaction read the credits so far; its write holds them.
            db.pending = None;
            db.touched_beneficiary = true;
        }
        db.overlay.commit(&output.changes);
        db.seen_ends.push((db.seen.len(), db.reads.len()));
        outputs.push(Ok(output));
    }
    let db = std::mem::replace(
        evm.ctx.journaled_state.database(),
        ChunkDb::new(
            storage,
            costs,
            chunk.start,
            input.spec,
            beneficiary,
            0,
            false,
        ),
    );
    let mut db = db;
    db.deltas.pin_wiped(&db.overlay.wiped);
    // Merging here, on the chunk's thread, spreads over the threads the
    // merge the block's state diff needs anyway (module docs).
    let diff = outputs.iter().all(Result::is_ok).then(|| {
        let done = outputs.iter().flatten();
        let mut acc = StateAccumulator::with_capacity(done.clone().map(|o| o.changes.len()).sum());
        for output in done {
            acc.merge_tx(&output.changes, |address| *address != beneficiary);
        }
        acc.finish_sorted()
    });
    ChunkRun {
        start: chunk.start,
        end: chunk.lock().1,
        outputs,
        diff,
        db,
    }
}

/// The value of `address`'s `slot` at the end of `runs` (chunks in block
/// order), or `None` if none of them wrote it.
fn value_after<S>(runs: &[ChunkRun<'_, S>], address: Address, slot: U256) -> Option<U256> {
    runs.iter().rev().find_map(|run| {
        let overlay = &run.db.overlay;
        overlay
            .slots
            .get(&(address, slot))
            .copied()
            .or_else(|| overlay.wiped.contains(&address).then_some(U256::ZERO))
    })
}

/// How far each tracked slot of chunk `c` moved (`deltas` module docs):
/// its value before the chunk (the corrected value of the last earlier
/// chunk that holds it) minus the value the chunk read. `shared` lists the
/// chunk's tracked slots that an earlier chunk holds: the others cannot
/// have moved. The earlier chunks must be corrected already (block
/// order); the chunk's own overlay is corrected here, its outputs by
/// [`apply_shifts`].
fn slot_shifts<S>(runs: &mut [ChunkRun<'_, S>], c: usize, shared: &[usize]) -> Vec<(usize, U256)> {
    let mut moved = Vec::new();
    let (earlier, rest) = runs.split_at_mut(c.min(runs.len()));
    let Some(run) = rest.first_mut() else {
        return moved;
    };
    for &i in shared {
        let Some(var) = run.db.deltas.vars().get(i) else {
            continue;
        };
        let (address, slot) = (var.address, var.slot);
        let delta = value_after(earlier, address, slot)
            .map_or(U256::ZERO, |before| before.wrapping_sub(var.base));
        if delta.is_zero() {
            continue;
        }
        moved.push((i, delta));
        if let Some(value) = run.db.overlay.slots.get_mut(&(address, slot)) {
            *value = value.wrapping_add(delta);
        }
    }
    moved
}

/// Applies one chunk's slot shifts, on `parts` threads: the first
/// transaction whose facts break with them is a conflict (returned, or the
/// earlier `conflict`); the slots' writes before it, in the outputs and the
/// chunk's diff, move by their shift.
///
/// # Errors
/// A panic in a part, as a message.
fn apply_shifts<S: Sync>(
    run: &mut ChunkRun<'_, S>,
    moved: &[(usize, U256)],
    conflict: Option<usize>,
    parts: usize,
) -> Result<Option<usize>, String> {
    if moved.is_empty() {
        return Ok(conflict);
    }
    let deltas = &run.db.deltas;
    let vars = deltas.vars();
    let mut shifts = vec![U256::ZERO; vars.len()];
    let mut slots = Vec::with_capacity(moved.len());
    for &(i, delta) in moved {
        if let (Some(shift), Some(var)) = (shifts.get_mut(i), vars.get(i)) {
            *shift = delta;
            slots.push((var.address, var.slot, delta));
        }
    }
    let facts = deltas.facts_len();
    let per_part = facts.div_ceil(parts.max(1)).max(1);
    let broken = executor::fan_out(parts, |part| {
        deltas.first_broken(&shifts, part * per_part..((part + 1) * per_part).min(facts))
    })?;
    let conflict = broken.into_iter().flatten().chain(conflict).min();
    let kept = conflict.unwrap_or(run.outputs.len()).min(run.outputs.len());
    let per_part = kept.div_ceil(parts.max(1)).max(1);
    let pieces: Vec<Mutex<&mut [Result<TxOutput, TxFailure>]>> = run.outputs[..kept]
        .chunks_mut(per_part)
        .map(Mutex::new)
        .collect();
    executor::fan_out(pieces.len(), |part| {
        let mut piece = pieces[part].lock().unwrap_or_else(|p| p.into_inner());
        for output in piece.iter_mut().flatten() {
            for &(address, slot, delta) in &slots {
                if let Some(value) = output
                    .changes
                    .get_mut(&address)
                    .and_then(|change| change.storage.get_mut(&slot))
                {
                    *value = value.wrapping_add(delta);
                }
            }
        }
    })?;
    for (address, slot, delta) in slots {
        if let Some(value) = run.diff.as_mut().and_then(|diff| {
            let i = diff.binary_search_by(|(a, _)| a.cmp(&address)).ok()?;
            diff[i].1.storage.get_mut(&slot)
        }) {
            *value = value.wrapping_add(delta);
        }
    }
    Ok(conflict)
}

/// Below this many logged pre-block reads in all, the chunks are checked
/// on one thread.
const PARALLEL_CHECK_MIN_READS: usize = 4_096;

/// Chunk boundaries: `parts` contiguous ranges of about equal gas limit,
/// except that with `track` the first one gets [`FIRST_TRACKED_WEIGHT`]
/// halves of a share where the others get two.
///
/// Why: the first chunk never tracks deltas (it reads exact values), and a
/// tracked chunk runs every instruction through the inspector. On 8,000
/// ERC-20 transfers to one holder the first chunk ran 5.7-5.8 µs per
/// transaction and the tracked one 7.7-9.4 µs (the sequential loop
/// 5.1 µs). Stealing evens out the finishing times either way, but every
/// transaction the first chunk runs is one that is not tracked: a larger
/// first chunk shrinks the block's total work (by 2-3% there, within the
/// machine's noise).
fn boundaries(txs: &[TxEnv], parts: usize, track: bool) -> Vec<usize> {
    let total: u128 = txs.iter().map(|tx| u128::from(tx.gas_limit.max(1))).sum();
    let first = if track { FIRST_TRACKED_WEIGHT } else { 2 };
    // Weights in halves of an equal share: the first part `first`, the
    // others 2 each.
    let weights = first + 2 * (parts as u128 - 1);
    let mut bounds = vec![0];
    let mut sum = 0u128;
    for (i, tx) in txs.iter().enumerate() {
        sum += u128::from(tx.gas_limit.max(1));
        // Parts wholly before the next boundary, by weight.
        let before = first + 2 * (bounds.len() as u128 - 1);
        if bounds.len() < parts && sum * weights >= total * before && i + 1 < txs.len() {
            bounds.push(i + 1);
        }
    }
    bounds.push(txs.len());
    bounds.dedup();
    bounds
}

/// The first chunk's weight when the others track deltas, in halves of an
/// equal share (2 = equal): 3 gives it 60% of the gas on two threads and
/// 2.3% on 64.
const FIRST_TRACKED_WEIGHT: u128 = 3;

/// The outcome of the chunked run: the outputs of the longest exact prefix
/// of the block (a failure, if any, is the last one).
pub(crate) struct ChunkedPrefix {
    pub(crate) outputs: Vec<Result<TxOutput, TxFailure>>,
    /// The merged changes of the chunks wholly inside the prefix.
    pub(crate) state: PartialState,
    /// Executions thrown away: the transactions after the prefix that
    /// the chunks had run.
    pub(crate) discarded: usize,
    /// Tracked slots that chunks in the prefix read stale and corrected.
    pub(crate) corrected: usize,
    /// Predicted balances that chunks in the prefix shifted
    /// ([`account_shifts`]).
    pub(crate) shifted: usize,
    /// The chunks' executions of the transactions after the prefix, with
    /// the answers each was given, for the sequential loop to keep where
    /// they still hold.
    pub(crate) replay: Replay,
}

/// Runs the block as optimistic chunks on `threads` threads and returns the
/// outputs of the longest prefix that the check proves exact (module docs).
///
/// Each thread starts with one chunk of about equal gas limit; a thread
/// that finishes early splits the chunk with the most work left and runs
/// its back half, so that gas limits that misjudge the work do not leave a
/// thread idle.
///
/// With `predict_accounts` false no account is predicted: the caller
/// knows that none sends or receives twice (`predict::independence`).
///
/// # Errors
/// A panic in a chunk or in the check (a bug), or chunks that do not cover
/// the block, as a message.
pub(crate) fn run<S: Storage + Sync>(
    storage: &S,
    input: &BlockInput,
    threads: usize,
    track: bool,
    predict_accounts: bool,
) -> Result<ChunkedPrefix, String> {
    let bounds = boundaries(&input.txs, threads.max(1), track);
    let chunks: Mutex<Vec<Arc<Chunk>>> = Mutex::new(
        bounds
            .windows(2)
            .map(|w| Arc::new(Chunk::new(w[0], w[1])))
            .collect(),
    );
    let initial: Vec<Arc<Chunk>> = chunks.lock().map_err(|e| e.to_string())?.clone();
    // The account flows are built on the calling thread while the other
    // threads wake up (tens of microseconds, as long as building them takes
    // on a block of a few hundred transactions); the first chunk does not
    // need them (nothing comes before it), the others wait for them.
    // Without an account that sends or receives twice there is nothing to
    // predict (the caller knows from its own pass over the block). A panic
    // while building them leaves the flows empty, so that no thread waits
    // for ever, and fails the block below.
    let costs: OnceLock<AccountFlows> = OnceLock::new();
    let flows_failed = AtomicBool::new(false);
    let build_flows = || {
        let built = if predict_accounts {
            catch_unwind(AssertUnwindSafe(|| AccountFlows::new(input)))
        } else {
            Ok(AccountFlows(FxHashMap::default()))
        };
        costs.get_or_init(|| {
            built.unwrap_or_else(|_| {
                flows_failed.store(true, Ordering::Relaxed);
                AccountFlows(FxHashMap::default())
            })
        });
    };
    let per_thread = executor::fan_out(initial.len(), |part| {
        if part == 0 {
            build_flows();
        }
        let costs = costs.wait();
        let mut runs = vec![run_chunk(storage, costs, input, &initial[part], track)];
        while let Some(chunk) = steal(&chunks) {
            runs.push(run_chunk(storage, costs, input, &chunk, track));
        }
        runs
    })?;
    if flows_failed.load(Ordering::Relaxed) {
        return Err("building the account flows panicked".into());
    }
    let mut runs: Vec<ChunkRun<'_, S>> = per_thread.into_iter().flatten().collect();
    runs.sort_by_key(|run| run.start);
    // The first conflicting read of each chunk against the chunks before it,
    // checked on all threads at once (chunks dealt out round-robin).
    // A small block's check takes a few microseconds, less than waking a
    // thread for it.
    let logged: usize = runs.iter().map(|run| run.db.reads.len()).sum();
    let parts = if logged < PARALLEL_CHECK_MIN_READS {
        1
    } else {
        threads.clamp(1, runs.len().max(1))
    };
    let checked = executor::fan_out(parts, |part| {
        (part..runs.len())
            .step_by(parts)
            .map(|c| {
                let conflict = runs[c]
                    .db
                    .reads
                    .iter()
                    .find(|(read, _)| match read {
                        // Resolved below, in block order.
                        // (Tracked slots only: a read that failed before
                        // it became a variable is checked as usual.)
                        BaseRead::Slot(address, slot)
                            if runs[c].db.deltas.tracks(*address, *slot) =>
                        {
                            false
                        }
                        // Resolved below, in block order (`account_shifts`).
                        BaseRead::Predicted(_) => false,
                        _ => runs[..c].iter().any(|earlier| earlier.db.changed(read)),
                    })
                    .map(|(_, tx)| *tx);
                // Tracked slots an earlier chunk holds: only those can
                // have moved.
                let earlier = &runs[..c];
                let shared: Vec<usize> = runs[c]
                    .db
                    .deltas
                    .vars()
                    .iter()
                    .enumerate()
                    .filter(|(_, var)| {
                        earlier.iter().any(|e| {
                            e.db.overlay.wiped.contains(&var.address)
                                || e.db.overlay.slots.contains_key(&(var.address, var.slot))
                        })
                    })
                    .map(|(i, _)| i)
                    .collect();
                (c, conflict, shared)
            })
            .collect::<Vec<_>>()
    })?;
    let mut conflicts = vec![None; runs.len()];
    let mut shared = vec![Vec::new(); runs.len()];
    for (c, conflict, vars) in checked.into_iter().flatten() {
        conflicts[c] = conflict;
        shared[c] = vars;
    }
    // Tracked slots that moved, chunk by chunk in block order (a chunk's
    // corrected values are the next one's inputs), up to the first chunk
    // that is not exact: the chunks after it are discarded anyway.
    let mut shifts = vec![Vec::new(); runs.len()];
    let mut shifted_accounts = vec![0; runs.len()];
    for c in 0..runs.len() {
        let (account_conflict, account_moves) = account_shifts(&runs, c, storage, input);
        let moved = slot_shifts(&mut runs, c, shared.get(c).map_or(&[][..], Vec::as_slice));
        let Some(run) = runs.get_mut(c) else { break };
        let conflict = conflicts[c].into_iter().chain(account_conflict).min();
        conflicts[c] = apply_shifts(run, &moved, conflict, parts)?;
        shifted_accounts[c] = shift_accounts(run, &account_moves, conflicts[c]);
        let exact = conflicts[c].unwrap_or(run.outputs.len());
        shifts[c] = moved;
        if exact != run.end - run.start || matches!(run.outputs.last(), Some(Err(_))) {
            break;
        }
    }
    let executed: usize = runs.iter().map(|run| run.outputs.len()).sum();
    let mut outputs = Vec::with_capacity(input.txs.len());
    let mut covered = 0;
    let mut state = PartialState {
        covers: 0,
        diffs: Vec::with_capacity(runs.len()),
    };
    let mut corrected = 0;
    let mut shifted = 0;
    let mut replay = Replay::default();
    let mut ended = false;
    for (((run, conflict), moved), accounts) in runs
        .into_iter()
        .zip(conflicts)
        .zip(&shifts)
        .zip(shifted_accounts)
    {
        if ended {
            // After the prefix: every execution is offered to the loop.
            // (A chunk that failed gave up the rest of its range: the runs
            // need not be contiguous here.)
            replay.push(replay_run(run, 0, input.block.beneficiary));
            continue;
        }
        if run.start != covered {
            return Err(format!(
                "chunk starting at {} follows transactions up to {covered}",
                run.start
            ));
        }
        let exact = conflict.unwrap_or(run.outputs.len()).min(run.outputs.len());
        let vars = run.db.deltas.vars();
        corrected += moved
            .iter()
            .filter(|(i, _)| vars.get(*i).is_some_and(|var| var.first_tx < exact))
            .count();
        shifted += accounts;
        let complete = exact == run.end - run.start;
        let failed = matches!(run.outputs.get(..exact).and_then(<[_]>::last), Some(Err(_)));
        if !complete || failed {
            let mut run = run;
            let tail = run.outputs.split_off(exact);
            outputs.append(&mut run.outputs);
            if failed {
                // The block fails there: nothing after it matters.
                covered = input.txs.len();
                break;
            }
            run.outputs = tail;
            replay.push(replay_run(run, exact, input.block.beneficiary));
            covered = input.txs.len();
            ended = true;
            continue;
        }
        outputs.extend(run.outputs);
        if matches!(outputs.last(), Some(Err(_))) {
            covered = input.txs.len();
            break;
        }
        if let (Some(diff), true) = (run.diff, state.covers == run.start) {
            state.diffs.push(diff);
            state.covers = run.end;
        }
        covered = run.end;
    }
    if covered != input.txs.len() {
        return Err(format!(
            "chunks cover {covered} of {} transactions",
            input.txs.len()
        ));
    }
    Ok(ChunkedPrefix {
        discarded: executed - outputs.len(),
        outputs,
        state,
        corrected,
        shifted,
        replay,
    })
}

/// The executions of `run` from its `skip`th transaction on (its outputs
/// already start there), with every answer each was given, for the
/// sequential loop: its logged pre-block reads (the pre-block value, or
/// the prediction) followed by its other answers. A failed execution is
/// not offered.
fn replay_run<S>(run: ChunkRun<'_, S>, skip: usize, beneficiary: Address) -> ReplayRun {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(gas_limit: u64) -> TxEnv {
        TxEnv {
            gas_limit,
            ..Default::default()
        }
    }

    #[test]
    fn stealing_takes_the_back_half_of_the_largest_remainder() {
        let chunks = Mutex::new(vec![
            Arc::new(Chunk::new(0, 50)),
            Arc::new(Chunk::new(50, 100)),
        ]);
        let first = Arc::clone(&chunks.lock().expect("registry")[0]);
        let second = Arc::clone(&chunks.lock().expect("registry")[1]);
        // The first chunk has claimed 40 transactions, the second 10.
        for _ in 0..40 {
            first.claim_next();
        }
        for _ in 0..10 {
            second.claim_next();
        }
        let stolen = steal(&chunks).expect("40 left in the second chunk");
        assert_eq!((stolen.start, *stolen.lock()), (80, (80, 100)));
        assert_eq!(*second.lock(), (60, 80));
        // Now: 10 left in the first, 20 in the second, 20 in the stolen one.
        let again = steal(&chunks).expect("20 left");
        assert_eq!(*again.lock(), (again.start, again.start + 10));
        // A closed chunk has nothing to give; remainders under the minimum
        // stay with their owner.
        first.close();
        assert_eq!(first.claim_next(), None);
        for chunk in chunks.lock().expect("registry").iter() {
            loop {
                let (next, end) = *chunk.lock();
                if end - next < MIN_STEAL {
                    break;
                }
                chunk.claim_next();
            }
        }
        assert!(steal(&chunks).is_none());
        assert_eq!(chunks.lock().expect("registry").len(), 4);
    }

    /// `auto` skips building the account flows when the independence
    /// pass saw no account repeat after a plain transfer: then the flows
    /// predict nothing. Checked on the workloads, with the pass split in
    /// one, two and five parts.
    #[test]
    fn no_repeated_account_means_no_account_flows() {
        use crate::workload::{Preset, Size, WorkloadKind, WorkloadSpec};
        let mut seen_repeats = [false; 2];
        for kind in WorkloadKind::ALL {
            for preset in [Preset::Independent, Preset::HotRecipient, Preset::Chained] {
                let workload = WorkloadSpec::preset(kind, preset, Size::Txs(300))
                    .build()
                    .expect("workload");
                let input = &workload.input;
                let flows = AccountFlows::new(input);
                for parts in [1, 2, 5] {
                    let independence = predict::independence(
                        &input.txs,
                        input.block.beneficiary,
                        |_| false,
                        parts,
                    );
                    let Some(independence) = independence else {
                        continue;
                    };
                    seen_repeats[usize::from(independence.repeats)] = true;
                    if !independence.repeats {
                        // Every account that appears twice appeared
                        // first in a call that is not a plain transfer:
                        // none can be predicted at any chunk start.
                        for start in 0..=input.txs.len() {
                            for address in flows.0.keys() {
                                assert_eq!(
                                    flows.before(address, start),
                                    None,
                                    "{kind:?} {preset:?} {address} at {start}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(seen_repeats, [true, true], "both answers met");
    }

    /// The flows keep only what `before` can use: for every listed
    /// account and every chunk start, the answer is that of the full
    /// list. Random blocks (payouts among them) and the workloads.
    #[test]
    fn pruned_flows_answer_as_the_full_lists() {
        use crate::gen::{random_block, GenParams};
        use crate::workload::{Preset, Size, WorkloadKind, WorkloadSpec};
        let mut inputs = Vec::new();
        for seed in 0..40 {
            let params = GenParams {
                txs: 60,
                accounts: 3 + (seed % 8) as usize,
                invalid_percent: 0,
                payout_percent: 40,
            };
            inputs.push(random_block(seed, &params).1);
        }
        for kind in WorkloadKind::ALL {
            let spec = WorkloadSpec::preset(kind, Preset::HotRecipient, Size::Txs(60));
            inputs.push(spec.build().expect("workload").input);
        }
        let (mut answered, mut pruned) = (0, 0);
        for input in &inputs {
            let full = AccountFlows(AccountFlows::listed(input));
            let flows = AccountFlows::new(input);
            pruned += full.0.len() - flows.0.len();
            for address in full.0.keys() {
                for start in 0..=input.txs.len() {
                    let answer = flows.before(address, start);
                    assert_eq!(answer, full.before(address, start), "{address} at {start}");
                    answered += usize::from(answer.is_some());
                }
            }
        }
        assert!(
            answered > 0 && pruned > 0,
            "{answered} answers, {pruned} pruned"
        );
    }

    #[test]
    fn boundaries_split_by_gas_and_cover_the_block() {
        let txs: Vec<TxEnv> = [100, 100, 100, 100].map(tx).into();
        assert_eq!(boundaries(&txs, 2, false), vec![0, 2, 4]);
        let txs: Vec<TxEnv> = [300, 100, 100, 100].map(tx).into();
        assert_eq!(boundaries(&txs, 2, false), vec![0, 1, 4]);
        assert_eq!(boundaries(&txs, 1, false), vec![0, 4]);
        // More parts than transactions: one transaction per part.
        let txs: Vec<TxEnv> = [1, 1].map(tx).into();
        assert_eq!(boundaries(&txs, 8, false), vec![0, 1, 2]);
        assert_eq!(boundaries(&[], 4, false), vec![0]);
        // Tracking: the untracked first chunk takes 3/5 of the gas on two
        // threads, 3/9 on four (the others 2/9 each).
        let txs: Vec<TxEnv> = [100; 10].map(tx).into();
        assert_eq!(boundaries(&txs, 2, true), vec![0, 6, 10]);
        assert_eq!(boundaries(&txs, 2, false), vec![0, 5, 10]);
        let txs: Vec<TxEnv> = [100; 18].map(tx).into();
        assert_eq!(boundaries(&txs, 4, true), vec![0, 6, 10, 14, 18]);
        assert_eq!(boundaries(&txs, 1, true), vec![0, 18]);
    }
}
