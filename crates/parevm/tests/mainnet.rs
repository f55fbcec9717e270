//! All mainnet fixture blocks through whole-block processing, on the
//! sequential path and the parallel path at 1 and 4 threads: both paths
//! must agree exactly, and gas used, logs bloom, receipts root (Byzantium
//! on) and withdrawals root must match the block header.

use std::path::PathBuf;

use parevm::block::{process_block, ProcessedBlock};
use parevm::{Config, Mode};
use parevm_testkit::fixtures::mainnet::read_mainnet_fixture;
use parevm_testkit::fixtures::{default_fixtures_dir, find_json};

fn mainnet_dirs() -> Option<Vec<PathBuf>> {
    let root = default_fixtures_dir().join("mainnet");
    let Ok(entries) = std::fs::read_dir(&root) else {
        let notice = format!(
            "\n!!!!! MAINNET FIXTURES MISSING at {} (set PAREVM_FIXTURES) — mainnet conformance NOT tested !!!!!\n",
            root.display()
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{notice}");
        eprintln!("{notice}");
        return None;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| find_json(p, "block").is_some())
        .collect();
    dirs.sort();
    Some(dirs)
}

fn same(a: &ProcessedBlock, b: &ProcessedBlock) -> Option<String> {
    if let Some(d) = a.result.first_difference(&b.result) {
        return Some(d);
    }
    if a.state != b.state {
        return Some("block state diff".into());
    }
    if a.receipts != b.receipts
        || a.logs_bloom != b.logs_bloom
        || a.receipts_root != b.receipts_root
    {
        return Some("receipts".into());
    }
    None
}

#[test]
fn mainnet_blocks_match_headers_on_both_paths() {
    let Some(dirs) = mainnet_dirs() else { return };
    assert!(
        !dirs.is_empty(),
        "no fixture folders in the mainnet fixtures"
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let fixture = read_mainnet_fixture(dir, &parevm::ChainSpec::mainnet())
            .unwrap_or_else(|e| panic!("{e}"));
        let block = &fixture.block;
        let sequential = process_block(&fixture.storage, block, &Config::sequential());
        // Block-STM at 1 and 4 threads, optimistic chunks at 2 and 5 (on
        // mainnet blocks they mostly meet a conflict and hand over to the
        // sequential loop part-way).
        let configs = [
            (Mode::BlockStm, 1),
            (Mode::BlockStm, 4),
            (Mode::Chunked, 2),
            (Mode::Chunked, 5),
        ];
        for (mode, threads) in configs {
            let config = Config {
                mode,
                ..Config::block_stm(threads)
            };
            let parallel = process_block(&fixture.storage, block, &config);
            let number = block.header.number;
            let threads = format!("{threads} ({mode:?})");
            match (&sequential, &parallel) {
                (Ok(s), Ok(p)) => {
                    if let Some(d) = same(s, p) {
                        failures.push(format!(
                            "{number} at {threads} threads: parallel != sequential: {d}"
                        ));
                    }
                    for check in p.header_checks(block) {
                        if let Some(m) = check.mismatch {
                            failures.push(format!("{number} at {threads} threads: {m}"));
                        }
                    }
                    if block
                        .spec
                        .is_enabled_in(parevm::revm::primitives::hardfork::SpecId::BYZANTIUM)
                    {
                        assert!(
                            p.receipts_root.is_some(),
                            "{number}: receipts root not computed"
                        );
                    }
                }
                (s, p) => failures.push(format!(
                    "{number} at {threads} threads: sequential {:?}, parallel {:?}",
                    s.as_ref().err(),
                    p.as_ref().err()
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mainnet failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} mainnet blocks ok with Block-STM at threads 1 and 4, chunks at 2 and 5",
        dirs.len()
    );
}

#[test]
fn malformed_fixtures_name_file_and_field() {
    use std::io::Write;
    let Some(dirs) = mainnet_dirs() else { return };
    let Some(source) = dirs.iter().find(|d| d.ends_with("46147")).or(dirs.first()) else {
        return;
    };
    let tmp = std::env::temp_dir().join(format!("parevm-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let block: serde_json::Value =
        parevm_testkit::fixtures::read_json_file(&find_json(source, "block").expect("block file"))
            .expect("valid block");
    let prestate: serde_json::Value = parevm_testkit::fixtures::read_json_file(
        &find_json(source, "prestate").expect("prestate file"),
    )
    .expect("valid prestate");
    let write = |name: &str, value: &str| {
        let mut f = std::fs::File::create(tmp.join(name)).expect("create");
        f.write_all(value.as_bytes()).expect("write");
    };
    write("prestate.json", &prestate.to_string());

    // Truncated JSON.
    let text = block.to_string();
    write("block.json", &text[..text.len() / 2]);
    let err = read_mainnet_fixture(&tmp, &parevm::ChainSpec::mainnet())
        .expect_err("truncated")
        .to_string();
    assert!(err.contains("block.json"), "{err}");

    // Bad hex in a header field.
    let mut bad = block.clone();
    bad["gasUsed"] = serde_json::json!("0xzz");
    write("block.json", &bad.to_string());
    let err = read_mainnet_fixture(&tmp, &parevm::ChainSpec::mainnet())
        .expect_err("bad hex")
        .to_string();
    assert!(
        err.contains("block.json") && err.contains("gasUsed"),
        "{err}"
    );

    // Missing field in a transaction.
    let mut bad = block.clone();
    if let Some(tx) = bad["transactions"]
        .get_mut(0)
        .and_then(|t| t.as_object_mut())
    {
        tx.remove("nonce");
        write("block.json", &bad.to_string());
        let err = read_mainnet_fixture(&tmp, &parevm::ChainSpec::mainnet())
            .expect_err("missing")
            .to_string();
        assert!(
            err.contains("block.json") && err.contains("transactions"),
            "{err}"
        );
    }

    // Missing prestate file.
    write("block.json", &block.to_string());
    std::fs::remove_file(tmp.join("prestate.json")).expect("rm");
    let err = read_mainnet_fixture(&tmp, &parevm::ChainSpec::mainnet())
        .expect_err("missing file")
        .to_string();
    assert!(err.contains("prestate"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}
