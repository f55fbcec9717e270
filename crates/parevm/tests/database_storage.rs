//! A revm database as the pre-block state: the benchmark workloads copied
//! into revm's `CacheDB` and executed through `DatabaseStorage` give the
//! same block as over parevm's own `InMemoryStorage`, on every path and at
//! every thread count; a failing database becomes a storage error naming
//! the transaction.

use alloy_primitives::{Address, B256, U256};
use parevm::revm::bytecode::Bytecode;
use parevm::revm::database::{CacheDB, EmptyDB};
use parevm::revm::database_interface::{DBErrorMarker, DatabaseRef};
use parevm::revm::state::AccountInfo;
use parevm::{execute_block, Config, DatabaseStorage, ExecError, InMemoryStorage, Mode};
use parevm_testkit::workload::{Preset, Size, WorkloadKind, WorkloadSpec};

fn cache_of(storage: &InMemoryStorage) -> CacheDB<EmptyDB> {
    let mut db = CacheDB::new(EmptyDB::default());
    for (address, basic) in storage.accounts() {
        let code = storage.code(&basic.code_hash).cloned().unwrap_or_default();
        db.insert_account_info(
            *address,
            AccountInfo::new(basic.balance, basic.nonce, basic.code_hash, code),
        );
        for (slot, value) in storage.account_slots(address).into_iter().flatten() {
            db.insert_account_storage(*address, *slot, *value)
                .expect("a cached account");
        }
    }
    db
}

#[test]
fn a_revm_database_gives_the_same_block_as_parevms_own_storage() {
    for (kind, preset) in [
        (WorkloadKind::Mixed, Preset::Independent),
        (WorkloadKind::Erc20, Preset::HotRecipient),
        (WorkloadKind::Amm, Preset::HotPool),
        (WorkloadKind::Lending, Preset::Chained),
    ] {
        let workload = WorkloadSpec::preset(kind, preset, Size::Txs(200))
            .build()
            .expect("a workload");
        let expected = execute_block(&workload.storage, &workload.input, &Config::sequential())
            .expect("executes");
        let db = DatabaseStorage::new(cache_of(&workload.storage));
        for mode in [
            Mode::Sequential,
            Mode::BlockStm,
            Mode::ChunkedDeltas,
            Mode::Auto,
        ] {
            for threads in [1, 2, 4, 8] {
                let config = Config {
                    threads: std::num::NonZeroUsize::new(threads).expect("positive"),
                    mode,
                };
                let got = execute_block(&db, &workload.input, &config).expect("executes");
                assert_eq!(
                    expected.first_difference(&got),
                    None,
                    "{kind} {preset}, {mode:?} at {threads} threads"
                );
            }
        }
    }
}

/// A database whose every read fails.
#[derive(Debug)]
struct Broken;

#[derive(Debug, thiserror::Error)]
#[error("the disk is gone")]
struct Gone;

impl DBErrorMarker for Gone {}

impl DatabaseRef for Broken {
    type Error = Gone;
    fn basic_ref(&self, _: Address) -> Result<Option<AccountInfo>, Gone> {
        Err(Gone)
    }
    fn code_by_hash_ref(&self, _: B256) -> Result<Bytecode, Gone> {
        Err(Gone)
    }
    fn storage_ref(&self, _: Address, _: U256) -> Result<U256, Gone> {
        Err(Gone)
    }
    fn block_hash_ref(&self, _: u64) -> Result<B256, Gone> {
        Err(Gone)
    }
}

#[test]
fn a_failing_database_is_a_storage_error_not_a_panic() {
    let workload = WorkloadSpec::new(WorkloadKind::Raw, Size::Txs(20))
        .build()
        .expect("a workload");
    let db = DatabaseStorage::new(Broken);
    for threads in [1, 2, 4] {
        let error = execute_block(&db, &workload.input, &Config::block_stm(threads))
            .expect_err("every read fails");
        match error {
            ExecError::Storage { index, source } => {
                assert_eq!(index, 0, "the first transaction fails first");
                assert!(source.message.contains("the disk is gone"), "{source:?}");
            }
            other => panic!("expected a storage error, got {other}"),
        }
    }
}
