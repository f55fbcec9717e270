//! `parevm import` and `parevm state` end to end, on chains taken from the
//! execution-spec blockchain tests: a geth genesis file written from a
//! test's pre-state and genesis header (whose hash our genesis header must
//! reproduce), the test's blocks as one RLP file; the import must end at
//! the test's last block hash. Then: resuming, a wrong genesis, malformed
//! RLP and a database that is not ours.

mod common;

use std::path::{Path, PathBuf};

use alloy_primitives::hex;
use common::parevm;
use parevm_testkit::fixtures::blocktest::{read_blockchain_test_file, BlockchainTest};
use parevm_testkit::fixtures::{collect_json_files, default_fixtures_dir};
use serde_json::{json, Value};

/// `parevm import` of `chain` on top of `genesis` into `db`, with `extra`
/// arguments.
fn import(genesis: &Path, db: &Path, chain: &Path, extra: &[&str]) -> (i32, String, String) {
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let (genesis, db, chain) = (path(genesis), path(db), path(chain));
    let mut args = vec!["import", "--genesis", &genesis, "--db", &db, &chain];
    args.extend_from_slice(extra);
    parevm(&args)
}

/// The geth `config` of a single-fork test network.
fn config(network: &str, chain_id: u64) -> Option<Value> {
    let block_forks = [
        ("Frontier", ""),
        ("Homestead", "homesteadBlock"),
        ("Tangerine", "eip150Block"),
        ("Spurious", "eip158Block"),
        ("Byzantium", "byzantiumBlock"),
        ("ConstantinopleFix", "petersburgBlock"),
        ("Istanbul", "istanbulBlock"),
        ("Berlin", "berlinBlock"),
        ("London", "londonBlock"),
    ];
    let time_forks = ["Shanghai", "Cancun", "Prague"];
    let order: Vec<&str> = block_forks
        .iter()
        .map(|(name, _)| *name)
        .chain(["Paris"])
        .chain(time_forks)
        .collect();
    let last = order.iter().position(|name| *name == network)?;
    let mut config = json!({ "chainId": chain_id });
    for (i, name) in order.iter().enumerate().take(last + 1) {
        match *name {
            "Frontier" => {}
            "ConstantinopleFix" => {
                config["constantinopleBlock"] = json!(0);
                config["petersburgBlock"] = json!(0);
            }
            "Spurious" => {
                config["eip155Block"] = json!(0);
                config["eip158Block"] = json!(0);
            }
            "Paris" => config["terminalTotalDifficulty"] = json!(0),
            "Shanghai" => config["shanghaiTime"] = json!(0),
            "Cancun" => config["cancunTime"] = json!(0),
            "Prague" => config["pragueTime"] = json!(0),
            _ => config[block_forks[i].1] = json!(0),
        }
    }
    Some(config)
}

/// A geth genesis file for `test`, or `None` for networks this test does
/// not cover.
fn genesis_json(test: &BlockchainTest) -> Option<Value> {
    let header = test.genesis_header().ok()?;
    let alloc: serde_json::Map<String, Value> = test
        .pre
        .iter()
        .map(|(address, account)| {
            let storage: serde_json::Map<String, Value> = account
                .storage
                .iter()
                .map(|(k, v)| {
                    (
                        format!("0x{}", hex::encode(k.to_be_bytes::<32>())),
                        json!(format!("0x{}", hex::encode(v.to_be_bytes::<32>()))),
                    )
                })
                .collect();
            let value = json!({
                "balance": format!("{:#x}", account.balance),
                "nonce": format!("{:#x}", account.nonce.0),
                "code": format!("0x{}", hex::encode(&account.code)),
                "storage": storage,
            });
            (format!("{address:#x}"), value)
        })
        .collect();
    let mut genesis = json!({
        "config": config(&test.network, test.chain_id())?,
        "alloc": alloc,
        "coinbase": format!("{:#x}", header.beneficiary),
        "difficulty": format!("{:#x}", header.difficulty),
        "extraData": format!("0x{}", hex::encode(&header.extra_data)),
        "gasLimit": format!("{:#x}", header.gas_limit),
        "timestamp": format!("{:#x}", header.timestamp),
        "mixHash": format!("{:#x}", header.mix_hash),
        "nonce": format!("{:#x}", u64::from_be_bytes(header.nonce.0)),
    });
    if let Some(fee) = header.base_fee_per_gas {
        genesis["baseFeePerGas"] = json!(format!("{fee:#x}"));
    }
    if let Some(excess) = header.excess_blob_gas {
        genesis["excessBlobGas"] = json!(format!("{excess:#x}"));
        genesis["blobGasUsed"] = json!(format!("{:#x}", header.blob_gas_used.unwrap_or(0)));
    }
    Some(genesis)
}

/// Tests whose blocks are all valid, of the networks [`config`] covers, at
/// most `per_network` of each.
fn chains(per_network: usize) -> Vec<(String, BlockchainTest, Value)> {
    let root = default_fixtures_dir().join("eest/blockchain_tests");
    if !root.is_dir() {
        let notice = format!(
            "\n!!!!! BLOCKCHAIN TEST FIXTURES MISSING at {} (set PAREVM_FIXTURES) — import NOT tested !!!!!\n",
            root.display()
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{notice}");
        eprintln!("{notice}");
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut per = std::collections::HashMap::new();
    for file in collect_json_files(&[root]).expect("fixtures") {
        for (name, test) in read_blockchain_test_file(&file).expect("test file") {
            let taken = per.entry(test.network.clone()).or_insert(0usize);
            let valid =
                !test.blocks.is_empty() && test.blocks.iter().all(|b| b.expect_exception.is_none());
            if *taken >= per_network || !valid {
                continue;
            }
            if let Some(genesis) = genesis_json(&test) {
                *taken += 1;
                out.push((name, test, genesis));
            }
        }
    }
    out
}

fn write_chain(dir: &Path, test: &BlockchainTest, genesis: &Value) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("dir");
    let genesis_path = dir.join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_string()).expect("genesis");
    let mut rlp = Vec::new();
    for block in &test.blocks {
        rlp.extend(hex::decode(&block.rlp).expect("block hex"));
    }
    let chain_path = dir.join("chain.rlp");
    std::fs::write(&chain_path, rlp).expect("chain");
    (genesis_path, chain_path)
}

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("parevm-import-{}-{name}", std::process::id()))
}

#[test]
fn imported_chains_end_at_the_tests_last_block() {
    let chains = chains(4);
    if chains.is_empty() {
        return;
    }
    for (name, test, genesis) in &chains {
        let dir = temp_dir("chains");
        let _ = std::fs::remove_dir_all(&dir);
        let (genesis_path, chain_path) = write_chain(&dir, test, genesis);
        let db = dir.join("state.redb");
        let (code, out, err) = import(
            &genesis_path,
            &db,
            &chain_path,
            &["--json", "--threads", "2"],
        );
        assert_eq!(code, 0, "{name}: {err}{out}");
        let summary: Value = serde_json::from_str(out.trim()).expect("JSON summary");
        assert_eq!(
            summary["head"]["hash"],
            json!(test.lastblockhash),
            "{name}: {summary}"
        );
        assert_eq!(summary["imported"], json!(test.blocks.len()), "{name}");
        // Run again: every block is there already.
        let (code, out, err) = import(&genesis_path, &db, &chain_path, &["--json"]);
        assert_eq!(code, 0, "{name} again: {err}");
        let again: Value = serde_json::from_str(out.trim()).expect("JSON summary");
        assert_eq!(again["imported"], json!(0), "{name}");
        assert_eq!(again["skipped"], json!(test.blocks.len()), "{name}");
        // `state head` reads the same head back.
        let (code, out, _) = parevm(&[
            "state",
            "--db",
            db.to_str().expect("utf-8"),
            "head",
            "--json",
        ]);
        assert_eq!(code, 0);
        let head: Value = serde_json::from_str(out.trim()).expect("JSON head");
        assert_eq!(head["hash"], summary["head"]["hash"], "{name}");
        std::fs::remove_dir_all(&dir).ok();
    }
    let networks: std::collections::BTreeSet<&str> = chains
        .iter()
        .map(|(_, test, _)| test.network.as_str())
        .collect();
    eprintln!("{} chains imported: {networks:?}", chains.len());
    assert!(networks.len() >= 8, "{networks:?}");
}

#[test]
fn bad_input_is_refused_with_its_name() {
    let Some((name, test, genesis)) = chains(1).into_iter().next() else {
        return;
    };
    let dir = temp_dir("bad");
    let _ = std::fs::remove_dir_all(&dir);
    let (genesis_path, chain_path) = write_chain(&dir, &test, &genesis);
    let arg = |p: &Path| p.to_str().expect("utf-8").to_owned();
    // A genesis that is not the chain's: a failed check, exit 1.
    let mut other = genesis.clone();
    other["extraData"] = json!("0x0badc0de");
    let other_path = dir.join("other.json");
    std::fs::write(&other_path, other.to_string()).expect("write");
    let db = dir.join("other.redb");
    let (code, _, err) = import(&other_path, &db, &chain_path, &[]);
    assert_eq!(code, 1, "{name}: {err}");
    assert!(err.contains("genesis does not match"), "{err}");
    // Malformed RLP: bad input, exit 2, naming the file.
    let broken = dir.join("broken.rlp");
    let mut bytes = std::fs::read(&chain_path).expect("read");
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&broken, bytes).expect("write");
    let db = dir.join("broken.redb");
    let (code, _, err) = import(&genesis_path, &db, &broken, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("broken.rlp") && err.contains("malformed RLP"),
        "{err}"
    );
    // A file that is not a state database: exit 2, naming it.
    let garbage = dir.join("garbage.redb");
    std::fs::write(&garbage, b"definitely not a database").expect("write");
    let (code, _, err) = import(&genesis_path, &garbage, &chain_path, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("garbage.redb"), "{err}");
    let (code, _, err) = parevm(&["state", "--db", &arg(&dir.join("missing.redb"))]);
    assert_eq!(code, 2, "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
