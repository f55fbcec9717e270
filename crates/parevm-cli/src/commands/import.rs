//! `parevm import`: what `geth init` and `geth import` do. The genesis
//! state of a geth-style genesis file, then RLP-encoded blocks in order,
//! each executed in parallel, checked against its header (gas, receipts
//! root, bloom, requests, withdrawals, state root) and committed with its
//! state diff in one database transaction, in `parevm_db::chain`'s
//! pipeline (the next block executes while one block's state root is
//! computed and committed). A database that holds the chain's first blocks
//! already resumes after them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alloy_consensus::{Block, Header, TxEnvelope};
use alloy_genesis::Genesis;
use alloy_primitives::B256;
use alloy_rlp::Decodable as _;
use anyhow::Context as _;
use parevm::block::genesis::{genesis_alloc, genesis_header};
use parevm::block::FullBlock;
use parevm::{ChainSpec, Config, Mode, StateDiff};
use parevm_db::chain::{import_chain, ChainStats};
use parevm_db::import::{init_genesis, ImportError};
use parevm_db::StateDb;
use parevm_rpc::post_state::first_difference;
use parevm_rpc::{Node, NodeOptions};
use serde_json::json;

use crate::report::progress_bar;
use crate::util::default_threads;

/// Arguments of `parevm import`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The chain's genesis file (geth's format: `config`, `alloc` and the
    /// genesis header fields).
    #[arg(long)]
    genesis: PathBuf,
    /// The state database (created if missing).
    #[arg(long, default_value = "parevm-state.redb")]
    db: PathBuf,
    /// Files of RLP-encoded blocks, one after another (`geth export`'s
    /// format), imported in order.
    files: Vec<PathBuf>,
    /// Worker threads executing each block. The pipeline keeps two more
    /// threads busy (senders and headers; state root and commit), so the
    /// default leaves them two cores: the available parallelism minus two,
    /// at least one.
    #[arg(long, default_value_t = default_threads().saturating_sub(2).max(1))]
    threads: usize,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
    /// The genesis block's hash as the chain knows it, when it is not the
    /// hash of the standard genesis header: anvil writes the empty-trie
    /// root into its genesis header whatever the alloc, so its block 1
    /// names a parent no other node computes. The genesis state (and its
    /// real root) is still built from the file.
    #[arg(long, value_name = "HASH")]
    genesis_hash: Option<B256>,
    /// A node that holds the chain (`http://host:port`): when a block's
    /// state root differs, the node's state after the block is compared
    /// with parevm's to name the first account that differs. Without it
    /// the error lists the accounts the block changed.
    #[arg(long, value_name = "URL")]
    rpc: Option<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.genesis)
        .with_context(|| format!("{}: cannot read the genesis file", args.genesis.display()))?;
    let chain = ChainSpec::from_genesis_json(&text)
        .with_context(|| format!("{}", args.genesis.display()))?;
    let genesis: Genesis = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a genesis file", args.genesis.display()))?;
    let db = StateDb::open(&args.db)?;
    let genesis_hash = write_genesis(&db, &genesis, &chain, &args.genesis, args.genesis_hash)?;
    let blocks = read_blocks(&args.files)?;
    let config = Config {
        threads: std::num::NonZeroUsize::new(args.threads.max(1))
            .unwrap_or(std::num::NonZeroUsize::MIN),
        mode: Mode::Auto,
    };
    let node = args
        .rpc
        .as_deref()
        .map(|url| Node::connect(url, NodeOptions::default()))
        .transpose()?;
    let files: Vec<(u64, PathBuf)> = blocks
        .iter()
        .map(|(file, block)| (block.header.number, file.clone()))
        .collect();
    let blocks: Vec<Block<TxEnvelope>> = blocks.into_iter().map(|(_, block)| block).collect();
    let bar = progress_bar(blocks.len() as u64, !args.json);
    let started = Instant::now();
    let (stats, stopped) =
        import_chain(&db, &chain, &config, genesis_hash, blocks, &|_| bar.inc(1));
    bar.finish_and_clear();
    let Some(stop) = stopped else {
        report(&args, &db, &stats, started.elapsed())?;
        return Ok(ExitCode::SUCCESS);
    };
    let file = files
        .iter()
        .find(|(number, _)| *number == stop.number)
        .or(files.first())
        .map_or_else(String::new, |(_, file)| format!("{}: ", file.display()));
    let message = match stop.error {
        ImportError::Db(error) => {
            return Err(anyhow::Error::from(error).context(format!("{file}block {}", stop.number)))
        }
        ImportError::Root(error) => explain_root(stop.executed.as_deref(), node.as_ref(), error),
        other => other.to_string(),
    };
    eprintln!("error: {file}{message}");
    report(&args, &db, &stats, started.elapsed())?;
    Ok(ExitCode::from(1))
}

/// Writes the genesis into a new database, or checks that a database holds
/// this chain's genesis. Returns the genesis hash: `known_hash` when given,
/// else the hash of the genesis header.
fn write_genesis(
    db: &StateDb,
    genesis: &Genesis,
    chain: &ChainSpec,
    path: &Path,
    known_hash: Option<B256>,
) -> anyhow::Result<B256> {
    let alloc = genesis_alloc(genesis);
    let header = match db.header_rlp(0)? {
        Some(stored) => Header::decode(&mut stored.as_slice())
            .map_err(|e| anyhow::anyhow!("the database's genesis header: {e}"))?,
        None => {
            let root = db.root_with(&alloc)?;
            let header = genesis_header(genesis, chain, root);
            let hash = known_hash.unwrap_or_else(|| header.hash_slow());
            init_genesis(db, &alloc, hash, &alloy_rlp::encode(&header), Some(root))?;
            return Ok(hash);
        }
    };
    let expected = genesis_header(genesis, chain, header.state_root);
    if expected.hash_slow() != header.hash_slow() {
        anyhow::bail!(
            "{}: the database holds another chain (its genesis is {}, this file's {})",
            path.display(),
            header.hash_slow(),
            expected.hash_slow()
        );
    }
    Ok(known_hash.unwrap_or_else(|| header.hash_slow()))
}

/// Every block of `files`, in order, with the file it came from.
fn read_blocks(files: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Block<TxEnvelope>)>> {
    let mut blocks = Vec::new();
    for file in files {
        let bytes =
            std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let offset = bytes.len() - rest.len();
            let block = Block::<TxEnvelope>::decode(&mut rest).map_err(|e| {
                anyhow::anyhow!(
                    "{}: malformed RLP at byte {offset} (block {} of the file): {e}",
                    file.display(),
                    blocks.len()
                )
            })?;
            blocks.push((file.clone(), block));
        }
    }
    Ok(blocks)
}

/// A state root that differs, with the accounts behind it: with a node,
/// the first account whose state after the block differs from the
/// node's; without one, the accounts the block changed.
fn explain_root(
    executed: Option<&(FullBlock, StateDiff)>,
    node: Option<&Node>,
    error: impl std::fmt::Display,
) -> String {
    const SHOWN: usize = 8;
    let Some((block, diff)) = executed else {
        return error.to_string();
    };
    match node {
        Some(node) => match first_difference(node, block.header.number, diff) {
            Ok(Some(difference)) => format!("{error}; first difference from {}: {difference}", node.url()),
            Ok(None) => format!(
                "{error}; every account the block changed agrees with {}: the roots differ elsewhere",
                node.url()
            ),
            Err(e) => format!("{error} (asking the node: {e})"),
        },
        None => {
            let accounts: Vec<String> = diff.keys().take(SHOWN).map(ToString::to_string).collect();
            let more = diff.len().saturating_sub(SHOWN);
            format!(
                "{error}; the block changed {} account(s): {}{} (pass --rpc URL of a node holding the chain to name the one that differs)",
                diff.len(),
                accounts.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            )
        }
    }
}

fn report(args: &Args, db: &StateDb, totals: &ChainStats, wall: Duration) -> anyhow::Result<()> {
    let head = db.head()?;
    let seconds = |d: Duration| d.as_secs_f64();
    let mgas_per_s = if wall.is_zero() {
        0.0
    } else {
        totals.gas as f64 / 1e6 / seconds(wall)
    };
    let summary = json!({
        "imported": totals.imported,
        "skipped": totals.skipped,
        "gas": totals.gas,
        "seconds": seconds(wall),
        "mgas_per_s": mgas_per_s,
        "senders_s": seconds(totals.senders),
        "execute_s": seconds(totals.execute),
        "state_root_s": seconds(totals.root),
        "commit_s": seconds(totals.write),
        "head": head.map(|h| json!({"number": h.number, "hash": h.hash, "state_root": h.state_root})),
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "imported {} blocks ({} already there), {:.1} Mgas in {:.2} s: {:.1} Mgas/s; senders and header {:.2} s, execution {:.2} s, state root {:.2} s, commit {:.2} s",
            totals.imported,
            totals.skipped,
            totals.gas as f64 / 1e6,
            seconds(wall),
            mgas_per_s,
            seconds(totals.senders),
            seconds(totals.execute),
            seconds(totals.root),
            seconds(totals.write)
        );
        if let Some(head) = head {
            println!(
                "head: block {} {} state root {}",
                head.number, head.hash, head.state_root
            );
        }
    }
    Ok(())
}
