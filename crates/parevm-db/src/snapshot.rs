//! [`Snapshot`]: the state at the head as a [`Storage`], over one redb read
//! transaction.

use alloy_primitives::{Address, B256, U256};
use parevm::revm::bytecode::Bytecode;
use parevm::revm::primitives::KECCAK_EMPTY;
use parevm::storage::{bytecode_from_bytes, code_hash_of};
use parevm::{AccountBasic, Storage, StorageError};
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable as _};

use crate::schema::{self, slot_key};
use crate::types::{DbError, Head, StoredAccount};

/// The database's state as of one moment (its head when taken). Every
/// worker thread reads it through `&self`; redb's read-only tables need no
/// lock of ours.
pub struct Snapshot {
    accounts: ReadOnlyTable<&'static [u8; 20], &'static [u8]>,
    slots: ReadOnlyTable<&'static [u8; 52], &'static [u8; 32]>,
    codes: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    block_hashes: ReadOnlyTable<u64, &'static [u8; 32]>,
    head: Option<Head>,
}

impl Snapshot {
    pub(crate) fn new(txn: ReadTransaction) -> Result<Self, DbError> {
        let meta = txn.open_table(schema::META).map_err(DbError::storage)?;
        let head = match meta.get(schema::HEAD_KEY).map_err(DbError::storage)? {
            Some(value) => Some(schema::decode_head(value.value())?),
            None => None,
        };
        Ok(Self {
            head,
            accounts: txn.open_table(schema::ACCOUNTS).map_err(DbError::storage)?,
            slots: txn.open_table(schema::SLOTS).map_err(DbError::storage)?,
            codes: txn.open_table(schema::CODES).map_err(DbError::storage)?,
            block_hashes: txn
                .open_table(schema::BLOCK_HASHES)
                .map_err(DbError::storage)?,
        })
    }

    /// The head this snapshot is the state after (`None` before a genesis).
    pub fn head(&self) -> Option<Head> {
        self.head
    }

    /// An account with its storage root.
    ///
    /// # Errors
    /// [`DbError`] when the database cannot be read.
    pub fn stored_account(&self, address: &Address) -> Result<Option<StoredAccount>, DbError> {
        let Some(value) = self.accounts.get(&address.0 .0).map_err(DbError::storage)? else {
            return Ok(None);
        };
        schema::decode_account(value.value()).map(Some)
    }

    /// A slot's value (zero when unset).
    ///
    /// # Errors
    /// [`DbError`] when the database cannot be read.
    pub fn stored_slot(&self, address: &Address, slot: &U256) -> Result<U256, DbError> {
        let key = slot_key(&address.0 .0, slot);
        Ok(self
            .slots
            .get(&key)
            .map_err(DbError::storage)?
            .map_or(U256::ZERO, |v| U256::from_be_bytes(*v.value())))
    }
}

fn read_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::new(format!("state database: {e}"))
}

impl Storage for Snapshot {
    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        Ok(self
            .stored_account(address)
            .map_err(read_error)?
            .map(|account| AccountBasic {
                balance: account.balance,
                nonce: account.nonce,
                code_hash: account.code_hash,
            }))
    }

    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError> {
        if code_hash_of(*code_hash) == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        match self.codes.get(&code_hash.0).map_err(read_error)? {
            Some(code) => Ok(bytecode_from_bytes(code.value().to_vec().into())),
            None => Err(StorageError::new(format!("unknown code hash {code_hash}"))),
        }
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        self.stored_slot(address, slot).map_err(read_error)
    }

    fn block_hash(&self, number: u64) -> Result<B256, StorageError> {
        Ok(self
            .block_hashes
            .get(number)
            .map_err(read_error)?
            .map_or(B256::ZERO, |v| B256::from(*v.value())))
    }

    fn has_storage(&self, address: &Address) -> Result<bool, StorageError> {
        let low = slot_key(&address.0 .0, &U256::ZERO);
        let high = slot_key(&address.0 .0, &U256::MAX);
        let mut range = self.slots.range(&low..=&high).map_err(read_error)?;
        Ok(range.next().transpose().map_err(read_error)?.is_some())
    }
}
