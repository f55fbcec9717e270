//! Crash safety of `parevm import`: a child import killed with SIGKILL at
//! random moments leaves the database at its last whole block, and
//! importing again resumes from there to the same head and state root as an
//! uninterrupted import (and as the chain's builder).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use parevm_testkit::chain::build_chain;
use parevm_testkit::gen::Rng;
use serde_json::Value;

fn import(genesis: &Path, db: &Path, chain: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_parevm"));
    command.args([
        "import",
        "--genesis",
        genesis.to_str().expect("utf-8"),
        "--db",
        db.to_str().expect("utf-8"),
        chain.to_str().expect("utf-8"),
        "--json",
        "--threads",
        "2",
    ]);
    command
}

fn head(db: &Path) -> Value {
    if !db.exists() {
        // Killed before the database file was created: nothing written,
        // which is the state before the first block.
        return serde_json::json!({ "number": 0 });
    }
    let out = Command::new(env!("CARGO_BIN_EXE_parevm"))
        .args([
            "state",
            "--db",
            db.to_str().expect("utf-8"),
            "head",
            "--json",
        ])
        .output()
        .expect("run parevm state");
    assert!(
        out.status.success(),
        "state head after a kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON head")
}

#[test]
fn killed_imports_resume_to_the_same_state() {
    let chain = build_chain(150, 40, 7).expect("a chain");
    let dir = std::env::temp_dir().join(format!("parevm-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let genesis = dir.join("genesis.json");
    std::fs::write(&genesis, &chain.genesis_json).expect("genesis");
    let blocks = dir.join("chain.rlp");
    std::fs::write(&blocks, &chain.rlp).expect("chain");

    // Uninterrupted: the builder's head and root, and how long it takes.
    let whole = dir.join("whole.redb");
    let started = Instant::now();
    let out = import(&genesis, &whole, &blocks).output().expect("import");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(summary["head"]["number"], chain.head_number);
    assert_eq!(summary["head"]["hash"], serde_json::json!(chain.head_hash));
    assert_eq!(
        summary["head"]["state_root"],
        serde_json::json!(chain.state_root)
    );

    // Killed at random moments, each time resuming the same database.
    let crashed = dir.join("crashed.redb");
    let mut rng = Rng::new(11);
    let (mut kills, mut mid_import, mut last_number) = (0, 0, 0u64);
    let mut points = Vec::new();
    let limit = took.as_micros().max(1_000) as u64;
    while kills < 24 {
        let mut child = import(&genesis, &crashed, &blocks)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let after = rng.below(limit);
        std::thread::sleep(Duration::from_micros(after));
        let finished = child.try_wait().expect("wait").is_some();
        child.kill().ok();
        child.wait().expect("reap");
        kills += usize::from(!finished);
        let head = head(&crashed);
        let number = head["number"].as_u64().unwrap_or(0);
        if !finished {
            points.push(format!("{:.1} ms -> head {number}", after as f64 / 1e3));
        }
        assert!(
            number >= last_number,
            "the head went back from {last_number} to {number}"
        );
        if number > last_number && number < chain.head_number {
            mid_import += 1;
        }
        last_number = number;
        if number == chain.head_number {
            // Done before the kill: start over, to kill more imports.
            std::fs::remove_file(&crashed).expect("remove");
            last_number = 0;
        }
    }
    let out = import(&genesis, &crashed, &blocks)
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resumed: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(
        resumed["head"], summary["head"],
        "resumed after {kills} kills"
    );
    assert!(
        mid_import >= 3,
        "only {mid_import} kills stopped an import half-way"
    );
    eprintln!(
        "{kills} kills, {mid_import} mid-import; an uninterrupted import took {took:?} ({})\nkill points (time after start -> head after the kill): {}",
        summary,
        points.join(", ")
    );
    std::fs::remove_dir_all(&dir).ok();
}
