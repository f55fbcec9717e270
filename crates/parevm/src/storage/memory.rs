//! [`InMemoryStorage`]: a complete or partial state held in hash maps,
//! which a block's [`StateDiff`] can be applied to.

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;
use rustc_hash::FxHashMap;

use super::{bytecode_from_bytes, AccountBasic, Storage};
use crate::error::StorageError;
use crate::output::StateDiff;

/// A [`Storage`] held in hash maps: for tests, benchmarks and fixtures.
#[derive(Clone, Debug, Default)]
pub struct InMemoryStorage {
    accounts: FxHashMap<Address, AccountBasic>,
    codes: FxHashMap<B256, Bytecode>,
    slots: FxHashMap<Address, FxHashMap<U256, U256>>,
    block_hashes: FxHashMap<u64, B256>,
}

impl InMemoryStorage {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an account without code.
    pub fn insert_account(&mut self, address: Address, balance: U256, nonce: u64) {
        self.accounts
            .insert(address, AccountBasic::new(balance, nonce));
    }

    /// Adds (or replaces) an account with code; the code is indexed by its hash.
    pub fn insert_contract(&mut self, address: Address, balance: U256, nonce: u64, code: Bytes) {
        let code_hash = if code.is_empty() {
            KECCAK_EMPTY
        } else {
            let hash = keccak256(&code);
            self.codes.insert(hash, bytecode_from_bytes(code));
            hash
        };
        self.accounts.insert(
            address,
            AccountBasic {
                balance,
                nonce,
                code_hash,
            },
        );
    }

    /// Sets a storage slot (the account should exist too).
    pub fn insert_slot(&mut self, address: Address, slot: U256, value: U256) {
        self.slots.entry(address).or_default().insert(slot, value);
    }

    /// Sets the hash `BLOCKHASH(number)` returns.
    pub fn insert_block_hash(&mut self, number: u64, hash: B256) {
        self.block_hashes.insert(number, hash);
    }

    /// Number of accounts.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Iterates over all accounts (unordered).
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &AccountBasic)> {
        self.accounts.iter()
    }

    /// All storage slots of an account (unordered), if it has any.
    pub fn account_slots(&self, address: &Address) -> Option<&FxHashMap<U256, U256>> {
        self.slots.get(address)
    }

    /// Code by hash, if known.
    pub fn code(&self, hash: &B256) -> Option<&Bytecode> {
        self.codes.get(hash)
    }

    /// Applies a block's (or a transaction's) changes: deleted accounts
    /// go, `storage_cleared` drops every slot the account had, slots set
    /// to zero are removed, and new code is indexed by its hash.
    pub fn apply(&mut self, diff: &StateDiff) {
        for (address, change) in diff {
            let Some(info) = &change.info else {
                self.accounts.remove(address);
                self.slots.remove(address);
                continue;
            };
            if let Some(code) = &info.code {
                self.codes.insert(info.code_hash, code.clone());
            }
            self.accounts.insert(
                *address,
                AccountBasic {
                    balance: info.balance,
                    nonce: info.nonce,
                    code_hash: info.code_hash,
                },
            );
            if change.storage_cleared {
                self.slots.remove(address);
            }
            if change.storage.is_empty() {
                continue;
            }
            let slots = self.slots.entry(*address).or_default();
            for (slot, value) in &change.storage {
                if value.is_zero() {
                    slots.remove(slot);
                } else {
                    slots.insert(*slot, *value);
                }
            }
        }
    }
}

impl Storage for InMemoryStorage {
    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        Ok(self.accounts.get(address).cloned())
    }

    fn has_storage(&self, address: &Address) -> Result<bool, StorageError> {
        Ok(self
            .slots
            .get(address)
            .is_some_and(|slots| slots.values().any(|v| !v.is_zero())))
    }

    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError> {
        if *code_hash == KECCAK_EMPTY || code_hash.is_zero() {
            return Ok(Bytecode::default());
        }
        self.codes
            .get(code_hash)
            .cloned()
            .ok_or_else(|| StorageError::new(format!("unknown code hash {code_hash}")))
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        Ok(self
            .slots
            .get(address)
            .and_then(|slots| slots.get(slot))
            .copied()
            .unwrap_or_default())
    }

    fn block_hash(&self, number: u64) -> Result<B256, StorageError> {
        // Without a recorded hash, fall back to the same synthetic hash revm's
        // in-memory databases use, so tests without history stay deterministic.
        Ok(self
            .block_hashes
            .get(&number)
            .copied()
            .unwrap_or_else(|| keccak256(number.to_string().as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_delegation_code_does_not_panic() {
        let mut s = InMemoryStorage::new();
        s.insert_contract(
            Address::with_last_byte(9),
            U256::ZERO,
            0,
            Bytes::from_static(&[0xef, 0x01, 0x00]),
        );
        let a = s
            .account(&Address::with_last_byte(9))
            .expect("ok")
            .expect("exists");
        assert_eq!(a.code_hash, keccak256([0xef, 0x01, 0x00]));
        assert_eq!(
            s.code_by_hash(&a.code_hash)
                .expect("ok")
                .original_bytes()
                .as_ref(),
            &[0xef, 0x01, 0x00]
        );
    }
}
