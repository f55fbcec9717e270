//! `fetch`: blocks of a node, with their exact pre-state, written as the
//! block folders `parevm run` reads.
//!
//! For each block number `N`, the folder `OUT/N/` gets:
//!
//! - `prestate.json`: the merged `prestateTracer` answer (see
//!   [`prestate`](crate::prestate)), completed with whatever executing the
//!   block read beyond it (the system contracts' slots, say);
//! - `block_hashes.json`: the hashes `BLOCKHASH` asked for while executing;
//! - `chain.json`: the chain (see [`chain_file`](crate::chain_file));
//! - `block.json`: the block as the node returned it, written last.
//!
//! So executing the block once, sequentially, over the node's state is part
//! of fetching: it finds what the tracer does not show, and it checks the
//! fetched block against its header before anyone relies on it. Every file
//! is written to a temporary name and renamed, and a folder with a
//! `block.json` is finished: fetching again skips it, so an interrupted
//! fetch resumes where it stopped.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use parevm::block::process_block;
use parevm::Config;

use crate::chain_file::{ChainFile, CHAIN_FILE};
use crate::error::RpcError;
use crate::load::{load_block, Prefetch};
use crate::node::Node;
use crate::prestate::Prestate;

/// What fetching one block did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The folder was already complete; nothing was fetched.
    Kept {
        /// The block.
        number: u64,
    },
    /// The block was fetched and written.
    Written(FetchReport),
}

impl Fetched {
    /// The block number.
    pub fn number(&self) -> u64 {
        match self {
            Self::Kept { number } => *number,
            Self::Written(report) => report.number,
        }
    }
}

/// A fetched block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchReport {
    /// The block.
    pub number: u64,
    /// Its transactions.
    pub txs: usize,
    /// Gas used, as the header says.
    pub gas_used: u64,
    /// Accounts in the written pre-state.
    pub accounts: usize,
    /// Reads the tracer did not foresee, fetched while executing.
    pub extra_reads: u64,
    /// The first header check the fetched block failed, if any.
    pub mismatch: Option<String>,
}

/// Where the block folders go, and for which chain.
#[derive(Clone, Debug)]
pub struct FetchPlan {
    /// The folder that gets one subfolder per block.
    pub out: PathBuf,
    /// The chain the node serves.
    pub chain: ChainFile,
    /// Blocks fetched at once.
    pub concurrency: usize,
}

/// Fetches block `number` into `plan.out/number/`, unless that folder is
/// already complete.
///
/// # Errors
/// The node's errors ([`RpcError::Unreachable`] is resumable), and
/// [`RpcError::Io`] naming a file that could not be written.
pub fn fetch_block(node: &Node, number: u64, plan: &FetchPlan) -> Result<Fetched, RpcError> {
    let dir = plan.out.join(number.to_string());
    if dir.join("block.json").is_file() {
        return Ok(Fetched::Kept { number });
    }
    let spec = plan.chain.spec().map_err(|e| RpcError::Block {
        number,
        message: format!("chain {}: {e}", plan.chain.chain_id),
    })?;
    let loaded = load_block(node, number, &spec, Prefetch::Tracer)?;
    let block = &loaded.read.block;
    let mismatch = match process_block(&loaded.storage, block, &Config::sequential()) {
        Ok(processed) => processed
            .header_checks(block)
            .into_iter()
            .find_map(|check| check.mismatch),
        Err(error) => Some(format!("execute: {error}")),
    };
    let misses = loaded.storage.misses();
    let mut prestate = loaded.prestate.unwrap_or_default();
    add_reads(&mut prestate, misses.prestate);
    std::fs::create_dir_all(&dir).map_err(|e| RpcError::io(&dir, e))?;
    write_json(&dir.join("prestate.json"), &prestate)?;
    if !misses.block_hashes.is_empty() {
        let hashes: std::collections::BTreeMap<String, _> = misses
            .block_hashes
            .iter()
            .map(|(n, hash)| (n.to_string(), *hash))
            .collect();
        write_json(&dir.join("block_hashes.json"), &hashes)?;
    }
    write_json(&dir.join(CHAIN_FILE), &plan.chain)?;
    write_json(&dir.join("block.json"), &loaded.json)?;
    Ok(Fetched::Written(FetchReport {
        number,
        txs: block.txs.len(),
        gas_used: block.header.gas_used,
        accounts: prestate.len(),
        extra_reads: misses.requests,
        mismatch,
    }))
}

/// Adds reads made on demand (exact values before the block) to the
/// tracer's pre-state.
fn add_reads(prestate: &mut Prestate, reads: Prestate) {
    for (address, read) in reads {
        let account = prestate.entry(address).or_default();
        account.balance = account.balance.or(read.balance);
        account.nonce = account.nonce.or(read.nonce);
        account.code = account.code.take().or(read.code);
        for (slot, value) in read.storage {
            account.storage.entry(slot).or_insert(value);
        }
    }
}

/// The outcome of a range: the blocks done, and the error that stopped it.
#[derive(Debug)]
pub struct RangeOutcome {
    /// Blocks fetched or kept, in block order.
    pub done: Vec<Fetched>,
    /// The first error (by block number), after which no new block started.
    pub error: Option<(u64, RpcError)>,
}

/// Fetches `numbers` with up to `plan.concurrency` blocks in flight,
/// calling `progress` after each block. The first error stops new blocks
/// from starting; the blocks finished stay written.
pub fn fetch_range(
    node: &Node,
    numbers: RangeInclusive<u64>,
    plan: &FetchPlan,
    progress: &(dyn Fn(&Result<Fetched, RpcError>) + Sync),
) -> RangeOutcome {
    let next = AtomicU64::new(*numbers.start());
    let last = *numbers.end();
    let stop = AtomicBool::new(false);
    let done = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..plan.concurrency.max(1) {
            scope.spawn(|| loop {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let number = next.fetch_add(1, Ordering::AcqRel);
                if number > last {
                    break;
                }
                let outcome = fetch_block(node, number, plan);
                progress(&outcome);
                match outcome {
                    Ok(fetched) => done.lock().unwrap_or_else(|e| e.into_inner()).push(fetched),
                    Err(error) => {
                        stop.store(true, Ordering::Release);
                        errors
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((number, error));
                    }
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(Fetched::number);
    let mut errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    errors.sort_by_key(|(number, _)| *number);
    RangeOutcome {
        done,
        error: errors.into_iter().next(),
    }
}

/// Writes `value` as JSON to a temporary file next to `path`, then renames
/// it into place, so `path` is either absent or whole.
///
/// # Errors
/// [`RpcError::Io`] naming the file.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), RpcError> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| RpcError::io(path, e))?;
    std::fs::write(&tmp, bytes).map_err(|e| RpcError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| RpcError::io(path, e))
}
