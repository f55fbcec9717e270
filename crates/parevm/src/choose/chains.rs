//! Dependency chains predicted from the transactions alone: how long the
//! longest one is (nonce chains, value passed from one sender to the next,
//! payments to one recipient), whether it runs only through deposits or
//! through entries many senders add to, and the payout blocks that one
//! sender dominates.

use alloy_primitives::Address;
use revm::context::TxEnv;
use revm::primitives::TxKind;
use rustc_hash::FxHashMap;

use super::look::{address_arguments, digest, prefix, EARLY_LOOK_MIN};
use crate::input::{is_plain_transfer, PLAIN_TRANSFER_GAS};

/// Payout blocks (one sender's plain transfers) at least this large run
/// as chunks (`looks_serial_beyond_deposits`).
const PAYOUT_CHUNKS_MIN: usize = 1_024;

/// Whether the block looks serial: its longest estimated chain is more than
/// two thirds of it. A large block whose first eighth is already mostly one
/// chain is judged on that prefix (the pass costs time on exactly the
/// blocks that then run sequentially, so it should be short).
pub(crate) fn looks_serial(txs: &[TxEnv]) -> bool {
    let early_look = (txs.len() >= EARLY_LOOK_MIN).then_some(txs.len() / 8);
    scan(txs, txs.len() * 2 / 3, early_look, |_| false)
}

/// Whether a block that looks serial still does when plain transfers to accounts
/// without code that send nothing in the block (deposits into an
/// exchange's addresses) are not counted as payments to a shared
/// recipient: optimistic chunks predict such an
/// account from the transfers before them (`chunks::flows::AccountFlows`), so
/// that chain costs them nothing. A block that is serial only through
/// deposits is better run as chunks, and so is a large block of one
/// sender's plain transfers (payouts); one that is serial through
/// contract entries is not. Payments to the `beneficiary` stay counted
/// (its fee credits make every chunk's prediction of it wrong).
pub(crate) fn looks_serial_beyond_deposits(
    txs: &[TxEnv],
    beneficiary: Address,
    has_code: impl Fn(&Address) -> bool,
) -> bool {
    // Without a plain transfer the answer is `looks_serial`'s.
    if !txs.iter().any(is_plain_transfer) {
        return true;
    }
    if let Some(payer) = dominant_sender(txs) {
        return !payouts_run_as_chunks(txs, payer);
    }
    // Accounts by their 64-bit digest, as in `scan`: a collision only
    // makes a deposit look like a payment to a sender (a chain).
    let mut sent: rustc_hash::FxHashSet<u64> =
        rustc_hash::FxHashSet::with_capacity_and_hasher(txs.len(), Default::default());
    sent.extend(txs.iter().map(|tx| digest(&tx.caller)));
    // Recipients of plain transfers that send nothing, and how often they
    // are paid: one paid once links nothing, one paid more often is a
    // deposit address if it has no code (asked once).
    let mut sinks: FxHashMap<u64, (u32, Option<bool>)> = FxHashMap::default();
    for tx in txs {
        if let TxKind::Call(to) = tx.kind {
            let to_digest = digest(&to);
            if is_plain_transfer(tx) && to != beneficiary && !sent.contains(&to_digest) {
                sinks.entry(to_digest).or_default().0 += 1;
            }
        }
    }
    // Without deposits the answer is `looks_serial`'s: yes (a chain of
    // transfers from each sender to the next).
    if sinks.is_empty() {
        return true;
    }
    let early_look = (txs.len() >= EARLY_LOOK_MIN).then_some(txs.len() / 8);
    scan(txs, txs.len() * 2 / 3, early_look, |tx| match tx.kind {
        TxKind::Call(to) if is_plain_transfer(tx) => match sinks.get_mut(&digest(&to)) {
            Some((1, _)) => true,
            Some((_, known)) => !*known.get_or_insert_with(|| has_code(&to)),
            None => false,
        },
        _ => false,
    })
}

/// The sender of more than two thirds of the block's transactions, if one
/// is (payouts): a majority vote and a count, with no hashing.
pub(crate) fn dominant_sender(txs: &[TxEnv]) -> Option<Address> {
    let mut candidate = None;
    let mut votes = 0usize;
    for tx in txs {
        if votes == 0 {
            candidate = Some(tx.caller);
            votes = 1;
        } else if candidate == Some(tx.caller) {
            votes += 1;
        } else {
            votes -= 1;
        }
    }
    let candidate = candidate?;
    let count = txs.iter().filter(|tx| tx.caller == candidate).count();
    (count * 3 > txs.len() * 2).then_some(candidate)
}

/// Whether a block most of which `payer` sends runs as chunks: chunks
/// predict the payer's account, and shift its balance where a payout ran
/// code and used more gas than predicted (`chunks::shift::account_shifts`), as
/// long as all of its transactions are plain transfers. Only a large
/// block pays for the chunks' fixed costs: payout blocks of 222-687
/// transactions (0.4-1.6 ms of work) ran at 0.6-0.9x as chunks, one of
/// 1,414 at 1.14-1.38x (2 threads).
fn payouts_run_as_chunks(txs: &[TxEnv], payer: Address) -> bool {
    txs.len() >= PAYOUT_CHUNKS_MIN
        && txs
            .iter()
            .all(|tx| tx.caller != payer || is_plain_transfer(tx))
}

/// `auto`'s path for a block of payouts, decided without its passes over
/// the block (which cost 5-10% of a small payout block that then runs
/// sequentially): `Some(true)` for chunks, `Some(false)` for the
/// sequential loop, the answer the passes would give. `None` when no
/// sender sends most of the block, or when all of that sender's
/// transactions are payouts of exactly 21,000 gas (the independence pass
/// may accept those).
pub(crate) fn payout_path(txs: &[TxEnv]) -> Option<bool> {
    let payer = dominant_sender(txs)?;
    let all_payouts = txs
        .iter()
        .filter(|tx| tx.caller == payer)
        .all(|tx| is_plain_transfer(tx) && tx.gas_limit == PLAIN_TRANSFER_GAS);
    (!all_payouts).then(|| payouts_run_as_chunks(txs, payer))
}

/// Whether the block's estimated dependencies all run through contract
/// entries shared by many senders, such as transfers of one token to one
/// holder: every sender is distinct, no account receives value twice or
/// receives value and sends, and no address argument is also a sender (a
/// swap that pays its own sender, value passed along a chain). Such
/// entries are often plain additions, which chunks that track deltas
/// (`evm::deltas` module) run without conflict; the guess only picks the path.
pub(crate) fn looks_commutative(txs: &[TxEnv]) -> bool {
    // Each rule is about a pair of transactions (the prefix's senders are
    // the block's too): a prefix that breaks one, the block breaks it.
    if prefix(txs).is_some_and(|prefix| !commutative(prefix)) {
        return false;
    }
    commutative(txs)
}

/// [`looks_commutative`] on all of `txs`.
pub(super) fn commutative(txs: &[TxEnv]) -> bool {
    let mut senders: rustc_hash::FxHashSet<Address> =
        rustc_hash::FxHashSet::with_capacity_and_hasher(txs.len(), Default::default());
    if !txs.iter().all(|tx| senders.insert(tx.caller)) {
        return false;
    }
    let mut paid: rustc_hash::FxHashSet<Address> = rustc_hash::FxHashSet::default();
    txs.iter().all(|tx| {
        let value_ok = match tx.kind {
            TxKind::Call(to) if !tx.value.is_zero() => !senders.contains(&to) && paid.insert(to),
            _ => true,
        };
        value_ok && address_arguments(&tx.data).all(|a| !senders.contains(&a))
    })
}

/// Whether a block that is neither independent nor serial holds too
/// little code for Block-STM to pay off: fewer than `min` of its
/// transactions carry calldata or create a contract, and they are fewer
/// than a quarter of it. A value transfer costs about 2 us sequentially,
/// as much as Block-STM spends scheduling, validating and committing it;
/// on the mainnet fixtures the three blocks of this kind (5 of 108, 10 of
/// 176 and 17 of 83 transactions with calldata, 0.2-0.7 ms in all) ran at
/// 0.55-0.79x under Block-STM on 2 threads, while the smallest that gained
/// (1.2-1.4x) had 17 of 24 and 28 of 45.
pub(crate) fn mostly_transfers(txs: &[TxEnv], min: usize) -> bool {
    let coded = txs
        .iter()
        .filter(|tx| !tx.data.is_empty() || matches!(tx.kind, TxKind::Create))
        .count();
    coded < min && coded * 4 < txs.len()
}

/// Whether the longest estimated dependency chain has more than `limit`
/// transactions.
#[cfg(test)]
fn chain_exceeds(txs: &[TxEnv], limit: usize) -> bool {
    scan(txs, limit, None, |_| false)
}

/// Whether the longest estimated chain has more than `limit` transactions,
/// stopping as soon as the answer is known: once a chain
/// is longer than `limit`, or once the transactions left could not make one
/// so; and, with `early_look`, answering yes after that many transactions
/// if the prefix is more than two thirds one chain.
/// A transaction for which `deposit` says yes does not count as a payment
/// to its recipient.
fn scan(
    txs: &[TxEnv],
    limit: usize,
    early_look: Option<usize>,
    mut deposit: impl FnMut(&TxEnv) -> bool,
) -> bool {
    // Per key: the depth of the latest transaction that touched it; a later
    // transaction that depends on the key comes after it. Keys are 64-bit
    // digests of an address (its balance and nonce) or of a (contract,
    // argument) pair: a collision only merges two chains in the estimate,
    // and small keys keep the pass cheap.
    // Sized for the part an early look reads (the map grows past it when
    // that part is not serial).
    let mut depth_of: FxHashMap<u64, u32> = FxHashMap::with_capacity_and_hasher(
        early_look.unwrap_or(txs.len()) * 3,
        Default::default(),
    );
    let mut longest = 0;
    for (i, tx) in txs.iter().enumerate() {
        if longest + (txs.len() - i) <= limit {
            return false;
        }
        let to = match tx.kind {
            TxKind::Call(to) => Some(to),
            TxKind::Create => None,
        };
        // Keys this transaction reads and writes: its sender, the recipient
        // of its value, the (contract, first address argument) entry.
        let sender = digest(&tx.caller);
        let paid = to
            .filter(|_| !tx.value.is_zero() && !deposit(tx))
            .map(|to| digest(&to));
        let entry = to
            .zip(address_arguments(&tx.data).next())
            .map(|pair| std::hash::BuildHasher::hash_one(&rustc_hash::FxBuildHasher, pair));
        let keys = [Some(sender), paid, entry];
        let depth = keys
            .iter()
            .flatten()
            .filter_map(|key| depth_of.get(key))
            .max()
            .copied()
            .unwrap_or(0)
            + 1;
        for key in keys.into_iter().flatten() {
            depth_of.insert(key, depth);
        }
        // Addresses in the calldata may be paid: a later transaction they
        // send follows this one.
        for address in address_arguments(&tx.data) {
            let known = depth_of.entry(digest(&address)).or_default();
            *known = (*known).max(depth);
        }
        longest = longest.max(depth as usize);
        if longest > limit {
            return true;
        }
        if early_look == Some(i + 1) && longest * 3 > (i + 1) * 2 {
            return true;
        }
    }
    false
}

/// The number of transactions on the longest estimated dependency chain of
/// the block (0 for an empty block, 1 when nothing depends on anything).
#[cfg(test)]
fn longest_chain(txs: &[TxEnv]) -> usize {
    (0..=txs.len())
        .find(|&limit| !chain_exceeds(txs, limit))
        .unwrap_or(txs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_txs::{token_transfer, transfer};
    use alloy_primitives::U256;

    #[test]
    fn independent_transfers_have_no_chain() {
        let txs: Vec<_> = (0..10).map(|i| transfer(i, 100 + i)).collect();
        assert_eq!(longest_chain(&txs), 1);
        assert_eq!(longest_chain(&[]), 0);
    }
    #[test]
    fn nonce_chains_count() {
        let txs = vec![
            transfer(1, 50),
            transfer(2, 51),
            transfer(1, 52),
            transfer(1, 53),
        ];
        assert_eq!(longest_chain(&txs), 3);
    }

    #[test]
    fn value_flow_through_to_and_through_calldata() {
        // 1 pays 2, 2 pays 3 (token), 3 pays 4: one chain of three.
        let txs = vec![transfer(1, 2), token_transfer(2, 3, 7), transfer(3, 4)];
        assert_eq!(longest_chain(&txs), 3);
        // Paying an address that sent earlier also follows that transaction
        // (both change its balance); unrelated ones do not.
        let txs = vec![transfer(2, 9), transfer(1, 2), transfer(3, 4)];
        assert_eq!(longest_chain(&txs), 2);
    }

    #[test]
    fn amounts_and_shared_contracts_are_not_flow() {
        // Everyone calls the same token contract (which never sends), and
        // the amounts look like tiny addresses that never send: no edges.
        let txs: Vec<_> = (1..20).map(|i| token_transfer(i, 100 + i, 3)).collect();
        assert_eq!(longest_chain(&txs), 1);
    }

    #[test]
    fn shared_recipients_chain() {
        // Ten payments of ether to one account, between two others.
        let mut txs: Vec<_> = (1..=10).map(|i| transfer(i, 99)).collect();
        txs.insert(5, transfer(50, 51));
        assert_eq!(longest_chain(&txs), 10);
        // Eight token transfers to one holder: one chain.
        let txs: Vec<_> = (1..=8).map(|i| token_transfer(i, 99, 5)).collect();
        assert_eq!(longest_chain(&txs), 8);
        // A call without value does not touch the callee's balance.
        let txs: Vec<_> = (1..=8)
            .map(|i| TxEnv {
                value: U256::ZERO,
                ..transfer(i, 99)
            })
            .collect();
        assert_eq!(longest_chain(&txs), 1);
    }

    #[test]
    fn a_payment_to_a_chain_member_joins_the_longer_branch() {
        // 1 pays 2 (depth 1), 4 pays 3 (depth 1), 2 pays 3 (depth 2): 3's
        // own transaction follows the deeper payment (depth 3), 5's follows it.
        let txs = vec![
            transfer(1, 2),
            transfer(4, 3),
            transfer(2, 3),
            transfer(3, 5),
            transfer(5, 6),
        ];
        assert_eq!(longest_chain(&txs), 4);
    }
}

#[cfg(test)]
mod early_exit_tests {
    use super::*;

    #[test]
    fn the_early_answers_agree_with_the_full_count() {
        // A chain of 6 through value flow inside 10 transactions.
        let mut txs: Vec<TxEnv> = (1..=6u8)
            .map(|i| TxEnv {
                caller: Address::repeat_byte(i),
                kind: TxKind::Call(Address::repeat_byte(i + 1)),
                value: alloy_primitives::U256::from(1),
                ..Default::default()
            })
            .collect();
        txs.extend((0..4u8).map(|i| TxEnv {
            caller: Address::repeat_byte(100 + i),
            kind: TxKind::Call(Address::repeat_byte(200 + i)),
            value: alloy_primitives::U256::from(1),
            ..Default::default()
        }));
        for limit in 0..=10 {
            assert_eq!(chain_exceeds(&txs, limit), limit < 6, "limit {limit}");
        }
    }
}

#[cfg(test)]
mod early_look_tests {
    use super::*;
    use alloy_primitives::U256;

    fn pay(from: u64, to: u64) -> TxEnv {
        let address = |i: u64| Address::left_padding_from(&(0x5000_0000 + i).to_be_bytes());
        TxEnv {
            caller: address(from),
            kind: TxKind::Call(address(to)),
            value: U256::from(1),
            ..Default::default()
        }
    }

    #[test]
    fn large_blocks_are_judged_on_their_start_only_when_it_is_a_chain() {
        let n = 4_000u64;
        // One chain from start to end: serial, and the prefix says so.
        let chain: Vec<_> = (0..n).map(|i| pay(i, i + 1)).collect();
        assert!(looks_serial(&chain));
        // A chain over the first eighth only, independent after: the early
        // look calls it serial (the documented trade-off)...
        let mut mixed: Vec<_> = (0..n / 8).map(|i| pay(i, i + 1)).collect();
        mixed.extend((0..n - n / 8).map(|i| pay(10_000 + 2 * i, 10_001 + 2 * i)));
        assert!(looks_serial(&mixed));
        assert!(!chain_exceeds(&mixed, mixed.len() * 2 / 3));
        // ...while independent transactions never are, nor a small block
        // that starts with a chain.
        let independent: Vec<_> = (0..n).map(|i| pay(2 * i, 2 * i + 1)).collect();
        assert!(!looks_serial(&independent));
        let mut small: Vec<_> = (0..100).map(|i| pay(i, i + 1)).collect();
        small.extend((0..900).map(|i| pay(10_000 + 2 * i, 10_001 + 2 * i)));
        assert!(!looks_serial(&small));
    }
}

#[cfg(test)]
mod payout_tests {
    use super::*;
    use crate::choose::independence::independence;
    use parevm_testkit::gen::{random_block, GenParams};
    use parevm_testkit::parevm::Storage as _;

    /// Where the payout shortcut answers, the passes `auto` runs without it
    /// give the same path: the block is not independent, looks serial and
    /// not commutative, and looks serial beyond deposits exactly when the
    /// shortcut says "sequential". Checked on random payout blocks (both
    /// answers occur) and on other random blocks (no answer).
    #[test]
    fn the_payout_shortcut_agrees_with_the_passes() {
        let mut answers = [0usize; 2];
        for seed in 0..60u64 {
            for (txs, payout_percent) in [(200, 100), (1_100, 100), (300, 0)] {
                let params = GenParams {
                    txs,
                    accounts: 2 + (seed % 6) as usize,
                    invalid_percent: 0,
                    payout_percent,
                };
                let (storage, input) = random_block(seed, &params);
                let has_code = |address: &Address| {
                    storage.account(address).ok().flatten().is_some_and(|a| {
                        a.code_hash != revm::primitives::KECCAK_EMPTY && !a.code_hash.is_zero()
                    })
                };
                let beneficiary = input.block.beneficiary;
                let Some(chunks) = payout_path(&input.txs) else {
                    continue;
                };
                answers[usize::from(chunks)] += 1;
                let label = format!("seed {seed}, {txs} txs");
                assert!(
                    independence(&input.txs, beneficiary, has_code, 1).is_none(),
                    "{label}"
                );
                assert!(looks_serial(&input.txs), "{label}");
                assert!(!looks_commutative(&input.txs), "{label}");
                assert_eq!(
                    looks_serial_beyond_deposits(&input.txs, beneficiary, has_code),
                    !chunks,
                    "{label}"
                );
            }
        }
        assert!(answers[0] > 10 && answers[1] > 10, "{answers:?}");
    }

    #[test]
    fn blocks_of_mostly_transfers_are_told_apart() {
        let transfer = TxEnv::default();
        let call = TxEnv {
            data: alloy_primitives::Bytes::from_static(&[1, 2, 3, 4]),
            ..TxEnv::default()
        };
        let create = TxEnv {
            kind: TxKind::Create,
            ..TxEnv::default()
        };
        let block = |transfers: usize, calls: usize, creates: usize| -> Vec<TxEnv> {
            let mut txs = vec![transfer.clone(); transfers];
            txs.extend(vec![call.clone(); calls]);
            txs.extend(vec![create.clone(); creates]);
            txs
        };
        // 10 of 176 carry calldata or create: mostly transfers.
        assert!(mostly_transfers(&block(166, 8, 2), 24));
        // As many calls, but they are most of the block.
        assert!(!mostly_transfers(&block(14, 8, 2), 24));
        // A quarter exactly is not fewer than a quarter.
        assert!(!mostly_transfers(&block(30, 10, 0), 24));
        // Enough code in absolute terms, however many transfers.
        assert!(!mostly_transfers(&block(1_000, 20, 4), 24));
        assert!(mostly_transfers(&block(1_000, 20, 3), 24));
    }

    #[test]
    fn the_dominant_sender_is_found_or_not() {
        let tx = |from: u8| TxEnv {
            caller: Address::with_last_byte(from),
            ..Default::default()
        };
        let txs: Vec<TxEnv> = [1, 2, 1, 1, 3, 1, 1].map(tx).into();
        assert_eq!(dominant_sender(&txs), Some(Address::with_last_byte(1)));
        // Four of eight: not more than two thirds.
        let txs: Vec<TxEnv> = [1, 2, 1, 1, 3, 1, 4, 5].map(tx).into();
        assert_eq!(dominant_sender(&txs), None);
        assert_eq!(dominant_sender(&[]), None);
    }
}
