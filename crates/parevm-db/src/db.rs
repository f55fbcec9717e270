//! [`StateDb`]: opening, the head, snapshots, and committing a block.

use std::path::Path;

use alloy_primitives::{Address, B256, U256};
use parevm::StateDiff;
use redb::{ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _};

use crate::snapshot::Snapshot;
use crate::types::{CommitError, Committed, DbError, Head, StoredAccount};
use crate::{schema, trie};

/// A parevm state database.
pub struct StateDb {
    db: redb::Database,
}

impl StateDb {
    /// Opens the database at `path`, creating it if it does not exist.
    ///
    /// # Errors
    /// [`DbError::Open`] when the file cannot be opened or is not a redb
    /// database, [`DbError::NotOurs`] when it is another program's.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let open_error = |e: redb::DatabaseError| DbError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let db = redb::Database::create(path).map_err(open_error)?;
        let state = Self { db };
        state.check_format(path)?;
        Ok(state)
    }

    /// A database in memory (tests, one-off imports).
    ///
    /// # Errors
    /// [`DbError::Storage`] if redb cannot set it up.
    pub fn in_memory() -> Result<Self, DbError> {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(DbError::storage)?;
        let state = Self { db };
        state.check_format(Path::new(":memory:"))?;
        Ok(state)
    }

    /// Writes the format marker into a new database, or checks it in an
    /// existing one.
    fn check_format(&self, path: &Path) -> Result<(), DbError> {
        let txn = self.db.begin_write().map_err(DbError::storage)?;
        {
            schema::open_all(&txn).map_err(|e| DbError::NotOurs {
                path: path.to_path_buf(),
                found: e.to_string(),
            })?;
            let mut meta = txn.open_table(schema::META).map_err(DbError::storage)?;
            let found = meta
                .get(schema::FORMAT_KEY)
                .map_err(DbError::storage)?
                .map(|v| v.value().to_vec());
            match found {
                Some(format) if format == schema::FORMAT.as_bytes() => {}
                Some(other) => {
                    return Err(DbError::NotOurs {
                        path: path.to_path_buf(),
                        found: format!("format {:?}", String::from_utf8_lossy(&other)),
                    })
                }
                None => {
                    if !meta.is_empty().map_err(DbError::storage)? {
                        return Err(DbError::NotOurs {
                            path: path.to_path_buf(),
                            found: "no format marker".into(),
                        });
                    }
                    meta.insert(schema::FORMAT_KEY, schema::FORMAT.as_bytes())
                        .map_err(DbError::storage)?;
                }
            }
        }
        txn.commit().map_err(DbError::storage)
    }

    /// The last block committed, `None` before the genesis.
    ///
    /// # Errors
    /// [`DbError`] when the database cannot be read.
    pub fn head(&self) -> Result<Option<Head>, DbError> {
        let txn = self.db.begin_read().map_err(DbError::storage)?;
        let meta = txn.open_table(schema::META).map_err(DbError::storage)?;
        let Some(head) = meta.get(schema::HEAD_KEY).map_err(DbError::storage)? else {
            return Ok(None);
        };
        schema::decode_head(head.value()).map(Some)
    }

    /// The header of block `number`, RLP-encoded, if the database holds it.
    ///
    /// # Errors
    /// [`DbError`] when the database cannot be read.
    pub fn header_rlp(&self, number: u64) -> Result<Option<Vec<u8>>, DbError> {
        let txn = self.db.begin_read().map_err(DbError::storage)?;
        let headers = txn.open_table(schema::HEADERS).map_err(DbError::storage)?;
        let header = headers
            .get(number)
            .map_err(DbError::storage)?
            .map(|v| v.value().to_vec());
        Ok(header)
    }

    /// The state at the head, for executing the next block.
    ///
    /// # Errors
    /// [`DbError`] when the database cannot be read.
    pub fn snapshot(&self) -> Result<Snapshot, DbError> {
        Snapshot::new(self.db.begin_read().map_err(DbError::storage)?)
    }

    /// Commits block `number` (hash `hash`, header `header_rlp`): applies
    /// `diff`, computes the new state root incrementally, and, when it
    /// equals `expected_root` (or none is expected), commits the state,
    /// the header, the block hash and the new head at once. Otherwise
    /// nothing is written and the computed root is returned as the error's.
    ///
    /// # Errors
    /// [`CommitError::RootMismatch`] for a different root, [`CommitError::Db`]
    /// when the database fails.
    pub fn commit_block(
        &self,
        number: u64,
        hash: B256,
        header_rlp: &[u8],
        diff: &StateDiff,
        expected_root: Option<B256>,
    ) -> Result<Committed, CommitError> {
        let started = std::time::Instant::now();
        let txn = self.db.begin_write().map_err(DbError::storage)?;
        let root = trie::apply(&txn, diff)?;
        let root_time = started.elapsed();
        let started = std::time::Instant::now();
        if let Some(expected) = expected_root.filter(|expected| *expected != root) {
            txn.abort().map_err(DbError::storage)?;
            return Err(CommitError::RootMismatch {
                number,
                computed: root,
                expected,
            });
        }
        {
            let mut headers = txn.open_table(schema::HEADERS).map_err(DbError::storage)?;
            headers
                .insert(number, header_rlp)
                .map_err(DbError::storage)?;
            let mut hashes = txn
                .open_table(schema::BLOCK_HASHES)
                .map_err(DbError::storage)?;
            hashes.insert(number, &hash.0).map_err(DbError::storage)?;
            let mut meta = txn.open_table(schema::META).map_err(DbError::storage)?;
            let head = Head {
                number,
                hash,
                state_root: root,
            };
            meta.insert(schema::HEAD_KEY, schema::encode_head(&head).as_slice())
                .map_err(DbError::storage)?;
        }
        txn.commit().map_err(DbError::storage)?;
        Ok(Committed {
            root,
            root_time,
            write_time: started.elapsed(),
        })
    }

    /// The state root the head's state would have with `diff` applied,
    /// without applying it (for the receipts of blocks before Byzantium,
    /// which hold the root after each transaction).
    ///
    /// # Errors
    /// [`DbError`] when the database fails.
    pub fn root_with(&self, diff: &StateDiff) -> Result<B256, DbError> {
        let txn = self.db.begin_write().map_err(DbError::storage)?;
        let root = trie::apply(&txn, diff)?;
        txn.abort().map_err(DbError::storage)?;
        Ok(root)
    }

    /// The state root of the head's state, from the database's trie.
    ///
    /// # Errors
    /// [`DbError`] when the database fails.
    pub fn state_root(&self) -> Result<B256, DbError> {
        let txn = self.db.begin_write().map_err(DbError::storage)?;
        let root = trie::current_root(&txn)?;
        txn.commit().map_err(DbError::storage)?;
        Ok(root)
    }

    /// An account at the head.
    ///
    /// # Errors
    /// [`DbError`] when the database cannot be read.
    pub fn account(&self, address: &Address) -> Result<Option<StoredAccount>, DbError> {
        self.snapshot()?.stored_account(address)
    }

    /// A storage slot at the head (zero when unset).
    ///
    /// # Errors
    /// [`DbError`] when the database cannot be read.
    pub fn slot(&self, address: &Address, slot: &U256) -> Result<U256, DbError> {
        self.snapshot()?.stored_slot(address, slot)
    }
}
