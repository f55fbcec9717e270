//! Pre-block state backends.
//!
//! [`Storage`] is what the engine reads when multi-version memory has no
//! write for a location: the state as it was before the block. It is shared
//! by all worker threads (`Send + Sync`, `&self`) and every method may fail
//! with a [`StorageError`], which the engine turns into
//! [`ExecError::Storage`](crate::ExecError::Storage) naming the transaction.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;
use serde::Deserialize;

use crate::error::StorageError;

/// Balance, nonce and code hash of an account in the pre-block state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountBasic {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Keccak of the code, [`KECCAK_EMPTY`] without code.
    pub code_hash: B256,
}

impl AccountBasic {
    /// An account without code.
    pub fn new(balance: U256, nonce: u64) -> Self {
        Self {
            balance,
            nonce,
            code_hash: KECCAK_EMPTY,
        }
    }
}

/// Bytecode from raw bytes without panicking: bytes that start like an
/// EIP-7702 delegation but are malformed (which EIP-3541 keeps off chain)
/// are kept as plain legacy code instead of aborting the process.
pub fn bytecode_from_bytes(code: Bytes) -> Bytecode {
    Bytecode::new_raw_checked(code.clone()).unwrap_or_else(|_| Bytecode::new_legacy(code))
}

/// Read access to the state before the block.
pub trait Storage: Send + Sync {
    /// The account at `address`, or `None` if it does not exist.
    ///
    /// # Errors
    /// Any failure of the backend.
    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError>;

    /// The code with this hash.
    ///
    /// # Errors
    /// Any failure of the backend, including an unknown hash.
    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError>;

    /// A storage slot; zero when unset.
    ///
    /// # Errors
    /// Any failure of the backend.
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError>;

    /// The hash of an earlier block (for `BLOCKHASH`).
    ///
    /// # Errors
    /// Any failure of the backend.
    fn block_hash(&self, number: u64) -> Result<B256, StorageError>;

    /// True when the account at `address` has any non-zero storage slot.
    /// EIP-7610 forbids creating a contract over such an account even when
    /// it has no code and a zero nonce; revm cannot ask its database this,
    /// so parevm does.
    ///
    /// # Errors
    /// Any failure of the backend.
    fn has_storage(&self, address: &Address) -> Result<bool, StorageError>;
}

impl<S: Storage + ?Sized> Storage for &S {
    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        (**self).account(address)
    }
    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError> {
        (**self).code_by_hash(code_hash)
    }
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        (**self).storage(address, slot)
    }
    fn block_hash(&self, number: u64) -> Result<B256, StorageError> {
        (**self).block_hash(number)
    }

    fn has_storage(&self, address: &Address) -> Result<bool, StorageError> {
        (**self).has_storage(address)
    }
}

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

    /// Builds a state from a geth `prestateTracer`-shaped JSON object:
    /// `{ "0xaddr": { "balance": "0x..", "nonce": 7, "code": "0x..",
    /// "storage": { "0xslot": "0xvalue" } } }`. Missing fields are zero/empty.
    ///
    /// # Errors
    /// A [`StorageError`] naming the problem when the JSON does not have this shape.
    pub fn from_prestate_json(json: &str) -> Result<Self, StorageError> {
        let map: HashMap<Address, PrestateAccount> = serde_json::from_str(json)
            .map_err(|e| StorageError::new(format!("invalid prestate JSON: {e}")))?;
        Ok(Self::from_prestate(map))
    }

    /// Builds a state from already-parsed prestate accounts.
    pub fn from_prestate(map: HashMap<Address, PrestateAccount>) -> Self {
        let mut storage = Self::new();
        for (address, account) in map {
            storage.insert_contract(
                address,
                account.balance,
                account.nonce.0,
                account.code.unwrap_or_default(),
            );
            for (slot, value) in account.storage {
                storage.insert_slot(address, slot.into(), value.into());
            }
        }
        storage
    }
}

/// One account of a prestate JSON map.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PrestateAccount {
    /// Balance (hex quantity).
    pub balance: U256,
    /// Nonce (number or hex quantity).
    pub nonce: FlexU64,
    /// Code, absent for accounts without code.
    pub code: Option<Bytes>,
    /// Storage slots that the block touches.
    pub storage: HashMap<B256, B256>,
}

/// A `u64` that deserialises from a JSON number or a hex/decimal string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlexU64(pub u64);

impl<'de> Deserialize<'de> for FlexU64 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Str(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Num(n) => Ok(Self(n)),
            Raw::Str(s) => {
                let parsed = match s.strip_prefix("0x") {
                    Some("") => Ok(0),
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => s.parse(),
                };
                parsed
                    .map(Self)
                    .map_err(|e| serde::de::Error::custom(format!("bad integer {s:?}: {e}")))
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
    fn prestate_json_parses_numbers_and_hex() {
        let json = r#"{
            "0x0000000000000000000000000000000000000001": {"balance": "0x10", "nonce": 3},
            "0x0000000000000000000000000000000000000002": {"balance": "0x0", "nonce": "0x2",
                "code": "0x6000", "storage": {
                "0x0000000000000000000000000000000000000000000000000000000000000001":
                "0x0000000000000000000000000000000000000000000000000000000000000005"}}
        }"#;
        let s = InMemoryStorage::from_prestate_json(json).expect("valid");
        let a1 = s
            .account(&Address::with_last_byte(1))
            .expect("ok")
            .expect("exists");
        assert_eq!(a1.balance, U256::from(16));
        assert_eq!(a1.nonce, 3);
        assert_eq!(a1.code_hash, KECCAK_EMPTY);
        let a2 = s
            .account(&Address::with_last_byte(2))
            .expect("ok")
            .expect("exists");
        assert_eq!(a2.nonce, 2);
        assert_eq!(a2.code_hash, keccak256([0x60, 0x00]));
        assert_eq!(
            s.storage(&Address::with_last_byte(2), &U256::from(1))
                .expect("ok"),
            U256::from(5)
        );
        assert_eq!(
            s.code_by_hash(&a2.code_hash)
                .expect("ok")
                .original_bytes()
                .as_ref(),
            &[0x60, 0x00]
        );
    }

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

    #[test]
    fn bad_prestate_json_is_an_error() {
        let err = InMemoryStorage::from_prestate_json(r#"{"0x01": {"balance": "zz"}}"#)
            .expect_err("must fail");
        assert!(err.message.contains("invalid prestate JSON"), "{err}");
    }
}
