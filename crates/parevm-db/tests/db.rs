//! The state database: incremental roots against parevm's full rebuild,
//! snapshots reading what was committed, a failed root writing nothing, and
//! files that are not ours refused.

use std::path::PathBuf;

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use parevm::output::{AccountChange, AccountState};
use parevm::revm::primitives::KECCAK_EMPTY;
use parevm::storage::bytecode_from_bytes;
use parevm::{execute_block, trie, Config, InMemoryStorage, StateDiff, Storage as _};
use parevm_db::{CommitError, DbError, StateDb};
use parevm_testkit::gen::{random_block, GenParams};

/// The whole of `state` as a diff over the empty state.
fn as_diff(state: &InMemoryStorage) -> StateDiff {
    state
        .accounts()
        .map(|(address, basic)| {
            let code = state.code(&basic.code_hash).cloned();
            let storage = state
                .account_slots(address)
                .map(|slots| slots.iter().map(|(k, v)| (*k, *v)).collect())
                .unwrap_or_default();
            let change = AccountChange {
                info: Some(AccountState {
                    balance: basic.balance,
                    nonce: basic.nonce,
                    code_hash: basic.code_hash,
                    code,
                }),
                storage_cleared: false,
                storage,
            };
            (*address, change)
        })
        .collect()
}

/// Random conflict-heavy blocks (creations, self-destructs, storage
/// wipes, deletions of empty accounts) applied one after another: after
/// each, the database's incremental root equals the root parevm's trie
/// module rebuilds from the whole state.
#[test]
fn incremental_roots_equal_a_full_rebuild() {
    let mut blocks = 0;
    for seed in 0..24u64 {
        let params = GenParams {
            txs: 40,
            accounts: 3 + (seed % 5) as usize,
            invalid_percent: 0,
            payout_percent: 0,
        };
        let (mut state, first) = random_block(seed, &params);
        let db = StateDb::in_memory().expect("db");
        let genesis_root = trie::state_root(&state, &StateDiff::new());
        let root = db
            .commit_block(0, B256::ZERO, &[], &as_diff(&state), Some(genesis_root))
            .expect("genesis")
            .root;
        assert_eq!(root, genesis_root);
        // The block, then the same transactions twice more, each sender's
        // nonces moved past its transactions before (creations land on new
        // addresses, counters move on, self-destructed contracts are gone).
        let mut sent = std::collections::HashMap::new();
        for tx in &first.txs {
            *sent.entry(tx.caller).or_insert(0u64) += 1;
        }
        let replay = |times: u64| {
            let mut input = first.clone();
            for tx in &mut input.txs {
                tx.nonce += times * sent[&tx.caller];
            }
            input
        };
        let inputs = [first.clone(), replay(1), replay(2)];
        for (number, input) in inputs.iter().enumerate() {
            let Ok(result) = execute_block(&state, input, &Config::sequential()) else {
                continue;
            };
            let expected = trie::state_root(&state, &result.state);
            let number = number as u64 + 1;
            let root = db
                .commit_block(number, B256::ZERO, &[], &result.state, None)
                .expect("commit")
                .root;
            assert_eq!(root, expected, "seed {seed}, block {number}");
            state.apply(&result.state);
            blocks += 1;
        }
    }
    assert!(blocks >= 60, "{blocks} blocks checked");
}

/// A snapshot answers from what was committed: accounts, code, slots, the
/// storage probe and block hashes; a deleted account and a cleared slot
/// are gone.
#[test]
fn snapshots_read_what_was_committed() {
    let db = StateDb::in_memory().expect("db");
    let (plain, contract) = (Address::with_last_byte(1), Address::with_last_byte(2));
    let code = Bytes::from_static(&[0x60, 0x00]);
    let account = |balance: u64, code: Option<Bytes>| AccountChange {
        info: Some(AccountState {
            balance: U256::from(balance),
            nonce: 1,
            code_hash: code.as_ref().map_or(KECCAK_EMPTY, keccak256),
            code: code.map(bytecode_from_bytes),
        }),
        ..AccountChange::default()
    };
    let mut with_slot = account(0, Some(code.clone()));
    with_slot.storage.insert(U256::from(7), U256::from(9));
    let genesis = StateDiff::from([(plain, account(5, None)), (contract, with_slot)]);
    db.commit_block(0, B256::repeat_byte(0xaa), &[], &genesis, None)
        .expect("genesis");
    let snapshot = db.snapshot().expect("snapshot");
    let read = snapshot.account(&contract).expect("read").expect("exists");
    assert_eq!(read.code_hash, keccak256(&code));
    assert_eq!(
        snapshot
            .code_by_hash(&read.code_hash)
            .expect("code")
            .original_bytes(),
        code
    );
    assert_eq!(
        snapshot.storage(&contract, &U256::from(7)).expect("slot"),
        U256::from(9)
    );
    assert!(snapshot.has_storage(&contract).expect("probe"));
    assert!(!snapshot.has_storage(&plain).expect("probe"));
    assert_eq!(
        snapshot.block_hash(0).expect("hash"),
        B256::repeat_byte(0xaa)
    );
    drop(snapshot);
    let mut cleared = AccountChange {
        info: read_info(&db, contract),
        ..AccountChange::default()
    };
    cleared.storage.insert(U256::from(7), U256::ZERO);
    let deleted = AccountChange {
        info: None,
        storage_cleared: true,
        ..AccountChange::default()
    };
    let diff = StateDiff::from([(plain, deleted), (contract, cleared)]);
    db.commit_block(1, B256::repeat_byte(0xbb), &[], &diff, None)
        .expect("block 1");
    assert_eq!(db.account(&plain).expect("read"), None);
    assert_eq!(
        db.slot(&contract, &U256::from(7)).expect("read"),
        U256::ZERO
    );
    assert!(!db
        .snapshot()
        .expect("snapshot")
        .has_storage(&contract)
        .expect("probe"));
    assert_eq!(db.head().expect("head").expect("some").number, 1);
}

fn read_info(db: &StateDb, address: Address) -> Option<AccountState> {
    let account = db.account(&address).expect("read")?;
    Some(AccountState {
        balance: account.balance,
        nonce: account.nonce,
        code_hash: account.code_hash,
        code: None,
    })
}

/// A block whose root is not the expected one writes nothing.
#[test]
fn a_wrong_root_writes_nothing() {
    let db = StateDb::in_memory().expect("db");
    let address = Address::with_last_byte(3);
    let change = |balance: u64| AccountChange {
        info: Some(AccountState {
            balance: U256::from(balance),
            nonce: 0,
            code_hash: KECCAK_EMPTY,
            code: None,
        }),
        ..AccountChange::default()
    };
    let genesis_root = db
        .commit_block(
            0,
            B256::ZERO,
            &[],
            &StateDiff::from([(address, change(1))]),
            None,
        )
        .expect("genesis")
        .root;
    let wrong = db.commit_block(
        1,
        B256::ZERO,
        &[],
        &StateDiff::from([(address, change(2))]),
        Some(B256::repeat_byte(7)),
    );
    assert!(matches!(
        wrong,
        Err(CommitError::RootMismatch { number: 1, .. })
    ));
    let head = db.head().expect("head").expect("genesis");
    assert_eq!((head.number, head.state_root), (0, genesis_root));
    assert_eq!(
        db.account(&address).expect("read").expect("exists").balance,
        U256::from(1)
    );
    assert_eq!(db.state_root().expect("root"), genesis_root);
}

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parevm-db-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("state.redb")
}

/// A file that is not a redb database, and a redb database of another
/// program, are refused with the path; a database of ours reopens with its
/// head.
#[test]
fn files_that_are_not_ours_are_refused() {
    let garbage = temp_file("garbage");
    std::fs::write(&garbage, b"not a database at all, just some bytes").expect("write");
    let error = StateDb::open(&garbage).err().expect("refused");
    assert!(
        matches!(error, DbError::Open { .. } | DbError::NotOurs { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("state.redb"), "{error}");

    let other = temp_file("other");
    {
        let db = redb::Database::create(&other).expect("redb");
        let txn = db.begin_write().expect("txn");
        {
            let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
            let mut meta = txn.open_table(table).expect("table");
            meta.insert("format", b"someone-else-v3".as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let error = StateDb::open(&other).err().expect("refused");
    assert!(matches!(error, DbError::NotOurs { .. }), "{error}");

    let ours = temp_file("ours");
    {
        let db = StateDb::open(&ours).expect("create");
        db.commit_block(0, B256::repeat_byte(1), &[], &StateDiff::new(), None)
            .expect("genesis");
    }
    let reopened = StateDb::open(&ours).expect("reopen");
    assert_eq!(
        reopened.head().expect("head").map(|h| h.hash),
        Some(B256::repeat_byte(1))
    );
    for path in [garbage, other, ours] {
        if let Some(dir) = path.parent() {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}
