//! Targeted differential tests for the EVM rules that break naive parallel
//! executors (see `shared/pitfalls.md`): each scenario runs on several
//! forks, in parallel at 1..16 threads, and must equal the sequential path;
//! where the rule gives an answer we can state independently, it is checked.

mod common;

use alloy_primitives::{keccak256, Address, B256, U256};
use common::{addr, check, input, tx};
use parevm::revm::primitives::hardfork::SpecId;
use parevm::{execute_block, Config, ExecutedBy, InMemoryStorage, Mode};
use parevm_testkit::gen::{child_init, child_runtime, factory_code, forwarder_code, prober_code};

const FORKS: [SpecId; 9] = [
    SpecId::FRONTIER,
    SpecId::HOMESTEAD,
    SpecId::SPURIOUS_DRAGON,
    SpecId::BYZANTIUM,
    SpecId::PETERSBURG,
    SpecId::LONDON,
    SpecId::SHANGHAI,
    SpecId::CANCUN,
    SpecId::PRAGUE,
];

fn word(a: Address) -> Vec<u8> {
    U256::from_be_slice(a.as_slice())
        .to_be_bytes::<32>()
        .to_vec()
}

const ETHER: u64 = 1_000_000_000_000_000_000;

#[test]
fn beneficiary_in_every_role() {
    let (coinbase, b, c, d) = (addr(0xc0), addr(1), addr(2), addr(3));
    let (prober, forwarder, factory) = (addr(0xa2), addr(0xa3), addr(0xa4));
    let child = factory.create2(B256::from(U256::from(1)), keccak256(child_init()));
    for spec in FORKS {
        let mut storage = InMemoryStorage::new();
        for a in [coinbase, b, c] {
            storage.insert_account(a, U256::from(ETHER), 0);
        }
        storage.insert_contract(prober, U256::ZERO, 1, prober_code());
        storage.insert_contract(forwarder, U256::ZERO, 1, forwarder_code());
        storage.insert_contract(factory, U256::ZERO, 1, factory_code());
        storage.insert_contract(child, U256::from(1000), 1, child_runtime().into());
        let txs = vec![
            tx(b, Some(d), 5, 0, &[], 21_000),                   // pays the fee
            tx(c, Some(d), 6, 0, &[], 21_000),                   // pays the fee
            tx(coinbase, Some(d), 7, 0, &[], 21_000),            // sent by the beneficiary
            tx(b, Some(coinbase), 8, 1, &[], 21_000),            // value to it
            tx(c, Some(prober), 0, 1, &word(coinbase), 100_000), // BALANCE / EXTCODEHASH of it
            tx(b, Some(forwarder), 9, 2, &word(coinbase), 100_000), // CALL with value to it
            tx(c, Some(child), 0, 2, &word(coinbase), 100_000),  // SELFDESTRUCT to it
            tx(coinbase, Some(prober), 0, 1, &word(coinbase), 100_000),
            tx(b, Some(d), 10, 3, &[], 21_000),
        ];
        let n = txs.len();
        let block = input(spec, coinbase, txs.clone());
        let result = check(&storage, &block).expect("valid block");
        // The beneficiary's balance follows from the receipts alone.
        let tip = |t: &parevm::revm::context::TxEnv| {
            U256::from(t.gas_price - u128::from(block.block.basefee))
        };
        let fees: U256 = result
            .txs
            .iter()
            .zip(&txs)
            .map(|(r, t)| U256::from(r.receipt.gas_used) * tip(t))
            .sum();
        let own_fees: U256 = result
            .txs
            .iter()
            .zip(&txs)
            .filter(|(_, t)| t.caller == coinbase)
            .map(|(r, t)| U256::from(r.receipt.gas_used) * U256::from(t.gas_price))
            .sum();
        let forwarded = if result.txs[5].receipt.success() {
            9
        } else {
            0
        };
        let destructed = if result.txs[6].receipt.success() {
            1000
        } else {
            0
        };
        let expected = U256::from(ETHER) + fees - own_fees - U256::from(7)
            + U256::from(8 + forwarded + destructed);
        let actual = result.state[&coinbase]
            .info
            .as_ref()
            .expect("exists")
            .balance;
        assert_eq!(actual, expected, "{spec:?}");
        assert_eq!(result.txs.len(), n);
        // The prober stored BALANCE(coinbase) as seen mid-block (Frontier
        // has no EXTCODEHASH: that call halts).
        if spec.is_enabled_in(SpecId::PETERSBURG) {
            assert!(result.txs[4].receipt.success(), "{spec:?}");
        }
    }
}

#[test]
fn zero_fee_beneficiary_is_created_only_before_spurious_dragon() {
    let (coinbase, sender) = (addr(0xc0), addr(1));
    for spec in FORKS
        .into_iter()
        .filter(|s| !s.is_enabled_in(SpecId::LONDON))
    {
        let mut storage = InMemoryStorage::new();
        storage.insert_account(sender, U256::from(ETHER), 0);
        let mut txs: Vec<_> = (0..10)
            .map(|n| tx(sender, Some(addr(50 + n)), 1, n, &[], 21_000))
            .collect();
        for t in &mut txs {
            t.gas_price = 0;
        }
        let result = check(&storage, &input(spec, coinbase, txs)).expect("valid block");
        let created = result.state.get(&coinbase).and_then(|c| c.info.clone());
        if spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) {
            assert!(
                created.is_none(),
                "{spec:?}: touched empty beneficiary must be deleted"
            );
        } else {
            let info = created.expect("pre-Spurious: zero credit creates the account");
            assert!(info.is_empty(), "{spec:?}");
        }
    }
}

#[test]
fn storage_wipe_and_recreation() {
    let (sender, coinbase, factory) = (addr(1), addr(0xc0), addr(0xa4));
    let salt = U256::from(3);
    let child = factory.create2(B256::from(salt), keccak256(child_init()));
    let create2 = [U256::from(1).to_be_bytes::<32>(), salt.to_be_bytes::<32>()].concat();
    for spec in [
        SpecId::PETERSBURG,
        SpecId::LONDON,
        SpecId::SHANGHAI,
        SpecId::CANCUN,
        SpecId::PRAGUE,
    ] {
        let mut storage = InMemoryStorage::new();
        storage.insert_account(sender, U256::from(ETHER), 0);
        storage.insert_contract(factory, U256::ZERO, 1, factory_code());
        let txs = vec![
            tx(sender, Some(factory), 0, 0, &create2, 300_000), // child: slot0 = 1
            tx(sender, Some(child), 0, 1, &[], 100_000),        // slot0 = 2
            tx(sender, Some(child), 0, 2, &word(addr(9)), 100_000), // SELFDESTRUCT
            tx(sender, Some(factory), 0, 3, &create2, 300_000), // re-create (pre-Cancun)
            tx(sender, Some(child), 0, 4, &[], 100_000),        // increment
        ];
        let result = check(&storage, &input(spec, coinbase, txs)).expect("valid block");
        let slot0 = result.state[&child].storage.get(&U256::ZERO).copied();
        if spec.is_enabled_in(SpecId::CANCUN) {
            // EIP-6780: the child survives; re-creation collides; 1 -> 2 -> 3.
            assert_eq!(slot0, Some(U256::from(3)), "{spec:?}");
        } else {
            // Destroyed and re-created with fresh storage: 1 -> 2.
            assert_eq!(slot0, Some(U256::from(2)), "{spec:?}");
            assert!(result.state[&child].storage_cleared);
        }
    }
}

#[test]
fn code_deployed_in_the_block_is_visible_by_address_and_hash() {
    let (sender, other, coinbase, prober) = (addr(1), addr(2), addr(0xc0), addr(0xa2));
    let child = sender.create(0);
    for spec in [
        SpecId::PETERSBURG,
        SpecId::BERLIN,
        SpecId::SHANGHAI,
        SpecId::CANCUN,
    ] {
        let mut storage = InMemoryStorage::new();
        storage.insert_account(sender, U256::from(ETHER), 0);
        storage.insert_account(other, U256::from(ETHER), 0);
        storage.insert_contract(prober, U256::ZERO, 1, prober_code());
        let txs = vec![
            tx(sender, None, 0, 0, &child_init(), 200_000),
            tx(other, Some(child), 0, 0, &[], 100_000),
            tx(other, Some(prober), 0, 1, &word(child), 100_000),
        ];
        let result = check(&storage, &input(spec, coinbase, txs)).expect("valid block");
        assert_eq!(result.txs[0].receipt.created_address, Some(child));
        assert_eq!(
            result.state[&child].storage[&U256::ZERO],
            U256::from(2),
            "{spec:?}"
        );
        assert_eq!(
            result.state[&prober].storage[&U256::from(1)],
            U256::from_be_bytes(keccak256(child_runtime()).0),
            "{spec:?}"
        );
    }
}

#[test]
fn touching_an_empty_account_deletes_it_from_spurious_dragon() {
    let (sender, empty, coinbase) = (addr(1), addr(0xee), addr(0xc0));
    for spec in FORKS {
        let mut storage = InMemoryStorage::new();
        storage.insert_account(sender, U256::from(ETHER), 0);
        storage.insert_account(empty, U256::ZERO, 0);
        let txs = vec![
            tx(sender, Some(empty), 0, 0, &[], 21_000),
            tx(sender, Some(addr(5)), 1, 1, &[], 21_000),
        ];
        let result = check(&storage, &input(spec, coinbase, txs)).expect("valid block");
        let after = result.state.get(&empty);
        if spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) {
            assert!(
                after.is_some_and(|c| c.info.is_none()),
                "{spec:?}: must be deleted"
            );
        } else {
            // Before EIP-161 an existing empty account just stays.
            assert!(
                after.is_none_or(|c| c.info.is_some()),
                "{spec:?}: must survive"
            );
        }
    }
}

#[test]
fn one_sender_chain_and_shared_recipient() {
    // Nonce chains and a hot recipient: serial by nature, still identical.
    let (sender, hot, coinbase) = (addr(1), addr(2), addr(0xc0));
    let mut storage = InMemoryStorage::new();
    storage.insert_account(sender, U256::from(ETHER), 0);
    let others: Vec<Address> = (10..40).map(addr).collect();
    for o in &others {
        storage.insert_account(*o, U256::from(ETHER), 0);
    }
    let mut txs: Vec<_> = (0..30)
        .map(|n| tx(sender, Some(hot), 1, n, &[], 21_000))
        .collect();
    txs.extend(others.iter().map(|o| tx(*o, Some(hot), 2, 0, &[], 21_000)));
    let result = check(&storage, &input(SpecId::CANCUN, coinbase, txs)).expect("valid");
    assert_eq!(
        result.state[&hot].info.as_ref().expect("exists").balance,
        U256::from(30 + 60)
    );
    assert_eq!(
        result.state[&sender].info.as_ref().expect("exists").nonce,
        30
    );
}

/// An exchange paying out: one sender, plain transfers to many accounts.
/// Chunks predict the sender's account at their start from the cost of its
/// earlier transfers, and check the prediction: a payout to a contract
/// (which costs more gas), a payment to the sender in between, or a sender
/// that is the beneficiary (not predicted) cost the chunk, never exactness.
#[test]
fn payouts_from_one_sender() {
    let (exchange, coinbase, forwarder, payer) = (addr(1), addr(0xc0), addr(0xa3), addr(2));
    let cases = [
        "legacy",
        "eip-1559",
        "to a contract",
        "paid in between",
        "beneficiary",
    ];
    for spec in FORKS {
        for case in cases {
            if case == "eip-1559" && !spec.is_enabled_in(SpecId::LONDON) {
                continue;
            }
            let mut storage = InMemoryStorage::new();
            storage.insert_account(exchange, U256::from(ETHER), 0);
            storage.insert_account(payer, U256::from(ETHER), 0);
            storage.insert_contract(forwarder, U256::ZERO, 1, forwarder_code());
            let mut txs: Vec<_> = (0..48)
                .map(|n| {
                    let mut payout = tx(exchange, Some(addr(100 + n)), 1_000 + n, n, &[], 21_000);
                    if case == "eip-1559" {
                        payout.tx_type = 2;
                        payout.gas_price = 30;
                        payout.gas_priority_fee = Some(3);
                    }
                    payout
                })
                .collect();
            match case {
                "to a contract" => txs[20] = tx(exchange, Some(forwarder), 5, 20, &[], 100_000),
                "paid in between" => txs.insert(20, tx(payer, Some(exchange), 7, 0, &[], 21_000)),
                _ => {}
            }
            let beneficiary = if case == "beneficiary" {
                exchange
            } else {
                coinbase
            };
            let block = input(spec, beneficiary, txs);
            let result = check(&storage, &block).expect("valid");
            let sender = result.state[&exchange].info.as_ref().expect("exists");
            assert_eq!(sender.nonce, 48, "{spec:?} {case}");
            if case == "legacy" || case == "eip-1559" {
                predicted_without_conflict(&storage, &block, &format!("{spec:?} {case}"));
            }
        }
    }
}

/// A payout that runs code (to a forwarder contract) costs more gas than
/// the chunks after it predict for the sender: the check *shifts* the
/// sender's balance in those chunks by the difference, which is exact as
/// long as they used the balance only for revm's check that it covers each
/// transaction's maximum cost. Cases:
/// - "to a contract": the shift covers the whole block (no conflict);
/// - "beneficiary": the sender is also the fee recipient (a mining pool
///   paying out in its own block), whose fee credits before each chunk
///   the prediction also misses: the same;
/// - "balance read": a later transaction of the sender runs `BALANCE` on
///   itself, a number a shift would get wrong: a conflict exactly there;
/// - "short of funds": the sender holds exactly what 21,000 gas per payout
///   costs, so the extra gas makes a late payout unaffordable, which the
///   predicted balance hid: the block fails there on every path.
#[test]
fn payouts_shift_the_senders_balance() {
    let (exchange, coinbase, forwarder, prober) = (addr(1), addr(0xc0), addr(0xa3), addr(0xa2));
    let values = |n: u64| 1_000 + n;
    for spec in FORKS {
        for case in [
            "to a contract",
            "beneficiary",
            "balance read",
            "short of funds",
        ] {
            let mut storage = InMemoryStorage::new();
            let exact: u64 = (0..48).map(|n| values(n) + 21_000 * 20).sum();
            let balance = if case == "short of funds" {
                U256::from(exact)
            } else {
                U256::from(ETHER)
            };
            storage.insert_account(exchange, balance, 0);
            storage.insert_contract(forwarder, U256::ZERO, 1, forwarder_code());
            storage.insert_contract(prober, U256::ZERO, 1, prober_code());
            let mut txs: Vec<_> = (0..48)
                .map(|n| tx(exchange, Some(addr(100 + n)), values(n), n, &[], 21_000))
                .collect();
            txs[5] = tx(exchange, Some(forwarder), values(5), 5, &[], 100_000);
            if case == "balance read" {
                txs[40] = tx(exchange, Some(prober), 0, 40, &word(exchange), 100_000);
            }
            let beneficiary = if case == "beneficiary" {
                exchange
            } else {
                coinbase
            };
            let block = input(spec, beneficiary, txs);
            let result = check(&storage, &block);
            let label = format!("{spec:?} {case}");
            if case == "short of funds" {
                match result {
                    Err(parevm::ExecError::InvalidTransaction { index, .. }) => {
                        assert!(index > 40, "{label}: fails at {index}");
                    }
                    other => panic!("{label}: {other:?}"),
                }
                continue;
            }
            let result = result.expect("valid");
            assert!(result.txs[5].receipt.gas_used > 21_000, "{label}: code ran");
            for threads in [2, 3, 8] {
                let config = Config {
                    mode: Mode::Chunked,
                    ..Config::block_stm(threads)
                };
                let chunked = execute_block(&storage, &block, &config).expect("valid");
                let expected = (case == "balance read").then_some(40);
                assert_eq!(
                    chunked.stats.sequential_from, expected,
                    "{label} at {threads} threads"
                );
                assert!(chunked.stats.shifted_balances > 0, "{label} at {threads}");
            }
        }
    }
}

/// `auto` on payout blocks whose gas limits are above 21,000 (as on
/// mainnet): large ones run as chunks (which shift the payer's balance
/// past a payout that ran code), small ones sequentially; exact either way.
#[test]
fn auto_runs_large_payout_blocks_as_chunks() {
    let (exchange, coinbase, forwarder) = (addr(1), addr(0xc0), addr(0xa3));
    for (payouts, expected) in [
        (1_100, ExecutedBy::Chunked(2)),
        (400, ExecutedBy::Sequential),
    ] {
        let mut storage = InMemoryStorage::new();
        storage.insert_account(exchange, U256::from(ETHER), 0);
        storage.insert_contract(forwarder, U256::ZERO, 1, forwarder_code());
        let mut txs: Vec<_> = (0..payouts)
            .map(|n| tx(exchange, Some(addr(1_000 + n)), 1_000 + n, n, &[], 50_000))
            .collect();
        txs[7] = tx(exchange, Some(forwarder), 5, 7, &[], 100_000);
        let block = input(SpecId::LONDON, coinbase, txs);
        let sequential = execute_block(&storage, &block, &Config::sequential()).expect("valid");
        let config = Config {
            mode: Mode::Auto,
            ..Config::block_stm(2)
        };
        let auto = execute_block(&storage, &block, &config).expect("valid");
        assert_eq!(sequential.first_difference(&auto), None, "{payouts}");
        assert_eq!(auto.stats.executed_by, expected, "{payouts}");
        assert_eq!(auto.stats.sequential_from, None, "{payouts}");
    }
}

/// Chunks whose predicted accounts hold meet no conflict at 2, 3 and 8
/// threads, and `auto` runs the block as chunks.
fn predicted_without_conflict(storage: &InMemoryStorage, block: &parevm::BlockInput, case: &str) {
    for threads in [2, 3, 8] {
        let config = Config {
            mode: Mode::Chunked,
            ..Config::block_stm(threads)
        };
        let chunked = execute_block(storage, block, &config).expect("valid");
        assert_eq!(
            chunked.stats.sequential_from, None,
            "{case} at {threads} threads"
        );
    }
    let config = Config {
        mode: Mode::Auto,
        ..Config::block_stm(2)
    };
    let auto = execute_block(storage, block, &config).expect("valid");
    assert_eq!(auto.stats.executed_by, ExecutedBy::Chunked(2), "{case}");
}

/// Deposits: many senders pay one account in plain transfers (an
/// exchange's deposit address), with gas limits above 21,000. Chunks
/// predict its balance at their start from the values paid before them,
/// and the check compares the prediction with the real balance. Cases: an
/// existing account; an account the block creates; a contract (its code
/// runs, the prediction of the payers' costs and of its balance may fail:
/// exact anyway); a deposit address that also pays out (no longer a
/// sink). Every fork, every path, exact; no conflict where the prediction
/// holds, and `auto` runs those as chunks.
#[test]
fn deposits_to_one_account() {
    let (wallet, coinbase, forwarder, target) = (addr(1), addr(0xc0), addr(0xa3), addr(0xa9));
    let cases = ["existing", "created", "contract", "pays out"];
    for spec in FORKS {
        for case in cases {
            let mut storage = InMemoryStorage::new();
            if case != "created" {
                storage.insert_account(wallet, U256::from(ETHER), 0);
            }
            storage.insert_contract(forwarder, U256::ZERO, 1, forwarder_code());
            let to = if case == "contract" {
                forwarder
            } else {
                wallet
            };
            let mut txs: Vec<_> = (0..48u64)
                .map(|n| {
                    let payer = addr(100 + n);
                    storage.insert_account(payer, U256::from(ETHER), 0);
                    let data = if case == "contract" {
                        word(target)
                    } else {
                        Vec::new()
                    };
                    tx(payer, Some(to), 1_000 + n, 0, &data, 42_000 + n)
                })
                .collect();
            if case == "contract" {
                // A plain deposit among the calls, so that the prediction
                // is tried.
                txs[30] = tx(addr(200), Some(to), 9, 0, &[], 60_000);
                storage.insert_account(addr(200), U256::from(ETHER), 0);
            }
            if case == "pays out" {
                txs[40] = tx(wallet, Some(addr(300)), 5, 0, &[], 21_000);
            }
            let block = input(spec, coinbase, txs);
            let result = check(&storage, &block).expect("valid");
            if case == "existing" || case == "created" {
                let paid: u64 = (0..48).map(|n| 1_000 + n).sum();
                let before = if case == "created" { 0 } else { ETHER };
                let wallet_after = result.state[&wallet].info.as_ref().expect("exists");
                assert_eq!(
                    wallet_after.balance,
                    U256::from(before + paid),
                    "{spec:?} {case}"
                );
                predicted_without_conflict(&storage, &block, &format!("{spec:?} {case}"));
            }
        }
    }
}

/// A token holder paid by every transaction of the block, then spending
/// more than it held before the block (but less than it was paid before
/// the spend), in the second half: chunks that track deltas read its
/// balance stale, so the spend's balance check came out the other way (it
/// reverted); the check must catch the flipped comparison and hand the
/// block over to the sequential loop at exactly that transaction. With a
/// zero balance before the block, the first credit in a later chunk
/// pays the gas of setting a slot from zero, which the real value does
/// not: a conflict too.
#[test]
fn hot_holder_spends_what_earlier_chunks_paid_it() {
    use parevm_testkit::workload::contracts::{
        balance_slot, transfer_calldata, HOT_ACCOUNT, TOKEN,
    };
    use parevm_testkit::workload::{Preset, Size, WorkloadKind, WorkloadSpec};

    let token = U256::from(ETHER);
    for (before, spends) in [(token, true), (U256::ZERO, false)] {
        let mut workload =
            WorkloadSpec::preset(WorkloadKind::Erc20, Preset::HotRecipient, Size::Txs(200))
                .build()
                .expect("workload");
        workload
            .storage
            .insert_slot(TOKEN, balance_slot(HOT_ACCOUNT), before);
        let spend_at = 150;
        if spends {
            // Paid to it before the spend, from the calldata's amounts.
            let paid: U256 = workload.input.txs[..spend_at]
                .iter()
                .map(|tx| U256::from_be_slice(&tx.data[36..68]))
                .sum();
            let amount = before + paid / U256::from(2);
            workload
                .storage
                .insert_account(HOT_ACCOUNT, U256::from(ETHER), 0);
            let spend = parevm::revm::context::TxEnv {
                caller: HOT_ACCOUNT,
                nonce: 0,
                data: transfer_calldata(addr(77), amount),
                ..workload.input.txs[0].clone()
            };
            workload.input.txs.insert(spend_at, spend);
        }
        let sequential =
            execute_block(&workload.storage, &workload.input, &Config::sequential()).expect("seq");
        if spends {
            assert_eq!(
                sequential.txs[spend_at].receipt.outcome,
                parevm::TxOutcome::Success,
                "the spend succeeds in block order"
            );
        }
        for threads in [2, 3, 8] {
            let config = Config {
                mode: Mode::ChunkedDeltas,
                ..Config::block_stm(threads)
            };
            let tracked = execute_block(&workload.storage, &workload.input, &config)
                .expect("chunked with deltas");
            assert_eq!(sequential.first_difference(&tracked), None, "{threads}");
            if spends {
                assert_eq!(
                    tracked.stats.sequential_from,
                    Some(spend_at),
                    "at {threads} threads the spend's balance check flips"
                );
            } else {
                assert!(tracked.stats.sequential_from.is_some(), "{threads}");
            }
        }
        check(&workload.storage, &workload.input).expect("block");
    }
}

/// A counter contract: `slot0 += 1`, with a copy of the loaded value
/// dropped on the way (`DUP1 POP`, as compiled code often does).
fn counter_code() -> Vec<u8> {
    vec![
        0x60, 0x00, 0x54, // PUSH1 0, SLOAD
        0x80, 0x50, // DUP1, POP
        0x60, 0x01, 0x01, // PUSH1 1, ADD
        0x60, 0x00, 0x55, // PUSH1 0, SSTORE
        0x00, // STOP
    ]
}

/// Like [`counter_code`], after comparing the loaded value `n` times
/// (`5 < x`, dropped; `n` the calldata word), so that one transaction
/// records a fact per round.
fn comparing_counter_code() -> Vec<u8> {
    vec![
        0x60, 0x00, 0x54, // 0x00 PUSH1 0, SLOAD           [x]
        0x60, 0x00, 0x35, // 0x03 PUSH1 0, CALLDATALOAD    [x, n]
        0x5b, //             0x06 JUMPDEST                 [x, n]
        0x80, 0x15, //       0x07 DUP1, ISZERO             [x, n, n == 0]
        0x60, 0x18, 0x57, // 0x09 PUSH1 0x18, JUMPI        [x, n]
        0x81, 0x60, 0x05, 0x10, 0x50, // 0x0c DUP2, PUSH1 5, LT, POP
        0x60, 0x01, 0x90, 0x03, // 0x11 PUSH1 1, SWAP1, SUB [x, n - 1]
        0x60, 0x06, 0x56, // 0x15 PUSH1 6, JUMP
        0x5b, 0x50, //       0x18 JUMPDEST, POP            [x]
        0x60, 0x01, 0x01, // 0x1a PUSH1 1, ADD
        0x60, 0x00, 0x55, // 0x1d PUSH1 0, SSTORE
        0x00, //             0x20 STOP
    ]
}

/// Every transaction of the block increments one counter slot. Chunks that
/// track deltas read it stale after the first chunk and correct it: no
/// conflict, even though the contract drops a copy of the loaded value.
/// When one transaction compares the value in a loop 70,000 times, past
/// the chunk's bound on recorded facts, its variable is pinned there and
/// the block hands over to the sequential loop at exactly that
/// transaction. Results are exact either way. (The looping transaction
/// sits late enough that on every thread count some tracked chunk
/// corrects the counter before it: the untracked first chunk takes 3/5 of
/// the gas on two threads, here transactions 0-149.)
#[test]
fn counter_increments_commute_and_tracking_stays_bounded() {
    let (coinbase, counter) = (addr(0xc0), addr(0xa0));
    let loop_at = 180;
    for looping in [false, true] {
        let code = if looping {
            comparing_counter_code()
        } else {
            counter_code()
        };
        let mut storage = InMemoryStorage::new();
        storage.insert_contract(counter, U256::ZERO, 1, code.into());
        storage.insert_slot(counter, U256::ZERO, U256::from(1_000));
        let txs: Vec<_> = (0..200u64)
            .map(|i| {
                let sender = addr(1_000 + i);
                storage.insert_account(sender, U256::from(ETHER), 0);
                let rounds = if i as usize == loop_at { 70_000u64 } else { 2 };
                let data = if looping {
                    U256::from(rounds).to_be_bytes::<32>().to_vec()
                } else {
                    Vec::new()
                };
                let gas = if rounds > 2 { 5_000_000 } else { 100_000 };
                tx(sender, Some(counter), 0, 0, &data, gas)
            })
            .collect();
        let block = input(SpecId::CANCUN, coinbase, txs);
        let sequential = execute_block(&storage, &block, &Config::sequential()).expect("seq");
        assert!(sequential.txs.iter().all(|t| t.receipt.success()));
        for threads in [2, 3, 8] {
            let config = Config {
                mode: Mode::ChunkedDeltas,
                ..Config::block_stm(threads)
            };
            let tracked = execute_block(&storage, &block, &config).expect("chunked with deltas");
            assert_eq!(sequential.first_difference(&tracked), None, "{threads}");
            assert!(tracked.stats.corrected_slots > 0, "{threads}");
            let expected = looping.then_some(loop_at);
            assert_eq!(tracked.stats.sequential_from, expected, "{threads}");
        }
        check(&storage, &block).expect("block");
    }
}

/// Block-STM's head start runs the heavy last transaction first (its gas
/// limit is half the block's, and in block order it would start last).
/// Here it reads the counter that every transaction before it
/// increments, so its head-started execution reads a stale value and
/// must be aborted and run again once the others have written: the
/// results must still be the sequential loop's, on every thread count
/// and run.
#[test]
fn a_head_started_transaction_that_reads_stale_state_gives_the_sequential_results() {
    let (coinbase, counter) = (addr(0xc0), addr(0xa1));
    let mut storage = InMemoryStorage::new();
    storage.insert_contract(counter, U256::ZERO, 1, comparing_counter_code().into());
    storage.insert_slot(counter, U256::ZERO, U256::from(7));
    let light = 29u64;
    let txs: Vec<_> = (0..=light)
        .map(|i| {
            let sender = addr(2_000 + i);
            storage.insert_account(sender, U256::from(ETHER), 0);
            // The last one compares the loaded value 20,000 times: about
            // 40 times the others' work, and a gas limit that makes it
            // the head start's pick.
            let (rounds, gas) = if i == light {
                (20_000u64, 3_000_000)
            } else {
                (2, 100_000)
            };
            let data = U256::from(rounds).to_be_bytes::<32>().to_vec();
            tx(sender, Some(counter), 0, 0, &data, gas)
        })
        .collect();
    let block = input(SpecId::CANCUN, coinbase, txs);
    let sequential = execute_block(&storage, &block, &Config::sequential()).expect("seq");
    assert!(sequential.txs.iter().all(|t| t.receipt.success()));
    for round in 0..10 {
        for threads in [2, 3, 8] {
            let config = Config {
                mode: Mode::BlockStm,
                ..Config::block_stm(threads)
            };
            let parallel = execute_block(&storage, &block, &config).expect("block-stm");
            assert_eq!(
                sequential.first_difference(&parallel),
                None,
                "round {round}, {threads} threads"
            );
        }
    }
    check(&storage, &block).expect("block");
}
