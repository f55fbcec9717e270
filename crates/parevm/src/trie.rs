//! Merkle-Patricia roots of a post-block state.
//!
//! [`state_root`] needs the *complete* pre-block state: the root commits to
//! every account, so a partial pre-state (such as a `prestateTracer` dump)
//! gives a meaningless root. The tries are built with `alloy-trie`'s
//! [`HashBuilder`], fed with keys in sorted order.

use std::collections::BTreeMap;

use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_trie::{HashBuilder, Nibbles, TrieAccount};

use crate::output::StateDiff;
use crate::storage::{code_hash_of, InMemoryStorage};

/// Root of the empty trie: `keccak256(rlp(""))`.
pub const EMPTY_ROOT_HASH: B256 = alloy_trie::EMPTY_ROOT_HASH;

/// One account of a post-block state, with all its non-zero slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Hash of the code ([`KECCAK_EMPTY`](revm::primitives::KECCAK_EMPTY) without code).
    pub code_hash: B256,
    /// Non-zero storage slots.
    pub storage: BTreeMap<U256, U256>,
}

/// The complete state after applying `diff` to `pre`: deleted accounts
/// (`info: None`) are gone, `storage_cleared` drops every slot the account
/// had before, and slots set to zero are removed.
pub fn post_state(pre: &InMemoryStorage, diff: &StateDiff) -> BTreeMap<Address, PostAccount> {
    let mut state = pre.clone();
    state.apply(diff);
    state
        .accounts()
        .map(|(address, basic)| {
            let storage = state
                .account_slots(address)
                .into_iter()
                .flatten()
                .filter(|(_, value)| !value.is_zero())
                .map(|(slot, value)| (*slot, *value))
                .collect();
            let account = PostAccount {
                balance: basic.balance,
                nonce: basic.nonce,
                code_hash: code_hash_of(basic.code_hash),
                storage,
            };
            (*address, account)
        })
        .collect()
}

/// The state root after applying `diff` (a block's merged
/// [`BlockResult::state`](crate::BlockResult::state)) to the complete
/// pre-block state `pre`.
pub fn state_root(pre: &InMemoryStorage, diff: &StateDiff) -> B256 {
    state_root_of(&post_state(pre, diff))
}

/// The state root of a complete state.
pub fn state_root_of(state: &BTreeMap<Address, PostAccount>) -> B256 {
    let leaves: BTreeMap<B256, Vec<u8>> = state
        .iter()
        .map(|(address, account)| {
            let code_hash = code_hash_of(account.code_hash);
            let trie_account = TrieAccount::new(
                account.nonce,
                account.balance,
                storage_root(account.storage.iter().map(|(k, v)| (*k, *v))),
                code_hash,
            );
            (keccak256(address), alloy_rlp::encode(trie_account))
        })
        .collect();
    root_of_sorted(&leaves)
}

/// The storage root of an account's slots; zero values are left out, as
/// they are absent from the trie.
pub fn storage_root(slots: impl IntoIterator<Item = (U256, U256)>) -> B256 {
    let leaves: BTreeMap<B256, Vec<u8>> = slots
        .into_iter()
        .filter(|(_, value)| !value.is_zero())
        .map(|(slot, value)| {
            (
                keccak256(slot.to_be_bytes::<32>()),
                alloy_rlp::encode(value),
            )
        })
        .collect();
    root_of_sorted(&leaves)
}

/// Root of a trie whose leaves are given by hashed key, in key order.
fn root_of_sorted(leaves: &BTreeMap<B256, Vec<u8>>) -> B256 {
    if leaves.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    let mut builder = HashBuilder::default();
    // A BTreeMap yields unique keys in ascending order, which is what
    // `add_leaf` requires.
    for (key, value) in leaves {
        builder.add_leaf(Nibbles::unpack(key), value);
    }
    builder.root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{AccountChange, AccountState};
    use alloy_primitives::{address, b256, bytes, hex};
    use revm::primitives::KECCAK_EMPTY;

    #[test]
    fn empty_trie_root() {
        // keccak256(0x80), the well-known empty trie root.
        assert_eq!(
            EMPTY_ROOT_HASH,
            b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
        );
        assert_eq!(
            state_root(&InMemoryStorage::new(), &StateDiff::new()),
            EMPTY_ROOT_HASH
        );
        assert_eq!(storage_root([(U256::from(1), U256::ZERO)]), EMPTY_ROOT_HASH);
    }

    /// State test `test_identity_return_overwrite[fork_Berlin-CALL]` (from
    /// execution-spec-tests): its post-state, written out, has the root the
    /// fixture names.
    #[test]
    fn state_test_post_root() {
        let mut pre = InMemoryStorage::new();
        let code = bytes!("60016000536002600153600360025360046003536004600160046000600060045af13d600060003e59600020600155");
        let contract = address!("2948db106245b059a671828a9b4f189355620f54");
        pre.insert_contract(contract, U256::ZERO, 1, code.clone());
        let sender = address!("8c96ce21b944ecd075115fd23cf29d216868796d");
        pre.insert_account(sender, U256::from_be_slice(&hex!("3635c9adc5dea00000")), 0);
        let coinbase = address!("2adc25665018aa1fe0e6bc666dac8fc2697ff9ba");
        let mut diff = StateDiff::new();
        diff.insert(
            contract,
            AccountChange {
                info: Some(AccountState {
                    balance: U256::ZERO,
                    nonce: 1,
                    code_hash: keccak256(&code),
                    code: None,
                }),
                storage_cleared: false,
                storage: [(
                    U256::from(1),
                    U256::from_be_bytes(
                        b256!("52d7963d9a152455cd39d5b7efa696eb4d4fac938d51cf5d779e3792944aff7b").0,
                    ),
                )]
                .into(),
            },
        );
        let account = |balance: &[u8], nonce| AccountChange {
            info: Some(AccountState {
                balance: U256::from_be_slice(balance),
                nonce,
                code_hash: KECCAK_EMPTY,
                code: None,
            }),
            ..Default::default()
        };
        diff.insert(sender, account(&hex!("3635c9adc5de99633a"), 1));
        diff.insert(coinbase, account(&hex!("069cc6"), 0));
        assert_eq!(
            state_root(&pre, &diff),
            b256!("13eb4385a0c900fc8a80159f497561a9d016ebaa764eb4ec08256a4ceb102918")
        );
        // Deleting an account and clearing storage change the root.
        let mut deleted = diff.clone();
        deleted.insert(coinbase, AccountChange::default());
        assert_ne!(state_root(&pre, &deleted), state_root(&pre, &diff));
    }
}
