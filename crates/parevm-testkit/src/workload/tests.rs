//! Every workload runs without a revert, has the balance effects computed
//! here by hand, and gives the same result sequentially and in parallel.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{keccak256, Address, U256};
use revm::primitives::TxKind;

use super::contracts::{BENEFICIARY, HOT_ACCOUNT, ROUTER, TOKEN, TOKEN_A, TOKEN_B};
use super::*;
use parevm::Storage as _;
use parevm::{execute_block, BlockResult, Config, TxOutcome};

fn e18(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// `keccak256(pad32(key) ++ pad32(index))`, written out here rather than
/// taken from the module under test.
fn slot(key: Address, index: u64) -> U256 {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(&[0u8; 12]);
    buf.extend_from_slice(key.as_slice());
    buf.extend_from_slice(&U256::from(index).to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(&buf).0)
}

fn pre_slot(w: &Workload, address: Address, key: U256) -> U256 {
    w.storage
        .account_slots(&address)
        .and_then(|s| s.get(&key).copied())
        .unwrap_or_default()
}

fn post_slot(w: &Workload, r: &BlockResult, address: Address, key: U256) -> U256 {
    r.state
        .get(&address)
        .and_then(|c| c.storage.get(&key).copied())
        .unwrap_or_else(|| pre_slot(w, address, key))
}

fn to(tx: &revm::context::TxEnv) -> Address {
    match tx.kind {
        TxKind::Call(a) => a,
        TxKind::Create => panic!("workloads only call"),
    }
}

fn word(data: &[u8], n: usize) -> U256 {
    U256::from_be_slice(&data[4 + 32 * n..4 + 32 * (n + 1)])
}

fn word_address(data: &[u8], n: usize) -> Address {
    Address::from_slice(&data[4 + 32 * n + 12..4 + 32 * (n + 1)])
}

/// Executes sequentially and in parallel (2 and 4 threads); asserts that
/// every transaction succeeds and the results are identical.
fn run_checked(w: &Workload) -> BlockResult {
    let seq = execute_block(&w.storage, &w.input, &Config::sequential()).expect("sequential run");
    for (i, tx) in seq.txs.iter().enumerate() {
        assert_eq!(
            tx.receipt.outcome,
            TxOutcome::Success,
            "tx {i} ({}) failed: output {}",
            w.tx_kinds[i],
            tx.receipt.output
        );
    }
    for threads in [2, 4] {
        let par =
            execute_block(&w.storage, &w.input, &Config::block_stm(threads)).expect("parallel run");
        assert_eq!(seq.first_difference(&par), None, "{threads} threads");
    }
    seq
}

fn all_specs() -> Vec<WorkloadSpec> {
    let mut specs = Vec::new();
    for kind in WorkloadKind::ALL {
        for preset in Preset::ALL {
            if preset.applies_to(kind) {
                specs.push(WorkloadSpec::preset(kind, preset, Size::Txs(80)).with_seed(7));
            }
        }
        specs.push(
            WorkloadSpec::new(kind, Size::Txs(120))
                .with_hot_ratio(0.3)
                .with_chain_len(4)
                .with_accounts(Some(12))
                .with_seed(3),
        );
        specs.push(
            WorkloadSpec::new(kind, Size::Gas(3_000_000))
                .with_chain_len(7)
                .with_seed(5),
        );
    }
    specs
}

#[test]
fn every_workload_succeeds_and_parallel_matches_sequential() {
    for spec in all_specs() {
        let w = spec.build().expect("build");
        assert!(!w.input.txs.is_empty(), "{spec:?}");
        assert_eq!(w.tx_kinds.len(), w.input.txs.len());
        let result = run_checked(&w);
        assert_eq!(result.txs.len(), w.input.txs.len(), "{spec:?}");
    }
}

#[test]
fn mixed_blends_all_kinds() {
    let w = WorkloadSpec::new(WorkloadKind::Mixed, Size::Txs(400))
        .build()
        .expect("build");
    let kinds: BTreeSet<_> = w.tx_kinds.iter().copied().collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            WorkloadKind::Raw,
            WorkloadKind::Erc20,
            WorkloadKind::Amm,
            WorkloadKind::Lending
        ])
    );
}

/// Independent presets: no two transactions share a sender, an account
/// whose balance or nonce they change (the beneficiary aside, whose fee
/// credits commute), or a written storage slot.
#[test]
fn independent_presets_are_structurally_independent() {
    for kind in WorkloadKind::ALL {
        let w = WorkloadSpec::preset(kind, Preset::Independent, Size::Txs(300))
            .build()
            .expect("build");
        let result = run_checked(&w);
        let mut senders = BTreeSet::new();
        let mut accounts: BTreeMap<Address, usize> = BTreeMap::new();
        let mut slots: BTreeMap<(Address, U256), usize> = BTreeMap::new();
        for (i, (tx, res)) in w.input.txs.iter().zip(&result.txs).enumerate() {
            assert!(senders.insert(tx.caller), "{kind}: sender of tx {i} reused");
            for (address, change) in &res.changes {
                let before = w
                    .storage
                    .accounts()
                    .find(|(a, _)| *a == address)
                    .map(|(_, b)| b);
                let info_changed = match (&change.info, before) {
                    (Some(after), Some(before)) => {
                        after.balance != before.balance || after.nonce != before.nonce
                    }
                    (Some(after), None) => !after.is_empty(),
                    (None, _) => true,
                };
                if info_changed && *address != BENEFICIARY {
                    if let Some(other) = accounts.insert(*address, i) {
                        panic!("{kind}: txs {other} and {i} both change account {address}");
                    }
                }
                assert!(!change.storage_cleared);
                for key in change.storage.keys() {
                    if let Some(other) = slots.insert((*address, *key), i) {
                        panic!("{kind}: txs {other} and {i} both write {address} slot {key}");
                    }
                }
            }
        }
        // Something was actually written: the check is not vacuous.
        assert!(!accounts.is_empty());
        if kind != WorkloadKind::Raw {
            assert!(slots.len() >= w.input.txs.len(), "{kind}");
        }
    }
}

#[test]
fn raw_transfer_effects() {
    let w = raw_transfers(50).expect("build");
    let r = run_checked(&w);
    for i in [0usize, 17, 49] {
        let tx = &w.input.txs[i];
        let recipient = to(tx);
        let after = r.state[&recipient].info.as_ref().expect("recipient exists");
        // Fresh recipient: its balance is exactly the value sent.
        assert_eq!(after.balance, tx.value);
        let sender = r.state[&tx.caller].info.as_ref().expect("sender exists");
        // 1000 ETH, minus the value, minus gas at base fee 10 + tip 2.
        let gas = U256::from(r.txs[i].receipt.gas_used);
        assert_eq!(r.txs[i].receipt.gas_used, 21_000);
        assert_eq!(sender.balance, e18(1000) - tx.value - gas * U256::from(12));
        assert_eq!(sender.nonce, 1);
    }
}

#[test]
fn erc20_transfer_effects() {
    let w = WorkloadSpec::new(WorkloadKind::Erc20, Size::Txs(40))
        .build()
        .expect("build");
    let r = run_checked(&w);
    for i in [0usize, 39] {
        let tx = &w.input.txs[i];
        assert_eq!(to(tx), TOKEN);
        let recipient = word_address(&tx.data, 0);
        let amount = word(&tx.data, 1);
        assert!(amount > U256::ZERO);
        let recipient_slot = slot(recipient, 1);
        let sender_slot = slot(tx.caller, 1);
        assert_eq!(pre_slot(&w, TOKEN, recipient_slot), U256::ZERO);
        assert_eq!(post_slot(&w, &r, TOKEN, recipient_slot), amount);
        assert_eq!(
            post_slot(&w, &r, TOKEN, sender_slot),
            pre_slot(&w, TOKEN, sender_slot) - amount
        );
        assert!(pre_slot(&w, TOKEN, sender_slot) >= e18(1_000_000));
    }
}

#[test]
fn hot_recipient_receives_every_transfer() {
    let w = WorkloadSpec::preset(WorkloadKind::Erc20, Preset::HotRecipient, Size::Txs(60))
        .build()
        .expect("build");
    let r = run_checked(&w);
    // The hot account starts with tokens of its own.
    let mut total = w
        .storage
        .storage(&TOKEN, &slot(HOT_ACCOUNT, 1))
        .expect("pre-block balance");
    assert!(!total.is_zero());
    for tx in &w.input.txs {
        assert_eq!(word_address(&tx.data, 0), HOT_ACCOUNT);
        total += word(&tx.data, 1);
    }
    assert_eq!(post_slot(&w, &r, TOKEN, slot(HOT_ACCOUNT, 1)), total);
    // Reruns are the norm here: the engine has to cope with a real conflict.
    let par = execute_block(&w.storage, &w.input, &Config::block_stm(2)).expect("parallel");
    assert_eq!(par, r);
}

#[test]
fn chained_transfers_form_one_chain() {
    for kind in [WorkloadKind::Raw, WorkloadKind::Erc20] {
        let w = WorkloadSpec::preset(kind, Preset::Chained, Size::Txs(50))
            .build()
            .expect("build");
        let r = run_checked(&w);
        for pair in w.input.txs.windows(2) {
            let recipient = if kind == WorkloadKind::Raw {
                to(&pair[0])
            } else {
                word_address(&pair[0].data, 0)
            };
            assert_eq!(pair[1].caller, recipient, "{kind}");
        }
        if kind == WorkloadKind::Erc20 {
            // The last recipient ends with exactly what it was sent.
            let last = w.input.txs.last().expect("non-empty");
            let recipient = word_address(&last.data, 0);
            assert_eq!(
                post_slot(&w, &r, TOKEN, slot(recipient, 1)),
                word(&last.data, 1)
            );
        }
    }
}

/// The first swap's output, computed with the constant-product formula and
/// the 0.3% fee from the pre-state reserves.
#[test]
fn amm_swap_effects() {
    let w = WorkloadSpec::new(WorkloadKind::Amm, Size::Txs(30))
        .build()
        .expect("build");
    let r = run_checked(&w);
    for i in [0usize, 29] {
        let tx = &w.input.txs[i];
        assert_eq!(to(tx), ROUTER);
        let amount_in = word(&tx.data, 0);
        let pair = word_address(&tx.data, 2);
        let token_in = word_address(&tx.data, 3);
        let recipient = word_address(&tx.data, 4);
        assert_eq!(recipient, tx.caller);
        let token_out = if token_in == TOKEN_A {
            TOKEN_B
        } else {
            TOKEN_A
        };
        let packed = pre_slot(&w, pair, U256::from(5));
        let mask = (U256::from(1) << 112) - U256::from(1);
        let (r0, r1) = (packed & mask, (packed >> 112) & mask);
        assert_eq!(r0, pre_slot(&w, TOKEN_A, slot(pair, 1)));
        let (reserve_in, reserve_out) = if token_in == TOKEN_A {
            (r0, r1)
        } else {
            (r1, r0)
        };
        let with_fee = amount_in * U256::from(997);
        let out = with_fee * reserve_out / (reserve_in * U256::from(1000) + with_fee);
        assert!(out > U256::ZERO);
        assert_eq!(post_slot(&w, &r, token_out, slot(recipient, 1)), out);
        assert_eq!(
            post_slot(&w, &r, token_in, slot(pair, 1)),
            reserve_in + amount_in
        );
        let new_packed = post_slot(&w, &r, pair, U256::from(5));
        let new_in = if token_in == TOKEN_A {
            new_packed & mask
        } else {
            (new_packed >> 112) & mask
        };
        assert_eq!(new_in, reserve_in + amount_in);
    }
}

#[test]
fn hot_pool_swaps_all_use_one_pair() {
    let w = WorkloadSpec::preset(WorkloadKind::Amm, Preset::HotPool, Size::Txs(40))
        .build()
        .expect("build");
    let pairs: BTreeSet<Address> = w
        .input
        .txs
        .iter()
        .map(|tx| word_address(&tx.data, 2))
        .collect();
    assert_eq!(pairs.len(), 1);
    let r = run_checked(&w);
    let pair = *pairs.first().expect("one pair");
    // Net token flows into the pair equal its reserve changes.
    let mask = (U256::from(1) << 112) - U256::from(1);
    let before = pre_slot(&w, pair, U256::from(5));
    let after = post_slot(&w, &r, pair, U256::from(5));
    assert_eq!(after & mask, post_slot(&w, &r, TOKEN_A, slot(pair, 1)));
    assert_eq!(
        (after >> 112) & mask,
        post_slot(&w, &r, TOKEN_B, slot(pair, 1))
    );
    // The product of the reserves never decreases (fees stay in the pool).
    assert!((after & mask) * ((after >> 112) & mask) >= (before & mask) * ((before >> 112) & mask));
}

#[test]
fn lending_effects() {
    let w = WorkloadSpec::new(WorkloadKind::Lending, Size::Txs(60))
        .build()
        .expect("build");
    let r = run_checked(&w);
    let deposit = alloy_primitives::hex!("b6b55f25"); // deposit(uint256)
    let borrow = alloy_primitives::hex!("c5ebeaec"); // borrow(uint256)
    let repay = alloy_primitives::hex!("371fd8e6"); // repay(uint256)
    let mut seen = BTreeSet::new();
    for tx in &w.input.txs {
        let pool = to(tx);
        let user = tx.caller;
        let amount = word(&tx.data, 0);
        let selector: [u8; 4] = tx.data[..4].try_into().expect("selector");
        let (deposits, debts) = (slot(user, 3), slot(user, 4));
        let (d0, b0) = (pre_slot(&w, pool, deposits), pre_slot(&w, pool, debts));
        let (d1, b1) = (
            post_slot(&w, &r, pool, deposits),
            post_slot(&w, &r, pool, debts),
        );
        let cash0 = pre_slot(&w, TOKEN, slot(pool, 1));
        let cash1 = post_slot(&w, &r, TOKEN, slot(pool, 1));
        assert_eq!(
            cash0,
            pre_slot(&w, pool, U256::from(1)) - pre_slot(&w, pool, U256::from(2))
        );
        if selector == deposit {
            assert_eq!((d1, b1, cash1), (d0 + amount, b0, cash0 + amount));
            seen.insert("deposit");
        } else if selector == borrow {
            assert_eq!((d1, b1, cash1), (d0, b0 + amount, cash0 - amount));
            seen.insert("borrow");
        } else if selector == repay {
            assert_eq!((d1, b1, cash1), (d0, b0 - amount, cash0 + amount));
            seen.insert("repay");
        } else {
            panic!("unexpected selector {selector:?}");
        }
    }
    assert_eq!(seen.len(), 3, "all three operations appear");
}

#[test]
fn lending_hot_pool_never_reverts() {
    // One pool, few users: the generator must track positions to keep
    // borrows within limits and repayments within debts.
    let w = WorkloadSpec::preset(WorkloadKind::Lending, Preset::HotPool, Size::Txs(300))
        .with_accounts(Some(3))
        .build()
        .expect("build");
    let pools: BTreeSet<Address> = w.input.txs.iter().map(to).collect();
    assert_eq!(pools.len(), 1);
    run_checked(&w);
}

#[test]
fn deterministic_from_the_seed() {
    let spec = WorkloadSpec::new(WorkloadKind::Mixed, Size::Txs(100)).with_hot_ratio(0.2);
    let a = spec.build().expect("build");
    let b = spec.build().expect("build");
    assert_eq!(a.input.txs, b.input.txs);
    let c = spec.clone().with_seed(99).build().expect("build");
    assert_ne!(a.input.txs, c.input.txs);
}

#[test]
fn hot_ratio_is_exact() {
    let w = WorkloadSpec::new(WorkloadKind::Erc20, Size::Txs(200))
        .with_hot_ratio(0.25)
        .build()
        .expect("build");
    let hot = w
        .input
        .txs
        .iter()
        .filter(|tx| word_address(&tx.data, 0) == HOT_ACCOUNT)
        .count();
    assert_eq!(hot, 50);
}

/// The per-kind gas estimates used to size blocks by gas are close to the
/// real figures, so `--gas G` gives blocks of about G gas.
#[test]
fn gas_targets_are_met() {
    let mut bad = Vec::new();
    for kind in WorkloadKind::ALL {
        let target = 20_000_000;
        let w = WorkloadSpec::new(kind, Size::Gas(target))
            .build()
            .expect("build");
        let r = run_checked(&w);
        let used = r.gas_used() as f64;
        let ratio = used / target as f64;
        eprintln!("{kind}: {} gas per tx", used / w.input.txs.len() as f64);
        if !(0.9..=1.1).contains(&ratio) {
            bad.push(format!("{kind}: {used} gas for a target of {target}"));
        }
    }
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn invalid_knobs_are_errors() {
    let spec = WorkloadSpec::new(WorkloadKind::Raw, Size::Txs(10));
    assert_eq!(
        spec.clone().with_hot_ratio(1.5).build().err(),
        Some(WorkloadError::HotRatio(1.5))
    );
    assert_eq!(
        spec.clone().with_chain_len(0).build().err(),
        Some(WorkloadError::ChainLen)
    );
    assert_eq!(
        spec.clone().with_accounts(Some(0)).build().err(),
        Some(WorkloadError::Accounts)
    );
    assert_eq!(
        WorkloadSpec::new(WorkloadKind::Raw, Size::Txs(0))
            .build()
            .err(),
        Some(WorkloadError::Empty)
    );
    assert_eq!(
        WorkloadSpec::new(WorkloadKind::Raw, Size::Gas(u64::MAX))
            .build()
            .err(),
        Some(WorkloadError::TooLarge)
    );
    assert!("nope".parse::<WorkloadKind>().is_err());
    assert_eq!("hot-pool".parse::<Preset>(), Ok(Preset::HotPool));
    assert_eq!("amm".parse::<WorkloadKind>(), Ok(WorkloadKind::Amm));
}
