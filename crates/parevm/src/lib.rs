//! # parevm — a parallel EVM block executor
//!
//! parevm runs the transactions of an Ethereum block on many threads at once
//! and produces exactly what sequential execution produces: the same
//! receipts, logs, gas and state, on every run and at every thread count.
//! The EVM itself is [revm](https://github.com/bluealloy/revm).
//!
//! ```no_run
//! use parevm::{execute_block, BlockInput, Config, InMemoryStorage};
//! # fn input() -> BlockInput { unimplemented!() }
//! let storage = InMemoryStorage::new();
//! let result = execute_block(&storage, &input(), &Config::default())?;
//! println!("gas used: {}", result.gas_used());
//! # Ok::<(), parevm::ExecError>(())
//! ```
//!
//! [`execute_block`] is three steps: choose a path for the block, run it,
//! finish the block. Every path computes a *prefix* of the block whose
//! outputs are final (all of it, or up to the point where it stopped), and
//! one function finishes every block from its prefix.
//!
//! ## The paths
//! - **Block-STM** (`block_stm`): optimistic execution against a
//!   multi-version memory, validation of every read set, re-execution on
//!   conflict, results committed in block order. General: any block, any
//!   conflicts; it pays for that on every transaction (multi-version writes,
//!   read sets, validation). It gives up to the sequential loop when
//!   validation aborts too much.
//! - **Optimistic chunks** (`chunks`): one contiguous chunk per thread, each
//!   run like the sequential loop on the pre-block state while logging every
//!   read that reached it; afterwards each chunk's reads are checked against
//!   what the chunks before it changed, and the block is exact up to the
//!   first stale read. Nearly free per transaction when blocks are
//!   independent. Chunks may *track storage deltas*: an inspector follows
//!   the values derived from slots read before the chunk, so that transfers
//!   of one token to one holder add up instead of conflicting.
//! - **The sequential loop** (`sequential`): the reference every test
//!   compares with, the path for small and serial blocks, and the finisher
//!   of the other two, which hand over to it where they stop, together with
//!   their executions after that point: it keeps those whose every database
//!   answer it would give too.
//!
//! `choose` decides which path runs a block; its module docs state the
//! rule as a numbered list. The choice never affects the result.
//!
//! ## EVM specifics
//! - **Locations** ([`types::Location`]): an account (balance, nonce, code),
//!   a storage slot, or a "storage wiped" marker per account.
//! - **The beneficiary** would serialise every block, since every
//!   transaction pays it. Its fee credit is a commutative *lazy credit*,
//!   resolved only by transactions that really read its balance, and at the
//!   end of the block (`evm::task`, `finish`).
//! - **Same-sender chains**: nonces force an order; the Block-STM scheduler
//!   parks a transaction on its sender's previous one before executing it.
//! - **Errors** are results: an invalid transaction or a storage error is
//!   the *output* of an execution and is validated like any other; only a
//!   final one becomes the block's [`ExecError`], for the lowest index,
//!   exactly as in a sequential loop. A panic in a worker stops all workers
//!   and becomes [`ExecError::Internal`].
//!
//! ## Modules
//! From the entry down; a module uses only modules of its own layer or
//! below (checked by `tests/architecture.rs`):
//! - paths: `choose`, `block_stm`, `chunks`, `sequential`, `finish`, and
//!   [`block`] (whole-block rules around [`execute_block`]);
//! - shared parts: `evm` (every use of revm's machinery), `pool` (the
//!   worker threads), `stm` (Block-STM's EVM-free core: scheduler,
//!   mv-memory, worker loop), [`output`], [`storage`], [`trie`];
//! - vocabulary: [`input`], [`types`], [`error`], [`chain`].

pub mod block;
pub(crate) mod block_stm;
pub mod chain;
pub(crate) mod choose;
pub(crate) mod chunks;
pub mod error;
pub(crate) mod evm;
pub(crate) mod finish;
pub mod input;
pub mod output;
pub(crate) mod pool;
pub(crate) mod sequential;
pub(crate) mod stm;
pub mod storage;
pub(crate) mod sync;
#[cfg(test)]
mod test_txs;
pub mod trie;
pub mod types;

pub use chain::ChainSpec;
pub use error::{ExecError, Result, StorageError};
pub use evm::database::DatabaseStorage;
pub use input::{max_blobs_per_tx, BlockInput, Config, Mode};
pub use output::{
    AccountChange, AccountState, BlockResult, ExecStats, ExecutedBy, StateDiff, TxChanges,
    TxOutcome, TxReceipt, TxResult,
};
pub use revm;
pub use storage::{AccountBasic, InMemoryStorage, LayeredStorage, Storage};
pub use types::{Incarnation, Location, TxIdx, Version};

use choose::Path;
use finish::Prefix;

/// Executes the transactions of a block and returns their receipts and
/// state changes.
///
/// # Errors
/// [`ExecError::InvalidTransaction`] or [`ExecError::Storage`] for the lowest
/// transaction that fails, [`ExecError::InvalidHeader`] for a bad block
/// environment, [`ExecError::Internal`] if the engine itself fails (a bug).
/// The error is the same on every path.
pub fn execute_block<S: Storage>(
    storage: &S,
    input: &BlockInput,
    config: &Config,
) -> Result<BlockResult> {
    let threads = config.threads.get();
    let prefix = match choose::choose(storage, input, config) {
        Path::Sequential => Prefix::empty(ExecutedBy::Sequential),
        Path::BlockStm { give_up } => block_stm::run(storage, input, threads, give_up)?,
        Path::Chunked {
            track,
            predict_accounts,
        } => chunks::run(storage, input, threads, track, predict_accounts)?,
    };
    finish::finish(storage, input, prefix)
}

/// A transaction [`execute_block_skipping_invalid`] left out of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its index in the block as given.
    pub index: TxIdx,
    /// Why it is invalid (revm's validation failure).
    pub reason: String,
}

/// Executes a block the way a block builder needs: a transaction that is
/// invalid in the state the ones before it leave (a nonce out of turn, a
/// sender who cannot pay, a gas limit above the block's, ...) is left out
/// instead of failing the block. Returns the result of the transactions
/// kept, in order, and the ones left out with why.
///
/// Each round executes the block, and the lowest invalid transaction (the
/// same on every path and at every thread count, see [`execute_block`]) is
/// removed before the next: the outcome is the one a sequential builder
/// reaches, whatever the path and the threads. A block with `k` invalid
/// transactions executes `k + 1` times.
///
/// # Errors
/// As [`execute_block`], except [`ExecError::InvalidTransaction`].
pub fn execute_block_skipping_invalid<S: Storage>(
    storage: &S,
    input: &BlockInput,
    config: &Config,
) -> Result<(BlockResult, Vec<Skipped>)> {
    let mut kept: Vec<TxIdx> = (0..input.txs.len()).collect();
    let mut block = input.clone();
    let mut skipped = Vec::new();
    loop {
        match execute_block(storage, &block, config) {
            Ok(result) => return Ok((result, skipped)),
            Err(ExecError::InvalidTransaction { index, reason }) if index < kept.len() => {
                skipped.push(Skipped {
                    index: kept.remove(index),
                    reason,
                });
                block.txs.remove(index);
            }
            Err(error) => return Err(error),
        }
    }
}

impl block::ExecuteTxs for Config {
    fn execute_txs<S: Storage>(&self, storage: &S, input: &BlockInput) -> Result<BlockResult> {
        execute_block(storage, input, self)
    }
}
