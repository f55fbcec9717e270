//! [`DatabaseStorage`]: any revm [`DatabaseRef`] as the pre-block
//! [`Storage`], so that a node's own database (revm's `CacheDB`, a state
//! provider behind revm's traits) feeds the workers directly.
//!
//! The workers read the database through `&self` from several threads at
//! once, hence `DatabaseRef + Sync`: the `Ref` methods do not need `&mut`,
//! and a database that caches behind them must do so thread-safely.

use alloy_primitives::{Address, B256, U256};
use revm::bytecode::Bytecode;
use revm::database_interface::DatabaseRef;

use crate::error::StorageError;
use crate::storage::{code_hash_of, AccountBasic, Storage};

/// A revm [`DatabaseRef`] read as parevm's pre-block [`Storage`].
///
/// revm's database interface cannot say whether an account has storage,
/// which EIP-7610 asks before creating a contract over an account with no
/// code and a zero nonce; [`DatabaseStorage::with_storage_check`] supplies
/// that answer, and without it every account counts as having none (the
/// same assumption revm makes over such a database).
pub struct DatabaseStorage<D> {
    db: D,
    has_storage: Option<HasStorage>,
}

/// Whether an account has a non-zero slot, for EIP-7610.
type HasStorage = Box<dyn Fn(&Address) -> Result<bool, StorageError> + Send + Sync>;

impl<D: std::fmt::Debug> std::fmt::Debug for DatabaseStorage<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseStorage")
            .field("db", &self.db)
            .field("storage_check", &self.has_storage.is_some())
            .finish()
    }
}

impl<D: DatabaseRef + Sync + Send> DatabaseStorage<D> {
    /// `db` as the state before a block.
    pub fn new(db: D) -> Self {
        Self {
            db,
            has_storage: None,
        }
    }

    /// Answers EIP-7610's question (does the account have any non-zero
    /// slot) with `check`.
    pub fn with_storage_check(
        mut self,
        check: impl Fn(&Address) -> Result<bool, StorageError> + Send + Sync + 'static,
    ) -> Self {
        self.has_storage = Some(Box::new(check));
        self
    }

    /// The database.
    pub fn inner(&self) -> &D {
        &self.db
    }
}

fn storage_error(error: impl std::fmt::Display) -> StorageError {
    StorageError::new(error.to_string())
}

impl<D: DatabaseRef + Sync + Send> Storage for DatabaseStorage<D> {
    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        let info = self.db.basic_ref(*address).map_err(storage_error)?;
        Ok(info.map(|info| AccountBasic {
            balance: info.balance,
            nonce: info.nonce,
            code_hash: code_hash_of(info.code_hash),
        }))
    }

    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError> {
        self.db.code_by_hash_ref(*code_hash).map_err(storage_error)
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        self.db.storage_ref(*address, *slot).map_err(storage_error)
    }

    fn block_hash(&self, number: u64) -> Result<B256, StorageError> {
        self.db.block_hash_ref(number).map_err(storage_error)
    }

    fn has_storage(&self, address: &Address) -> Result<bool, StorageError> {
        match &self.has_storage {
            Some(check) => check(address),
            None => Ok(false),
        }
    }
}
