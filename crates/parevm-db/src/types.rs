//! The database's vocabulary: its errors, its head, its account records.

use std::path::PathBuf;

use alloy_primitives::{B256, U256};

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file could not be opened or created.
    #[error("{path}: {message}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file is a redb database, but not a parevm state database (or
    /// of another format version).
    #[error("{path}: not a parevm state database ({found})")]
    NotOurs {
        /// The database file.
        path: PathBuf,
        /// What the file says it is.
        found: String,
    },
    /// redb failed while reading or writing.
    #[error("database: {0}")]
    Storage(String),
    /// The database's content is not what parevm wrote.
    #[error("database content: {0}")]
    Corrupt(String),
}

impl DbError {
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        Self::Storage(e.to_string())
    }
}

/// The last block the database holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// State root after it.
    pub state_root: B256,
}

/// An account as the database holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Code hash.
    pub code_hash: B256,
    /// Root of its storage trie.
    pub storage_root: B256,
}

/// A committed block's state root, and what computing it and writing the
/// block took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The state root after the block.
    pub root: B256,
    /// Applying the diff to the tables and computing the root.
    pub root_time: std::time::Duration,
    /// Writing the header, hash and head, and committing (with its sync to
    /// disk).
    pub write_time: std::time::Duration,
}

/// Why a block could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The state root after the block differs from the header's.
    #[error("block {number}: state root {computed}, header says {expected}")]
    RootMismatch {
        /// The block.
        number: u64,
        /// The root of the state with the block applied.
        computed: B256,
        /// The header's.
        expected: B256,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}
