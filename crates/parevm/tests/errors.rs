//! Bad input gives the same typed error, naming the transaction, on both paths.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use alloy_primitives::{Address, B256, U256};
use common::{addr, check, input, tx};
use parevm::revm::bytecode::Bytecode;
use parevm::revm::primitives::hardfork::SpecId;
use parevm::{AccountBasic, ExecError, InMemoryStorage, Storage, StorageError};

fn funded(accounts: &[Address]) -> InMemoryStorage {
    let mut storage = InMemoryStorage::new();
    for a in accounts {
        storage.insert_account(*a, U256::from(10u64.pow(18)), 0);
    }
    storage
}

#[test]
fn wrong_nonce_names_the_transaction() {
    let senders: Vec<Address> = (1..=30).map(addr).collect();
    let storage = funded(&senders);
    let mut txs: Vec<_> = senders
        .iter()
        .map(|s| tx(*s, Some(addr(999)), 1, 0, &[], 21_000))
        .collect();
    txs[17].nonce = 5;
    let error =
        check(&storage, &input(SpecId::CANCUN, addr(0xc0), txs)).expect_err("invalid block");
    match error {
        ExecError::InvalidTransaction { index, reason } => {
            assert_eq!(index, 17);
            assert!(reason.to_lowercase().contains("nonce"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn insufficient_funds_names_the_first_failing_transaction() {
    let senders: Vec<Address> = (1..=20).map(addr).collect();
    let storage = funded(&senders);
    let mut txs: Vec<_> = senders
        .iter()
        .map(|s| tx(*s, Some(addr(999)), 1, 0, &[], 21_000))
        .collect();
    txs[12].value = U256::from(10u64.pow(19));
    txs[15].nonce = 3;
    let error =
        check(&storage, &input(SpecId::SHANGHAI, addr(0xc0), txs)).expect_err("invalid block");
    assert!(
        matches!(error, ExecError::InvalidTransaction { index: 12, .. }),
        "{error:?}"
    );
}

#[test]
fn a_transaction_that_looks_invalid_speculatively_is_valid_after_its_funding() {
    // Account 50 starts empty; tx 0..5 fund it; tx 6 spends from it. A
    // speculative run of tx 6 before its funding sees no balance.
    let senders: Vec<Address> = (1..=6).map(addr).collect();
    let storage = funded(&senders);
    let poor = addr(50);
    let mut txs: Vec<_> = senders
        .iter()
        .map(|s| tx(*s, Some(poor), 10u64.pow(16), 0, &[], 21_000))
        .collect();
    txs.push(tx(poor, Some(addr(51)), 10u64.pow(16), 0, &[], 21_000));
    let result = check(&storage, &input(SpecId::CANCUN, addr(0xc0), txs)).expect("valid block");
    assert!(result.txs.iter().all(|t| t.receipt.success()));
    assert_eq!(
        result.state[&addr(51)]
            .info
            .as_ref()
            .expect("exists")
            .balance,
        U256::from(10u64.pow(16))
    );
}

/// A storage backend that fails reading one account.
struct FailingStorage {
    inner: InMemoryStorage,
    broken: Address,
    called: AtomicBool,
}

impl Storage for FailingStorage {
    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        if *address == self.broken {
            self.called.store(true, Ordering::Relaxed);
            return Err(StorageError::new("disk on fire"));
        }
        self.inner.account(address)
    }
    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError> {
        self.inner.code_by_hash(code_hash)
    }
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        self.inner.storage(address, slot)
    }
    fn block_hash(&self, number: u64) -> Result<B256, StorageError> {
        self.inner.block_hash(number)
    }
    fn has_storage(&self, address: &Address) -> Result<bool, StorageError> {
        self.inner.has_storage(address)
    }
}

#[test]
fn storage_error_names_the_transaction() {
    let senders: Vec<Address> = (1..=25).map(addr).collect();
    let storage = FailingStorage {
        inner: funded(&senders),
        broken: addr(777),
        called: AtomicBool::new(false),
    };
    let mut txs: Vec<_> = senders
        .iter()
        .map(|s| tx(*s, Some(addr(999)), 1, 0, &[], 21_000))
        .collect();
    txs[9].kind = parevm::revm::primitives::TxKind::Call(addr(777));
    txs[20].kind = parevm::revm::primitives::TxKind::Call(addr(777));
    let error =
        check(&storage, &input(SpecId::CANCUN, addr(0xc0), txs)).expect_err("storage fails");
    assert!(storage.called.load(Ordering::Relaxed));
    match error {
        ExecError::Storage { index, source } => {
            assert_eq!(index, 9);
            assert_eq!(source.message, "disk on fire");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn empty_block_is_ok() {
    let result = check(
        &InMemoryStorage::new(),
        &input(SpecId::CANCUN, addr(1), vec![]),
    )
    .expect("ok");
    assert!(result.txs.is_empty() && result.state.is_empty());
}
