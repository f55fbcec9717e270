//! Shifts: correcting a chunk whose only stale reads are values it can
//! move. A predicted account wrong only by its balance is shifted to the
//! real balance; a tracked slot that an earlier chunk changed is shifted
//! by how far it moved, once every fact recorded on it still holds.

use std::sync::Mutex;

use alloy_primitives::{Address, U256};
use revm::context_interface::Transaction as _;
use revm::primitives::KECCAK_EMPTY;
use rustc_hash::FxHashMap;

use super::execute::ChunkRun;
use crate::evm::task::{TxFailure, TxOutput};
use crate::evm::view::{apply_credit, storage_account, AccountValue};
use crate::input::BlockInput;
use crate::pool::fan_out;
use crate::storage::code_hash_of;
use crate::storage::Storage;
use alloy_primitives::B256;
use revm::primitives::hardfork::SpecId;

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
                value = apply_credit(value, delta, spec);
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
pub(super) fn account_shifts<S: Storage>(
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
pub(super) fn shift_accounts<S>(
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

/// The value of `address`'s `slot` at the end of `runs` (chunks in block
/// order), or `None` if none of them wrote it.
pub(super) fn value_after<S>(
    runs: &[ChunkRun<'_, S>],
    address: Address,
    slot: U256,
) -> Option<U256> {
    runs.iter().rev().find_map(|run| {
        let overlay = &run.db.overlay;
        overlay
            .slots
            .get(&(address, slot))
            .copied()
            .or_else(|| overlay.wiped.contains(&address).then_some(U256::ZERO))
    })
}

/// How far each tracked slot of chunk `c` moved (`evm::deltas` module docs):
/// its value before the chunk (the corrected value of the last earlier
/// chunk that holds it) minus the value the chunk read. `shared` lists the
/// chunk's tracked slots that an earlier chunk holds: the others cannot
/// have moved. The earlier chunks must be corrected already (block
/// order); the chunk's own overlay is corrected here, its outputs by
/// [`apply_shifts`].
pub(super) fn slot_shifts<S>(
    runs: &mut [ChunkRun<'_, S>],
    c: usize,
    shared: &[usize],
) -> Vec<(usize, U256)> {
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
pub(super) fn apply_shifts<S: Sync>(
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
    let broken = fan_out(parts, |part| {
        deltas.first_broken(&shifts, part * per_part..((part + 1) * per_part).min(facts))
    })?;
    let conflict = broken.into_iter().flatten().chain(conflict).min();
    let kept = conflict.unwrap_or(run.outputs.len()).min(run.outputs.len());
    let per_part = kept.div_ceil(parts.max(1)).max(1);
    let pieces: Vec<Mutex<&mut [Result<TxOutput, TxFailure>]>> = run.outputs[..kept]
        .chunks_mut(per_part)
        .map(Mutex::new)
        .collect();
    fan_out(pieces.len(), |part| {
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
