//! Pre-block state: the [`Storage`] trait the engine reads, and the
//! backends that implement it ([`InMemoryStorage`], and [`LayeredStorage`]
//! for a state seen through a diff).
//!
//! [`Storage`] is what the engine reads when multi-version memory has no
//! write for a location: the state as it was before the block. It is shared
//! by all worker threads (`Send + Sync`, `&self`) and every method may fail
//! with a [`StorageError`], which the engine turns into
//! [`ExecError::Storage`](crate::ExecError::Storage) naming the transaction.

use alloy_primitives::{Address, Bytes, B256, U256};
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;

use crate::error::StorageError;

mod layered;
mod memory;

pub use layered::LayeredStorage;
pub use memory::InMemoryStorage;

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

/// A stored code hash, with zero (some storages' "no code") as the empty one.
pub fn code_hash_of(hash: B256) -> B256 {
    if hash.is_zero() {
        KECCAK_EMPTY
    } else {
        hash
    }
}
