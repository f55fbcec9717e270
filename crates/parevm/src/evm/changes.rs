//! Turning revm's per-transaction state into our changes ([`TxChanges`]),
//! and the one change built by hand: the lazy fee credit of the
//! beneficiary, checked against the journal-built reference by a test.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use revm::primitives::hardfork::SpecId;
use revm::primitives::KECCAK_EMPTY;
use revm::state::{Account, EvmState, TransactionId};

use super::view::AccountValue;
use crate::output::{AccountChange, AccountState, TxChanges};

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

/// Converts revm's per-transaction state into our diff.
pub(crate) fn changes_of(state: &EvmState, spec: SpecId) -> TxChanges {
    state
        .iter()
        .filter_map(|(address, account)| account_change(account, spec).map(|c| (*address, c)))
        .collect()
}

/// The change revm's journal would record for crediting `delta` to an
/// account in state `before`. After Spurious Dragon this is computed
/// directly (it is on the commit path of every transaction);
/// `credit_via_journal` is the reference, checked against it by a test.
pub(crate) fn fee_credit(
    before: Option<&AccountValue>,
    delta: U256,
    spec: SpecId,
) -> Option<AccountChange> {
    if !spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) {
        return credit_via_journal(before, delta, spec);
    }
    // EIP-161: a touched account that ends empty is deleted. An existing
    // account keeps its code, so the change carries none.
    let (balance, nonce, code_hash) = before
        .map_or((U256::ZERO, 0, revm::primitives::KECCAK_EMPTY), |v| {
            (v.balance, v.nonce, v.code_hash)
        });
    let balance = balance.saturating_add(delta);
    let info = AccountState {
        balance,
        nonce,
        code_hash,
        code: None,
    };
    Some(if info.is_empty() {
        AccountChange {
            info: None,
            storage_cleared: true,
            storage: Default::default(),
        }
    } else {
        AccountChange {
            info: Some(info),
            storage_cleared: false,
            storage: Default::default(),
        }
    })
}

/// The credit as revm's journal records it: an [`Account`] built like revm
/// builds it, normalised and read by the same [`account_change`] the
/// sequential path uses.
pub(crate) fn credit_via_journal(
    before: Option<&AccountValue>,
    delta: U256,
    spec: SpecId,
) -> Option<AccountChange> {
    let mut account = match before {
        Some(value) => Account::from(value.to_info()),
        None => Account::new_not_existing(TransactionId::ZERO),
    };
    account.mark_touch();
    account.info.balance = account.info.balance.saturating_add(delta);
    normalize_pre_spurious(&mut account, spec);
    account_change(&account, spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{B256, U256};

    #[test]
    fn direct_credit_matches_the_journal() {
        let contract = revm::bytecode::Bytecode::new_legacy(vec![0x60, 0x00].into());
        let befores = [
            None,
            Some(AccountValue::empty()),
            Some(AccountValue {
                balance: U256::from(7),
                nonce: 3,
                ..AccountValue::empty()
            }),
            Some(AccountValue {
                balance: U256::ZERO,
                nonce: 1,
                code_hash: contract.hash_slow(),
                code: Some(contract.clone()),
            }),
            Some(AccountValue {
                balance: U256::MAX,
                nonce: 0,
                code_hash: B256::repeat_byte(1),
                code: None,
            }),
        ];
        for spec in [
            SpecId::FRONTIER,
            SpecId::TANGERINE,
            SpecId::SPURIOUS_DRAGON,
            SpecId::LONDON,
            SpecId::CANCUN,
            SpecId::OSAKA,
        ] {
            for before in &befores {
                for delta in [U256::ZERO, U256::from(5)] {
                    assert_eq!(
                        fee_credit(before.as_ref(), delta, spec),
                        credit_via_journal(before.as_ref(), delta, spec),
                        "{spec:?} {before:?} +{delta}"
                    );
                }
            }
        }
    }
}
