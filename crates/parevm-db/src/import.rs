//! Importing blocks: each block is executed over the database's state,
//! checked against its header, and committed with its state diff in one
//! database transaction.
//!
//! [`init_genesis`] writes a genesis state; [`import_block`] takes a block
//! whose header the caller has checked against its parent's rules (fork
//! schedule, base fee, blob gas: `parevm::block::validate_header`), and:
//!
//! 1. checks that it extends the head (number and parent hash);
//! 2. executes it through parevm (`process_block_with_roots`, in parallel
//!    by the config) over a [`Snapshot`](crate::Snapshot) of the head;
//! 3. compares gas used, logs bloom, receipts root, blob gas, requests hash
//!    and withdrawals root with the header;
//! 4. applies the state diff, computes the state root incrementally,
//!    compares it with the header's and commits, or writes nothing.

use std::time::{Duration, Instant};

use alloy_primitives::B256;
use parevm::block::{process_block_with_roots, BlockError, FullBlock, ProcessedBlock};
use parevm::{Config, StateDiff, Storage};

use crate::db::StateDb;
use crate::types::{CommitError, Committed, DbError};

/// Why a block was not imported. The database is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The block does not extend the head.
    #[error("block {number}: {reason}")]
    NotNext {
        /// The block.
        number: u64,
        /// What does not fit.
        reason: String,
    },
    /// The block is invalid: a transaction, a block rule, or a header field
    /// that execution contradicts.
    #[error("block {number}: {reason}")]
    Invalid {
        /// The block.
        number: u64,
        /// The first rule broken.
        reason: String,
    },
    /// The state root after the block is not the header's.
    #[error(transparent)]
    Root(CommitError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What importing one block took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ImportStats {
    /// Gas the block used.
    pub gas: u64,
    /// Time to execute it (parevm, whole-block processing).
    pub execute: Duration,
    /// Time to apply its diff and compute the state root.
    pub root: Duration,
    /// Time to write and commit the database transaction.
    pub write: Duration,
}

/// Writes the genesis state `alloc` (every account with its code and
/// storage) as block 0 with hash `hash` and header `header_rlp`. With
/// `expected_root`, the state root must equal it.
///
/// # Errors
/// [`ImportError::NotNext`] on a database that has a head already,
/// [`ImportError::Root`] for another root.
pub fn init_genesis(
    db: &StateDb,
    alloc: &StateDiff,
    hash: B256,
    header_rlp: &[u8],
    expected_root: Option<B256>,
) -> Result<B256, ImportError> {
    if let Some(head) = db.head()? {
        return Err(ImportError::NotNext {
            number: 0,
            reason: format!("the database already holds blocks up to {}", head.number),
        });
    }
    db.commit_block(0, hash, header_rlp, alloc, expected_root)
        .map(|committed| committed.root)
        .map_err(|e| match e {
            CommitError::Db(e) => ImportError::Db(e),
            root => ImportError::Root(root),
        })
}

/// Imports `block` (hash `hash`) on top of the head (module docs).
///
/// # Errors
/// [`ImportError`] naming the block and the first problem.
pub fn import_block(
    db: &StateDb,
    block: &FullBlock,
    hash: B256,
    config: &Config,
) -> Result<ImportStats, ImportError> {
    let number = block.header.number;
    let head = db.head()?.ok_or_else(|| ImportError::NotNext {
        number,
        reason: "the database has no genesis".into(),
    })?;
    if number != head.number + 1 || block.header.parent_hash != head.hash {
        return Err(ImportError::NotNext {
            number,
            reason: format!(
                "its parent is {} (block {}), the head is {} (block {})",
                block.header.parent_hash,
                number.saturating_sub(1),
                head.hash,
                head.number
            ),
        });
    }
    let started = Instant::now();
    let snapshot = db.snapshot()?;
    let processed = execute_checked(db, &snapshot, block, config)?;
    drop(snapshot);
    let execute = started.elapsed();
    let committed = commit(db, block, hash, &processed.state)?;
    Ok(ImportStats {
        gas: processed.gas_used,
        execute,
        root: committed.root_time,
        write: committed.write_time,
    })
}

/// Executes `block` over `state` (the state before it) and checks it
/// against its header: gas used, logs bloom, receipts root, blob gas,
/// requests hash, withdrawals root. Blocks before Byzantium get their
/// intermediate state roots from the database, which must then hold the
/// block before.
///
/// # Errors
/// [`ImportError::Invalid`] naming the first rule broken.
pub(crate) fn execute_checked<S: Storage>(
    db: &StateDb,
    state: &S,
    block: &FullBlock,
    config: &Config,
) -> Result<ProcessedBlock, ImportError> {
    let number = block.header.number;
    let invalid = |reason: String| ImportError::Invalid { number, reason };
    let roots = |diff: &StateDiff| db.root_with(diff).unwrap_or_default();
    let processed = process_block_with_roots(state, block, config, Some(&roots))
        .map_err(|e: BlockError| invalid(e.to_string()))?;
    if let Some(mismatch) = processed
        .header_checks(block)
        .into_iter()
        .find_map(|check| check.mismatch)
    {
        return Err(invalid(mismatch));
    }
    Ok(processed)
}

/// Applies `diff` (block `block`'s changes), checks the state root against
/// the header's and commits it with the header, the hash and the new head,
/// in one database transaction; writes nothing on a mismatch.
///
/// # Errors
/// [`ImportError::Root`] for another state root, [`ImportError::Db`].
pub(crate) fn commit(
    db: &StateDb,
    block: &FullBlock,
    hash: B256,
    diff: &StateDiff,
) -> Result<Committed, ImportError> {
    let header_rlp = alloy_rlp::encode(&block.header);
    db.commit_block(
        block.header.number,
        hash,
        &header_rlp,
        diff,
        Some(block.header.state_root),
    )
    .map_err(|e| match e {
        CommitError::Db(e) => ImportError::Db(e),
        root => ImportError::Root(root),
    })
}
