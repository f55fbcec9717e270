//! parevm against a real node: foundry's anvil, started here on a free
//! port from a genesis file of ours, fed with signed DeFi traffic
//! (`parevm_testkit::traffic`): the repository's contracts deployed, then
//! conflict-heavy blocks (a hot token recipient, a hot pool with reverts,
//! sender chains, transfers to and from the beneficiary) and mixed ones.
//!
//! - `fetch`, `run` on the fetched folders and `run --rpc` on the node
//!   agree with anvil's headers and receipts, and with anvil's state after
//!   each block.
//! - A chain of 1,000 blocks exported as RLP (`parevm export`) imports into
//!   the state database with every state root equal to anvil's.
//!
//! anvil comes from `tools/anvil` (pinned; `.ci/run` installs it). Without
//! it these tests say so loudly, and fail under `CI=true`.

mod common;

use std::path::{Path, PathBuf};

use alloy_primitives::{keccak256, Address, Bytes, B256, U256, U64};
use common::parevm;
use parevm_rpc::{ChainFile, Node, NodeOptions};
use parevm_testkit::anvil::{anvil_binary, Anvil};
use parevm_testkit::fixtures::mainnet::read_mainnet_fixture;
use parevm_testkit::traffic::{Shape, Traffic, FIRST_BASE_FEE, GAS_LIMIT, GENESIS_TIME};
use serde_json::Value;

/// The empty trie's root.
const EMPTY_ROOT: B256 =
    alloy_primitives::b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parevm-anvil-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Whether anvil is there; without it the test says so, and fails in CI.
fn anvil_present() -> bool {
    if anvil_binary().is_some() {
        return true;
    }
    let message = "anvil not found: run `npm ci --prefix tools/anvil` (or set PAREVM_ANVIL)";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("\n!!! SKIPPED: {message}\n");
    false
}

/// anvil on our genesis: Prague from block 0, no dev accounts or create2
/// deployer of its own (they would be state our genesis does not hold),
/// its first block's base fee the EIP-1559 successor of the genesis's
/// (see `traffic::GENESIS_BASE_FEE`), mining only when told, in arrival
/// order.
fn start(traffic: &Traffic, dir: &Path) -> (Anvil, Node) {
    let genesis = dir.join("genesis.json");
    std::fs::write(&genesis, traffic.genesis_json()).expect("write genesis");
    let gas_limit = GAS_LIMIT.to_string();
    let base_fee = FIRST_BASE_FEE.to_string();
    let anvil = Anvil::start(
        &[
            "--init",
            genesis.to_str().expect("utf-8"),
            "--chain-id",
            "1337",
            "--hardfork",
            "prague",
            "--gas-limit",
            &gas_limit,
            "--base-fee",
            &base_fee,
            "--no-mining",
            "--order",
            "fifo",
            "--accounts",
            "0",
            "--disable-default-create2-deployer",
        ],
        dir,
    )
    .expect("anvil starts");
    let node = Node::connect(anvil.url(), NodeOptions::default()).expect("a node URL");
    (anvil, node)
}

/// Sends `txs` and mines them into block `number`, which must hold them all.
fn mine(node: &Node, anvil: &Anvil, number: u64, txs: &[Bytes]) {
    for tx in txs {
        let _: B256 = node
            .request("eth_sendRawTransaction", (tx.clone(),))
            .unwrap_or_else(|e| panic!("block {number}: {e}\n{}", anvil.log()));
    }
    let _: Value = node
        .request("evm_setNextBlockTimestamp", (GENESIS_TIME + 12 * number,))
        .expect("set the timestamp");
    let _: Value = node.request("evm_mine", ()).expect("mine");
    let block = node.block_json(number).expect("the mined block");
    let mined = block["transactions"].as_array().map_or(0, Vec::len);
    assert_eq!(
        mined,
        txs.len(),
        "block {number} holds {mined} of the {} transactions sent",
        txs.len()
    );
}

/// Blocks 1-3: the contracts deployed, funded, approved, with liquidity and
/// deposits. Every transaction must succeed.
fn set_up(node: &Node, anvil: &Anvil, traffic: &mut Traffic) {
    let deploy = traffic.deploy().expect("artifacts");
    mine(node, anvil, 1, &deploy);
    mine(node, anvil, 2, &traffic.setup());
    mine(node, anvil, 3, &traffic.deposits());
    for number in 1..=3 {
        let failed = statuses(node, number).iter().filter(|ok| !**ok).count();
        assert_eq!(failed, 0, "set-up block {number} has failed transactions");
    }
}

/// anvil's receipts of block `number`: success of each transaction.
fn statuses(node: &Node, number: u64) -> Vec<bool> {
    receipts(node, number)
        .iter()
        .map(|r| r["status"].as_str() == Some("0x1"))
        .collect()
}

fn receipts(node: &Node, number: u64) -> Vec<Value> {
    let receipts: Vec<Value> = node
        .request("eth_getBlockReceipts", (format!("{number:#x}"),))
        .expect("receipts");
    receipts
}

fn hex_u64(value: &Value) -> u64 {
    let text = value.as_str().expect("a hex quantity");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex")
}

#[test]
fn anvil_blocks_fetch_run_and_run_rpc_agree_with_the_node() {
    if !anvil_present() {
        return;
    }
    let dir = scratch("blocks");
    let mut traffic = Traffic::new(7, 24);
    let (anvil, node) = start(&traffic, &dir);
    set_up(&node, &anvil, &mut traffic);
    let shapes = [
        (Shape::HotToken, 40),
        (Shape::HotPool, 40),
        (Shape::SenderChains, 32),
        (Shape::Coinbase, 30),
        (Shape::Mixed, 60),
    ];
    for (i, (shape, txs)) in shapes.iter().enumerate() {
        mine(&node, &anvil, 4 + i as u64, &traffic.block(*shape, *txs));
    }
    let probe_block = 4 + shapes.len() as u64;
    mine(&node, &anvil, probe_block, &traffic.blockhash_probe());
    let last = probe_block;
    let hot_pool_reverts = statuses(&node, 5).iter().filter(|ok| !**ok).count();
    assert!(
        hot_pool_reverts >= 10,
        "the hot-pool block must have reverts, has {hot_pool_reverts}"
    );
    let url = anvil.url().to_string();
    let range = format!("1..{last}");

    // fetch: every block written, checked against its header while fetching.
    let out = dir.join("blocks");
    let out_arg = out.to_str().expect("utf-8");
    let (code, stdout, stderr) = parevm(&[
        "fetch", "--rpc", &url, "--block", &range, "--out", out_arg, "--json",
    ]);
    assert_eq!(code, 0, "fetch: {stdout}\n{stderr}");
    eprintln!("parevm fetch --block {range}:\n{stdout}");
    let lines = json_lines(&stdout);
    let summary = lines.last().expect("a summary");
    assert_eq!(summary["written"], last, "{stdout}");
    for line in &lines[..lines.len() - 1] {
        assert_eq!(
            line["ok"], true,
            "fetched block disagrees with its header: {line}"
        );
    }
    // The block that reads BLOCKHASH got the hash it needs.
    let hashes: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(probe_block.to_string()).join("block_hashes.json"))
            .expect("block_hashes.json for the BLOCKHASH block"),
    )
    .expect("JSON");
    let parent = node.block_json(probe_block - 1).expect("parent");
    assert_eq!(
        hashes[(probe_block - 1).to_string()],
        parent["hash"],
        "{hashes}"
    );
    // Fetching again finds every block there: resumable.
    let (code, stdout, _) = parevm(&[
        "fetch", "--rpc", &url, "--block", &range, "--out", out_arg, "--json",
    ]);
    assert_eq!(code, 0);
    let again = json_lines(&stdout);
    assert_eq!(again.last().expect("summary")["kept"], last, "{stdout}");

    // run on the folders: sequential and parallel equal, headers matched.
    let (code, stdout, stderr) = parevm(&["run", out_arg, "--json", "--threads", "4"]);
    assert_eq!(code, 0, "run: {stdout}\n{stderr}");
    eprintln!("parevm run on the fetched folders:\n{stdout}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.last().expect("summary")["ok"], last, "{stdout}");
    for line in &lines[..lines.len() - 1] {
        let checks: Vec<&str> = line["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for check in [
            "gas_used",
            "receipts_root",
            "logs_bloom",
            "parallel_eq_sequential",
        ] {
            assert!(checks.contains(&check), "{check} not checked: {line}");
        }
    }

    // The receipts, transaction by transaction, are anvil's.
    for number in 1..=last {
        let folder = out.join(number.to_string());
        let chain = ChainFile::read(&folder)
            .expect("chain.json parses")
            .expect("fetch writes chain.json")
            .spec()
            .expect("a chain parevm runs");
        let fixture = read_mainnet_fixture(&folder, &chain).expect("the fetched folder reads");
        for threads in [1, 2, 4] {
            let processed = parevm::block::process_block(
                &fixture.storage,
                &fixture.block,
                &parevm::Config::block_stm(threads),
            )
            .expect("the block executes");
            let node_receipts = receipts(&node, number);
            assert_eq!(processed.result.txs.len(), node_receipts.len());
            for (i, (tx, theirs)) in processed.result.txs.iter().zip(&node_receipts).enumerate() {
                let ours = &tx.receipt;
                let ok = theirs["status"].as_str() == Some("0x1");
                assert_eq!(
                    matches!(ours.outcome, parevm::TxOutcome::Success),
                    ok,
                    "block {number} tx {i} at {threads} threads: status"
                );
                assert_eq!(
                    ours.gas_used,
                    hex_u64(&theirs["gasUsed"]),
                    "block {number} tx {i}: gas"
                );
                assert_eq!(
                    ours.cumulative_gas_used,
                    hex_u64(&theirs["cumulativeGasUsed"]),
                    "block {number} tx {i}: cumulative gas"
                );
                let logs = theirs["logs"].as_array().map_or(0, Vec::len);
                assert_eq!(ours.logs.len(), logs, "block {number} tx {i}: logs");
            }
        }
    }

    // run --rpc: executed over the node's state, checked against the header
    // and against the node's state after each block.
    let (code, stdout, stderr) = parevm(&["run", "--rpc", &url, "--block", &range, "--json"]);
    assert_eq!(code, 0, "run --rpc: {stdout}\n{stderr}");
    eprintln!("parevm run --rpc --block {range}:\n{stdout}");
    let lines = json_lines(&stdout);
    assert_eq!(lines.last().expect("summary")["ok"], last, "{stdout}");
    for line in &lines[..lines.len() - 1] {
        let checks = line["checks"].as_array().expect("checks");
        assert!(checks.iter().any(|c| c == "post_state"), "{line}");
    }

    // Bad input: an unknown block, and a node that is not there.
    let beyond = (last + 100).to_string();
    let (code, _, stderr) = parevm(&["fetch", "--rpc", &url, "--block", &beyond, "--out", out_arg]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("has no block {beyond}")),
        "{stderr}"
    );
    drop(anvil);
    let (code, _, stderr) = parevm(&[
        "fetch",
        "--rpc",
        &url,
        "--block",
        "1",
        "--out",
        out_arg,
        "--retries",
        "1",
        "--timeout",
        "5",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("did not answer"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A genesis one wei off for `account` (which block 1 changes): the import
/// stops at block 1 with exit 1, names the account when given the node,
/// lists the block's accounts without it, and leaves the database at the
/// genesis.
fn wrong_genesis_names_the_account(
    dir: &Path,
    chain: &Path,
    genesis_hash: B256,
    url: &str,
    account: Address,
) {
    let mut genesis: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("genesis.json")).expect("genesis"))
            .expect("JSON");
    let key = format!("{account:#x}");
    genesis["alloc"][&key]["balance"] = Value::from("0xd3c21bcecceda1000001");
    let wrong = dir.join("wrong-genesis.json");
    std::fs::write(&wrong, genesis.to_string()).expect("write");
    let hash = format!("{genesis_hash:#x}");
    for (with_node, name) in [(true, "wrong-node.redb"), (false, "wrong.redb")] {
        let db = dir.join(name);
        let mut args = vec![
            "import",
            "--genesis",
            wrong.to_str().expect("utf-8"),
            "--genesis-hash",
            &hash,
            "--db",
            db.to_str().expect("utf-8"),
            chain.to_str().expect("utf-8"),
        ];
        if with_node {
            args.extend(["--rpc", url]);
        }
        let (code, stdout, stderr) = parevm(&args);
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(stderr.contains("block 1: state root"), "{stderr}");
        let named = format!("account {account}");
        if with_node {
            assert!(
                stderr.contains(&named) && stderr.contains("the node has balance"),
                "{stderr}"
            );
        } else {
            assert!(
                stderr.contains(&account.to_string()) && stderr.contains("--rpc"),
                "{stderr}"
            );
        }
        let (code, stdout, _) = parevm(&[
            "state",
            "--db",
            db.to_str().expect("utf-8"),
            "head",
            "--json",
        ]);
        assert_eq!(code, 0);
        let head: Value = serde_json::from_str(stdout.trim()).expect("JSON");
        assert_eq!(head["number"], 0, "the database stays at the block before");
    }
}

/// The root of anvil's state at block 0, from an account proof: the first
/// node of any account proof is the state trie's root node.
fn proved_root(node: &Node, address: Address) -> B256 {
    let proof: Value = node
        .request("eth_getProof", (address, Vec::<B256>::new(), "0x0"))
        .expect("eth_getProof");
    let first = proof["accountProof"][0].as_str().expect("a proof node");
    keccak256(alloy_primitives::hex::decode(first).expect("hex"))
}

#[test]
fn a_thousand_anvil_blocks_import_with_every_state_root_equal() {
    if !anvil_present() {
        return;
    }
    const BLOCKS: u64 = 1_000;
    let dir = scratch("chain");
    let mut traffic = Traffic::new(11, 32);
    let (anvil, node) = start(&traffic, &dir);
    set_up(&node, &anvil, &mut traffic);
    let mut sizes = parevm_testkit::gen::Rng::new(3);
    for number in 4..=BLOCKS {
        let txs = 5 + sizes.below(30) as usize;
        mine(&node, &anvil, number, &traffic.block(Shape::Mixed, txs));
    }

    // anvil's genesis header carries the empty root whatever the alloc; its
    // state at block 0 is our genesis state all the same.
    let genesis = node.block_json(0).expect("block 0");
    let genesis_hash: B256 = serde_json::from_value(genesis["hash"].clone()).expect("hash");
    let genesis_root: B256 = serde_json::from_value(genesis["stateRoot"].clone()).expect("root");
    assert_eq!(
        genesis_root, EMPTY_ROOT,
        "anvil's genesis header changed its habit"
    );
    let ours = {
        let parsed: alloy_genesis::Genesis =
            serde_json::from_str(&traffic.genesis_json()).expect("genesis");
        let alloc = parevm::block::genesis::genesis_alloc(&parsed);
        let db = parevm_db::StateDb::in_memory().expect("db");
        db.root_with(&alloc).expect("root")
    };
    assert_ne!(ours, EMPTY_ROOT);
    assert_eq!(proved_root(&node, traffic.addresses()[0]), ours);

    let chain = dir.join("chain.rlp");
    let range = format!("1..{BLOCKS}");
    let (code, stdout, stderr) = parevm(&[
        "export",
        "--rpc",
        anvil.url(),
        "--block",
        &range,
        "--out",
        chain.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "export: {stdout}\n{stderr}");
    if let Some(keep) = std::env::var_os("PAREVM_ANVIL_CHAIN_OUT") {
        // For measuring the import with a release build.
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).expect("output folder");
        std::fs::copy(&chain, keep.join("chain.rlp")).expect("copy the chain");
        std::fs::copy(dir.join("genesis.json"), keep.join("genesis.json"))
            .expect("copy the genesis");
        std::fs::write(keep.join("genesis-hash"), format!("{genesis_hash:#x}")).expect("write");
    }
    wrong_genesis_names_the_account(
        &dir,
        &chain,
        genesis_hash,
        anvil.url(),
        traffic.addresses()[0],
    );
    let head: Value = node.block_json(BLOCKS).expect("head");
    let probe = traffic.addresses()[5];
    let balance: U256 = node
        .request("eth_getBalance", (probe, "latest"))
        .expect("balance");
    let nonce: U64 = node
        .request("eth_getTransactionCount", (probe, "latest"))
        .expect("nonce");
    drop(anvil);

    // Import checks every block's state root against anvil's header and
    // stops at the first that differs: a clean exit is every root equal.
    let db = dir.join("state.redb");
    let genesis_file = dir.join("genesis.json");
    let hash = format!("{genesis_hash:#x}");
    let (code, stdout, stderr) = parevm(&[
        "import",
        "--genesis",
        genesis_file.to_str().expect("utf-8"),
        "--genesis-hash",
        &hash,
        "--db",
        db.to_str().expect("utf-8"),
        chain.to_str().expect("utf-8"),
        "--json",
        "--threads",
        "2",
    ]);
    assert_eq!(code, 0, "import: {stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(stdout.trim()).expect("a JSON summary");
    eprintln!("import of the anvil chain: {summary}");
    assert_eq!(summary["imported"], BLOCKS);
    assert_eq!(summary["head"]["number"], BLOCKS);
    assert_eq!(summary["head"]["hash"], head["hash"]);
    assert_eq!(summary["head"]["state_root"], head["stateRoot"]);

    // The state reads back as anvil has it.
    let (code, stdout, stderr) = parevm(&[
        "state",
        "--db",
        db.to_str().expect("utf-8"),
        "account",
        &format!("{probe:#x}"),
        "--json",
    ]);
    assert_eq!(code, 0, "state: {stderr}");
    let account: Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(
        account["balance"],
        serde_json::to_value(balance).expect("json"),
        "{account}"
    );
    assert_eq!(
        account["nonce"].as_u64(),
        Some(nonce.to::<u64>()),
        "{account}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
