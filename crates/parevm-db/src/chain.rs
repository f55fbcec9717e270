//! Importing a whole chain, in a pipeline: while one block's state root is
//! computed and committed, the next block executes, and the ones after it
//! have their senders recovered and their headers checked.
//!
//! ```text
//!   prepare (thread)          execute (thread)              commit (caller)
//!   ----------------          ----------------              ---------------
//!   skip blocks held    --->  snapshot of the head    --->  apply the diff,
//!   senders, header           + the diff not yet            state root, compare,
//!   against its parent        committed (one block)         commit; ack
//!                             process, header checks
//! ```
//!
//! Why this is safe: the commit stage is the only writer and commits in
//! block order, each block in one database transaction, exactly as
//! [`import_block`](crate::import::import_block) does; a crash leaves the
//! database at the last whole block. The execute stage reads a
//! [`Snapshot`] (a redb read transaction: the state at some committed head)
//! seen through the diff of the block it handed over last, if the snapshot
//! does not hold it yet. The hand-over between execute and commit is a
//! rendezvous, so when block `n + 1` executes, block `n - 1` is committed
//! and only block `n` can be pending: one diff is enough.
//!
//! Blocks before Byzantium are the exception: their receipts hold the state
//! root after each transaction, computed over the committed state, so such a
//! block waits until the block before it is committed.
//!
//! The first error stops the pipeline: the stages behind it see their
//! channel closed and return, and the error comes out in block order with
//! the database at the block before it.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_consensus::{Block, Header, TxEnvelope};
use alloy_primitives::{keccak256, Address, B256, U256};
use parevm::block::{from_consensus, validate_header, FullBlock};
use parevm::revm::bytecode::Bytecode;
use parevm::revm::primitives::hardfork::SpecId;
use parevm::{AccountBasic, ChainSpec, Config, LayeredStorage, StateDiff, Storage, StorageError};

use crate::db::StateDb;
use crate::import::{commit, execute_checked, ImportError};
use crate::snapshot::Snapshot;
use crate::types::DbError;

/// What importing a chain did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChainStats {
    /// Blocks imported.
    pub imported: u64,
    /// Blocks the database held already (the same blocks).
    pub skipped: u64,
    /// Gas of the imported blocks.
    pub gas: u64,
    /// Time recovering senders and checking headers (prepare stage).
    pub senders: Duration,
    /// Time executing (execute stage).
    pub execute: Duration,
    /// Time applying diffs and computing state roots (commit stage).
    pub root: Duration,
    /// Time writing and committing (commit stage).
    pub write: Duration,
}

/// The block that stopped an import, and why.
#[derive(Debug)]
pub struct ChainStop {
    /// The block.
    pub number: u64,
    /// Why.
    pub error: ImportError,
    /// The block as executed, when the stop is its state root: what it
    /// changed, to find the account that differs.
    pub executed: Option<Box<(FullBlock, StateDiff)>>,
}

/// A block ready to execute.
struct Prepared {
    block: FullBlock,
    hash: B256,
}

/// A block executed and checked, ready to commit.
struct Executed {
    block: FullBlock,
    hash: B256,
    diff: Arc<StateDiff>,
    gas: u64,
}

type Step<T> = Result<T, ChainStop>;

fn stop(number: u64, error: ImportError) -> ChainStop {
    ChainStop {
        number,
        error,
        executed: None,
    }
}

fn invalid(number: u64, reason: impl Into<String>) -> ChainStop {
    stop(
        number,
        ImportError::Invalid {
            number,
            reason: reason.into(),
        },
    )
}

fn db_stop(number: u64, error: DbError) -> ChainStop {
    stop(number, ImportError::Db(error))
}

/// Imports `blocks` (in order, starting anywhere up to one past the head)
/// on top of the database's head: blocks the database holds are checked
/// to be the same and skipped, the rest executed, checked and committed
/// (module docs). `genesis_hash` is the hash block 1 must name as parent;
/// `progress` is called with each block number once it is done.
pub fn import_chain(
    db: &StateDb,
    chain: &ChainSpec,
    config: &Config,
    genesis_hash: B256,
    blocks: Vec<Block<TxEnvelope>>,
    progress: &(dyn Fn(u64) + Sync),
) -> (ChainStats, Option<ChainStop>) {
    let mut stats = ChainStats::default();
    let (to_execute, prepared) = sync_channel::<Step<Prepared>>(2);
    let (to_commit, executed) = sync_channel::<Step<Executed>>(0);
    let (ack, acks) = sync_channel::<u64>(4);
    let senders = std::thread::scope(|scope| {
        // Each stage owns its sender: a stage that returns closes its
        // channel, which ends the stage after it.
        let prepare = scope.spawn(move || {
            let mut stats = ChainStats::default();
            prepare_stage(
                db,
                chain,
                config,
                genesis_hash,
                blocks,
                &to_execute,
                &mut stats,
                progress,
            );
            stats
        });
        let execute = scope.spawn(move || execute_stage(db, config, prepared, &to_commit, acks));
        let stopped = commit_stage(db, executed, &ack, &mut stats, progress);
        // The stages behind a stop see their channel closed and return.
        drop(ack);
        let execute_time = execute.join().unwrap_or_default();
        let prepared = prepare.join().unwrap_or_default();
        stats.execute = execute_time;
        stats.skipped = prepared.skipped;
        (prepared.senders, stopped)
    });
    stats.senders = senders.0;
    (stats, senders.1)
}

/// Skips the blocks the database holds, recovers senders, checks each
/// header against its parent, and hands the blocks on.
#[allow(clippy::too_many_arguments)]
fn prepare_stage(
    db: &StateDb,
    chain: &ChainSpec,
    config: &Config,
    genesis_hash: B256,
    blocks: Vec<Block<TxEnvelope>>,
    out: &SyncSender<Step<Prepared>>,
    stats: &mut ChainStats,
    progress: &(dyn Fn(u64) + Sync),
) {
    let send = |step| out.send(step).is_ok();
    let head = match db.head() {
        Ok(Some(head)) => head,
        Ok(None) => {
            send(Err(invalid(0, "the database has no genesis")));
            return;
        }
        Err(e) => {
            send(Err(db_stop(0, e)));
            return;
        }
    };
    let mut parent: Option<(Header, B256)> = None;
    for block in blocks {
        let started = Instant::now();
        let number = block.header.number;
        let hash = block.header.hash_slow();
        if number <= head.number {
            match db.header_rlp(number) {
                Ok(Some(stored)) if keccak256(&stored) == hash => {
                    stats.skipped += 1;
                    progress(number);
                    continue;
                }
                Ok(_) => {
                    let reason =
                        format!("{hash} differs from the block {number} the database holds");
                    send(Err(stop(number, ImportError::NotNext { number, reason })));
                    return;
                }
                Err(e) => {
                    send(Err(db_stop(number, e)));
                    return;
                }
            }
        }
        if number == 1 && block.header.parent_hash != genesis_hash {
            let reason = format!(
                "the genesis does not match the chain: block 1's parent is {}, the genesis is {genesis_hash}",
                block.header.parent_hash
            );
            send(Err(stop(number, ImportError::NotNext { number, reason })));
            return;
        }
        let (parent_header, parent_hash) = match parent.take() {
            Some(known) => known,
            None => match head_header(db, head.number) {
                Ok(header) => (header, head.hash),
                Err(e) => {
                    send(Err(e));
                    return;
                }
            },
        };
        let parent_spec = chain.spec_at(parent_header.number, parent_header.timestamp);
        let full = match from_consensus(chain, block, config.threads.get()) {
            Ok(full) => full,
            Err(e) => {
                send(Err(invalid(number, e.to_string())));
                return;
            }
        };
        if let Err(e) = validate_header(&full, &parent_header, parent_hash, parent_spec) {
            send(Err(invalid(number, e.to_string())));
            return;
        }
        parent = Some((full.header.clone(), hash));
        stats.senders += started.elapsed();
        if !send(Ok(Prepared { block: full, hash })) {
            return;
        }
    }
}

/// The stored header of block `number`.
fn head_header(db: &StateDb, number: u64) -> Result<Header, ChainStop> {
    let stored = db
        .header_rlp(number)
        .map_err(|e| db_stop(number + 1, e))?
        .ok_or_else(|| invalid(number + 1, format!("the database has no header {number}")))?;
    alloy_rlp::Decodable::decode(&mut stored.as_slice())
        .map_err(|e| invalid(number + 1, format!("the database's header {number}: {e}")))
}

/// Executes each block over the head plus the diff not yet committed,
/// checks it against its header, and hands it to the commit stage.
/// Returns the time spent executing.
fn execute_stage(
    db: &StateDb,
    config: &Config,
    prepared: Receiver<Step<Prepared>>,
    out: &SyncSender<Step<Executed>>,
    acks: Receiver<u64>,
) -> Duration {
    let mut spent = Duration::ZERO;
    // The block handed over last, which the snapshot may not hold yet.
    let mut handed: Option<(u64, B256, Arc<StateDiff>)> = None;
    for step in prepared {
        let Prepared { block, hash } = match step {
            Ok(prepared) => prepared,
            Err(stop) => {
                let _ = out.send(Err(stop));
                break;
            }
        };
        let number = block.header.number;
        if !block.spec.is_enabled_in(SpecId::BYZANTIUM) {
            // Intermediate roots are computed over the committed state:
            // wait for the block before to be committed. Every commit sends
            // an ack or finds stale ones queued, so the head is looked at
            // again after each.
            loop {
                match db.head() {
                    Ok(Some(head)) if head.number + 1 >= number => break,
                    Ok(_) => {}
                    Err(e) => {
                        let _ = out.send(Err(db_stop(number, e)));
                        return spent;
                    }
                }
                if acks.recv().is_err() {
                    return spent;
                }
            }
        }
        let started = Instant::now();
        let outcome = execute_one(db, config, &block, handed.as_ref());
        spent += started.elapsed();
        let executed = match outcome {
            Ok((diff, gas)) => {
                let diff = Arc::new(diff);
                handed = Some((number, hash, Arc::clone(&diff)));
                Ok(Executed {
                    block,
                    hash,
                    diff,
                    gas,
                })
            }
            Err(stop) => Err(stop),
        };
        let failed = executed.is_err();
        if out.send(executed).is_err() || failed {
            break;
        }
    }
    spent
}

fn execute_one(
    db: &StateDb,
    config: &Config,
    block: &FullBlock,
    handed: Option<&(u64, B256, Arc<StateDiff>)>,
) -> Result<(StateDiff, u64), ChainStop> {
    let number = block.header.number;
    let snapshot = db.snapshot().map_err(|e| db_stop(number, e))?;
    let held = snapshot.head().map_or(0, |head| head.number);
    let pending = handed.filter(|(n, _, _)| *n > held);
    let expected = pending.map_or(held, |(n, _, _)| *n);
    if expected + 1 != number {
        return Err(invalid(
            number,
            format!("the database is at block {held}, not at the block before"),
        ));
    }
    let view = Ahead {
        state: LayeredStorage::new(
            snapshot,
            pending
                .map(|(_, _, diff)| (**diff).clone())
                .unwrap_or_default(),
        ),
        hash: pending.map(|(n, hash, _)| (*n, *hash)),
    };
    let processed = execute_checked(db, &view, block, config).map_err(|e| stop(number, e))?;
    Ok((processed.state, processed.gas_used))
}

/// Commits each executed block in order; returns the stop, if any.
fn commit_stage(
    db: &StateDb,
    executed: Receiver<Step<Executed>>,
    ack: &SyncSender<u64>,
    stats: &mut ChainStats,
    progress: &(dyn Fn(u64) + Sync),
) -> Option<ChainStop> {
    for step in executed {
        let Executed {
            block,
            hash,
            diff,
            gas,
        } = match step {
            Ok(executed) => executed,
            Err(stop) => return Some(stop),
        };
        let number = block.header.number;
        match commit(db, &block, hash, &diff) {
            Ok(committed) => {
                stats.imported += 1;
                stats.gas += gas;
                stats.root += committed.root_time;
                stats.write += committed.write_time;
                progress(number);
                let _ = ack.try_send(number);
            }
            Err(ImportError::Root(root)) => {
                let diff = Arc::try_unwrap(diff).unwrap_or_else(|shared| (*shared).clone());
                return Some(ChainStop {
                    number,
                    error: ImportError::Root(root),
                    executed: Some(Box::new((block, diff))),
                });
            }
            Err(other) => return Some(stop(number, other)),
        }
    }
    None
}

/// The committed state plus the block handed over but maybe not yet
/// committed: its diff, and its hash for `BLOCKHASH`.
struct Ahead {
    state: LayeredStorage<Snapshot>,
    hash: Option<(u64, B256)>,
}

impl Storage for Ahead {
    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        self.state.account(address)
    }

    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError> {
        self.state.code_by_hash(code_hash)
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        self.state.storage(address, slot)
    }

    fn block_hash(&self, number: u64) -> Result<B256, StorageError> {
        match self.hash {
            Some((pending, hash)) if pending == number => Ok(hash),
            _ => self.state.block_hash(number),
        }
    }

    fn has_storage(&self, address: &Address) -> Result<bool, StorageError> {
        self.state.has_storage(address)
    }
}
