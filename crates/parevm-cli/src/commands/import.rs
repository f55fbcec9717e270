//! `parevm import`: what `geth init` and `geth import` do. The genesis
//! state of a geth-style genesis file, then RLP-encoded blocks in order,
//! each executed in parallel, checked against its header (gas, receipts
//! root, bloom, requests, withdrawals, state root) and committed with its
//! state diff in one database transaction. A database that holds the
//! chain's first blocks already resumes after them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alloy_consensus::{Block, Header, TxEnvelope};
use alloy_genesis::Genesis;
use alloy_primitives::B256;
use alloy_rlp::Decodable as _;
use anyhow::Context as _;
use parevm::block::genesis::{genesis_alloc, genesis_header};
use parevm::block::{from_consensus, process_block, validate_header, FullBlock};
use parevm::{ChainSpec, Config, Mode};
use parevm_db::import::{import_block, init_genesis, ImportError};
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
    /// Worker threads.
    #[arg(long, default_value_t = default_threads())]
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

/// What a run of `import` did.
#[derive(Default)]
struct Totals {
    imported: u64,
    skipped: u64,
    gas: u64,
    senders: Duration,
    execute: Duration,
    root: Duration,
    write: Duration,
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
    let bar = progress_bar(blocks.len() as u64, !args.json);
    let started = Instant::now();
    let mut totals = Totals::default();
    let context = Context {
        db: &db,
        chain: &chain,
        config: &config,
        genesis_hash,
        node: node.as_ref(),
    };
    for (file, block) in blocks {
        bar.inc(1);
        match import_one(&context, block, &mut totals) {
            Ok(()) => {}
            Err(Failure::Check(message)) => {
                bar.finish_and_clear();
                eprintln!("error: {}: {message}", file.display());
                report(&args, &db, &totals, started.elapsed())?;
                return Ok(ExitCode::from(1));
            }
            Err(Failure::Input(error)) => {
                bar.finish_and_clear();
                return Err(error.context(file.display().to_string()));
            }
        }
    }
    bar.finish_and_clear();
    report(&args, &db, &totals, started.elapsed())?;
    Ok(ExitCode::SUCCESS)
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

/// Why a block stopped the import.
enum Failure {
    /// The block broke a rule: a failed check (exit 1).
    Check(String),
    /// The input or the database is unusable (exit 2).
    Input(anyhow::Error),
}

/// What every block's import needs.
struct Context<'a> {
    db: &'a StateDb,
    chain: &'a ChainSpec,
    config: &'a Config,
    genesis_hash: B256,
    node: Option<&'a Node>,
}

fn import_one(
    context: &Context<'_>,
    block: Block<TxEnvelope>,
    totals: &mut Totals,
) -> Result<(), Failure> {
    let Context {
        db,
        chain,
        config,
        genesis_hash,
        node,
    } = *context;
    let input = |e: anyhow::Error| Failure::Input(e);
    let number = block.header.number;
    let hash = block.header.hash_slow();
    let head = db
        .head()
        .map_err(|e| input(e.into()))?
        .ok_or_else(|| Failure::Input(anyhow::anyhow!("the database has no genesis")))?;
    if number <= head.number {
        // Imported before: resume after it, if it is this chain's block.
        let stored = db
            .header_rlp(number)
            .map_err(|e| input(e.into()))?
            .map(alloy_primitives::keccak256);
        if stored != Some(hash) {
            return Err(Failure::Check(format!(
                "block {number} ({hash}) differs from the block {number} the database holds"
            )));
        }
        totals.skipped += 1;
        return Ok(());
    }
    if number == 1 && block.header.parent_hash != genesis_hash {
        return Err(Failure::Check(format!(
            "the genesis does not match the chain: block 1's parent is {}, the genesis is {genesis_hash}",
            block.header.parent_hash
        )));
    }
    let parent = db
        .header_rlp(head.number)
        .map_err(|e| input(e.into()))?
        .ok_or_else(|| Failure::Input(anyhow::anyhow!("no header for the head")))?;
    let parent = Header::decode(&mut parent.as_slice()).map_err(|e| {
        input(anyhow::anyhow!(
            "the database's header {}: {e}",
            head.number
        ))
    })?;
    let parent_spec = chain.spec_at(parent.number, parent.timestamp);
    let started = Instant::now();
    let full = from_consensus(chain, block, config.threads.get())
        .map_err(|e| Failure::Check(format!("block {number}: {e}")))?;
    validate_header(&full, &parent, head.hash, parent_spec)
        .map_err(|e| Failure::Check(format!("block {number}: {e}")))?;
    totals.senders += started.elapsed();
    match import_block(db, &full, hash, config) {
        Ok(stats) => {
            totals.imported += 1;
            totals.gas += stats.gas;
            totals.execute += stats.execute;
            totals.root += stats.root;
            totals.write += stats.write;
            Ok(())
        }
        Err(ImportError::Db(e)) => Err(input(e.into())),
        Err(ImportError::Root(error)) => {
            Err(Failure::Check(explain_root(db, &full, config, node, error)))
        }
        Err(other) => Err(Failure::Check(other.to_string())),
    }
}

/// A state root that differs, with the accounts behind it: with a node,
/// the first account whose state after the block differs from the
/// node's; without one, the accounts the block changed.
fn explain_root(
    db: &StateDb,
    block: &FullBlock,
    config: &Config,
    node: Option<&Node>,
    error: impl std::fmt::Display,
) -> String {
    const SHOWN: usize = 8;
    let diff = match db
        .snapshot()
        .map(|snapshot| process_block(&snapshot, block, config))
    {
        Ok(Ok(processed)) => processed.state,
        Ok(Err(e)) => return format!("{error} (executing it again failed: {e})"),
        Err(e) => return format!("{error} (the database: {e})"),
    };
    match node {
        Some(node) => match first_difference(node, block.header.number, &diff) {
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

fn report(args: &Args, db: &StateDb, totals: &Totals, wall: Duration) -> anyhow::Result<()> {
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
