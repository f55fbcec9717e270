//! Errors returned by the library. Nothing in the library panics on bad
//! input or a failing storage backend; everything ends up here.

use crate::types::TxIdx;

/// A failure reported by a [`Storage`](crate::Storage) backend.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("storage error: {message}")]
pub struct StorageError {
    /// What went wrong, as the backend describes it.
    pub message: String,
}

impl StorageError {
    /// A storage error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Why a block could not be executed.
///
/// The same input gives the same error on the sequential and the parallel
/// path: errors that depend on a transaction's position are reported for the
/// lowest failing transaction index, exactly as a sequential loop would.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// A transaction is invalid in the state left by the transactions before
    /// it (bad nonce, insufficient funds, gas limit above the block's, ...).
    #[error("transaction {index} is invalid: {reason}")]
    InvalidTransaction {
        /// Index of the transaction in the block.
        index: TxIdx,
        /// revm's description of the validation failure.
        reason: String,
    },
    /// The block environment itself is invalid (e.g. a missing prevrandao after the merge).
    #[error("invalid block header: {0}")]
    InvalidHeader(String),
    /// The storage backend failed while executing a transaction.
    #[error("transaction {index}: {source}")]
    Storage {
        /// Index of the transaction that needed the failed read.
        index: TxIdx,
        /// The backend's error.
        #[source]
        source: StorageError,
    },
    /// revm reported a failure that is neither a validation nor a storage error.
    #[error("transaction {index}: EVM error: {message}")]
    Evm {
        /// Index of the transaction.
        index: TxIdx,
        /// revm's message.
        message: String,
    },
    /// The engine broke one of its own invariants (a bug in parevm), or a
    /// worker thread panicked. The block result is not usable.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias of this crate.
pub type Result<T, E = ExecError> = std::result::Result<T, E>;
