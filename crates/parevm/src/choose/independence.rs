//! Whether a block looks independent: no two transactions share a sender,
//! a recipient of value, a calldata address or a (contract, selector) of a
//! call without addresses, except for the accounts the chunks predict.

use alloy_primitives::Address;
use revm::context::TxEnv;
use revm::primitives::TxKind;
use rustc_hash::FxHashMap;

use super::look::{address_arguments, digest, prefix};
use crate::input::{is_plain_transfer, PLAIN_TRANSFER_GAS};

/// What [`independence`] learnt of an independent-looking block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Independent {
    /// Some account sends or receives more than once, and the first time
    /// in a plain transfer: the chunks may have accounts to predict
    /// (without one, `chunks::flows::AccountFlows` could predict none).
    pub(crate) repeats: bool,
}

/// What the pass of [`independence`] knows of one account.
#[derive(Clone, Copy)]
struct Role {
    /// The transaction that last made the account a key (`NO_TX`: none):
    /// a second transaction that does is a shared key. One transaction
    /// may name an account twice.
    key_of: u32,
    /// Transactions sent so far, and whether all were payouts (plain
    /// transfers with a gas limit of exactly 21,000).
    sent: u32,
    all_payouts: bool,
    /// Plain transfers that paid it.
    paid: u32,
    /// Called with anything but a plain transfer.
    called: bool,
    /// Transactions it sent or received (a call to oneself counts once),
    /// as `chunks::flows::AccountFlows` counts them, and whether the first was a
    /// plain transfer.
    parties: u32,
    first_plain: bool,
}

const NO_TX: u32 = u32::MAX;

const FRESH: Role = Role {
    key_of: NO_TX,
    sent: 0,
    all_payouts: false,
    paid: 0,
    called: false,
    parties: 0,
    first_plain: false,
};

/// Whether the transactions look like they touch disjoint state, judged
/// more strictly than the chains of [`looks_serial`]: a wrong "yes" costs
/// the rest of a chunk, a wrong "no" only the cheaper path. No two
/// transactions may share any of these keys: the sender; the recipient of
/// value; any address argument in the calldata (a hot recipient, a shared
/// pool, a payment to a later sender); for a call without address
/// arguments, the contract and the function selector (the same operation
/// on the same contract, like deposits into one pool). Stops at the first
/// repeated key.
///
/// Two exceptions, for accounts that chunks predict from the plain
/// transfers before them (`chunks` module docs), never the `beneficiary`
/// (whose fee credits are not predicted):
/// - a sender whose transactions are all plain transfers with a gas limit
///   of exactly 21,000 (exchange payouts) may send many: with that limit a
///   transfer costs 21,000 gas whoever receives it;
/// - an account paid only by plain transfers (an exchange's deposit
///   address) may be paid many times, if it has no code (`has_code`,
///   asked of the pre-block state for accounts paid more than once), and
///   no other key names it: it sends nothing and no calldata mentions it.
///
/// `Some` when the block looks independent, telling also whether accounts
/// repeat ([`Independent`]). Every rule is about one account (or one
/// (contract, selector) pair) at a time, so the pass is split by account
/// over `parts` threads: each scans the whole block but keeps only the
/// accounts whose hash falls in its part; the block looks independent if
/// every part says so. (A part that panics, a bug, only costs the cheaper
/// path: the answer is no.)
pub(crate) fn independence(
    txs: &[TxEnv],
    beneficiary: Address,
    has_code: impl Fn(&Address) -> bool + Sync,
    parts: usize,
) -> Option<Independent> {
    // Every rule says "no" for a pair of transactions or for one account's
    // transactions, and each transaction adds to an account's record (sent,
    // paid, named, called) without taking anything away: a prefix that
    // breaks a rule, the whole block breaks it too.
    if let Some(prefix) = prefix(txs) {
        independence_part(prefix, beneficiary, &has_code, 0, 1)?;
    }
    let parts = parts.max(1);
    let answers = crate::pool::fan_out(parts, |part| {
        independence_part(txs, beneficiary, &has_code, part, parts)
    })
    .ok()?;
    let mut repeats = false;
    for answer in answers {
        repeats |= answer?.repeats;
    }
    Some(Independent { repeats })
}

/// One part of [`independence`]: the accounts whose hash is `part`
/// modulo `parts`.
///
/// Every rule is about an account that two transactions share (or one
/// transaction names twice), so the pass first notes, in a set of 64-bit
/// digests, which of its accounts appear more than once
/// ([`repeated_accounts`]); that set is a quarter the size of a map of
/// roles and stays in cache, where inserting every account of a large
/// block into the map missed it on most inserts. Only the repeated
/// accounts (and any that share a digest with one) then get a role
/// ([`assign_roles`]); a block without them is done after the first scan.
fn independence_part(
    txs: &[TxEnv],
    beneficiary: Address,
    has_code: &impl Fn(&Address) -> bool,
    part: usize,
    parts: usize,
) -> Option<Independent> {
    let again = repeated_accounts(txs, beneficiary, part, parts)?;
    if again.is_empty() {
        return Some(Independent { repeats: false });
    }
    assign_roles(txs, beneficiary, has_code, again.len(), |address| {
        again.contains(&digest(address))
    })
}

/// Whether a digest (of an account, or of a (contract, selector) pair)
/// falls in `part` of `parts`.
fn in_part(digest: u64, part: usize, parts: usize) -> bool {
    parts == 1 || (digest as usize) % parts == part
}

/// The first scan of [`independence_part`]: the digests of the part's
/// accounts that the block names more than once, or `None` when a check
/// about one transaction or one (contract, selector) pair already fails.
fn repeated_accounts(
    txs: &[TxEnv],
    beneficiary: Address,
    part: usize,
    parts: usize,
) -> Option<rustc_hash::FxHashSet<u64>> {
    let mut seen: rustc_hash::FxHashSet<u64> =
        rustc_hash::FxHashSet::with_capacity_and_hasher(2 * txs.len() / parts, Default::default());
    let mut again: rustc_hash::FxHashSet<u64> = rustc_hash::FxHashSet::default();
    let mut entries: rustc_hash::FxHashSet<u64> = rustc_hash::FxHashSet::default();
    let mut note = |address: &Address| {
        let d = digest(address);
        if in_part(d, part, parts) && !seen.insert(d) {
            again.insert(d);
        }
    };
    for tx in txs {
        let plain = tx.caller != beneficiary && is_plain_transfer(tx);
        note(&tx.caller);
        let TxKind::Call(to) = tx.kind else { continue };
        // A plain transfer to oneself is paid by the transaction it sends.
        if plain && to == tx.caller {
            return None;
        }
        note(&to);
        if plain && to != beneficiary {
            continue;
        }
        let mut arguments = false;
        for address in address_arguments(&tx.data) {
            arguments = true;
            note(&address);
        }
        // The same operation on the same contract (deposits into one
        // pool) without an address to tell the callers apart.
        if !arguments {
            let selector = tx.data.get(..4).unwrap_or_default();
            let entry =
                std::hash::BuildHasher::hash_one(&rustc_hash::FxBuildHasher, (to, selector));
            if in_part(entry, part, parts) && !entries.insert(entry) {
                return None;
            }
        }
    }
    Some(again)
}

/// The second scan of [`independence_part`]: the rules about shared
/// accounts, applied to the accounts `mine` selects (about `capacity` of
/// them). The checks of [`repeated_accounts`] are not repeated here.
fn assign_roles(
    txs: &[TxEnv],
    beneficiary: Address,
    has_code: &impl Fn(&Address) -> bool,
    capacity: usize,
    mine: impl Fn(&Address) -> bool,
) -> Option<Independent> {
    let mut roles: FxHashMap<Address, Role> =
        FxHashMap::with_capacity_and_hasher(capacity, Default::default());
    let mut repeats = false;
    // Makes the account a key of transaction `i`; false if another
    // transaction made it one.
    let make_key = |role: &mut Role, i: u32| {
        let shared = role.key_of != NO_TX && role.key_of != i;
        role.key_of = i;
        !shared
    };
    let party = |role: &mut Role, plain: bool, repeats: &mut bool| {
        if role.parties == 0 {
            role.first_plain = plain;
        }
        role.parties += 1;
        *repeats |= role.parties > 1 && role.first_plain;
    };
    for (i, tx) in txs.iter().enumerate() {
        let i = u32::try_from(i).ok()?;
        let transfer = is_plain_transfer(tx);
        let plain = tx.caller != beneficiary && transfer;
        let payout = plain && tx.gas_limit == PLAIN_TRANSFER_GAS;
        let to = match tx.kind {
            TxKind::Call(to) => Some(to),
            TxKind::Create => None,
        };
        // The sender (one lookup): a payout after payouts is predicted by
        // the chunks; any other repeat shares the sender key with the
        // first; an account paid by plain transfers before passes value on.
        if mine(&tx.caller) {
            let sender = roles.entry(tx.caller).or_insert(FRESH);
            let is_key = sender.sent == 0 || !(sender.all_payouts && payout);
            sender.all_payouts = if sender.sent == 0 {
                payout
            } else {
                sender.all_payouts && payout
            };
            sender.sent += 1;
            party(sender, transfer, &mut repeats);
            if sender.paid > 0 || (is_key && !make_key(sender, i)) {
                return None;
            }
        }
        let Some(to) = to else { continue };
        // The recipient (one lookup).
        if mine(&to) {
            let recipient = roles.entry(to).or_insert(FRESH);
            if to != tx.caller {
                party(recipient, transfer, &mut repeats);
            }
            if plain && to != beneficiary {
                // Named by an earlier key (it sent, or calldata named it).
                if recipient.key_of != NO_TX {
                    return None;
                }
                recipient.paid += 1;
            } else {
                recipient.called = true;
                if !tx.value.is_zero() && !make_key(recipient, i) {
                    return None;
                }
            }
        }
        if plain && to != beneficiary {
            continue;
        }
        for address in address_arguments(&tx.data) {
            if !mine(&address) {
                continue;
            }
            // A shared key, or an account paid before named again.
            let named = roles.entry(address).or_insert(FRESH);
            if named.paid > 0 || !make_key(named, i) {
                return None;
            }
        }
    }
    // A recipient of plain transfers shares nothing if no key names it,
    // and, when paid more than once, if its code does not run.
    roles
        .iter()
        .filter(|(_, role)| role.paid > 0)
        .all(|(to, role)| {
            role.key_of == NO_TX && (role.paid == 1 || (!role.called && !has_code(to)))
        })
        .then_some(Independent { repeats })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choose::chains::{looks_serial, looks_serial_beyond_deposits};
    use crate::test_txs::{addr, token_transfer, transfer};

    /// Whether [`independence`] says yes, split in three so that the tests
    /// cover the partitioned pass.
    fn looks_independent(
        txs: &[TxEnv],
        beneficiary: Address,
        has_code: impl Fn(&Address) -> bool + Sync,
    ) -> bool {
        independence(txs, beneficiary, has_code, 3).is_some()
    }
    use alloy_primitives::{Bytes, U256};

    /// `pool.deposit(amount)`: no address argument.
    fn deposit(from: u8, pool: u8, amount: u64) -> TxEnv {
        let mut data = vec![0xb6, 0xb5, 0x5f, 0x25];
        data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
        TxEnv {
            caller: addr(from),
            kind: TxKind::Call(addr(pool)),
            data: Bytes::from(data),
            ..Default::default()
        }
    }

    #[test]
    fn independence_needs_disjoint_senders_recipients_and_entries() {
        let independent: Vec<_> = (0..10)
            .map(|i| token_transfer(i, 100 + i, 5))
            .chain((0..10).map(|i| transfer(20 + i, 120 + i)))
            .chain((0..10).map(|i| deposit(40 + i, 140 + i, 5)))
            .collect();
        let nobody = addr(0xfe);
        assert!(looks_independent(&independent, nobody, |_| true));
        assert!(looks_independent(&[], nobody, |_| true));
        // Equal amounts are not a shared address.
        let amounts: Vec<_> = (0..10)
            .map(|i| token_transfer(i, 100 + i, 1 << 40))
            .collect();
        assert!(looks_independent(&amounts, nobody, |_| true));
        let shared = [
            // One sender twice, not only plain transfers.
            vec![transfer(1, 50), token_transfer(1, 51, 5)],
            vec![token_transfer(1, 51, 5), transfer(1, 50)],
            // A sender of plain transfers that is paid in between.
            vec![transfer(1, 50), transfer(2, 1), transfer(1, 51)],
            // A recipient of value that sends later.
            vec![transfer(1, 50), transfer(50, 51)],
            // One token recipient (a hot account), in any argument.
            vec![token_transfer(1, 50, 5), token_transfer(2, 50, 6)],
            // Paid in calldata, sends later.
            vec![token_transfer(1, 50, 5), transfer(50, 60)],
            // The same operation on the same contract without addresses.
            vec![deposit(1, 70, 5), deposit(2, 70, 6)],
            // Two payments to one account.
            vec![transfer(1, 50), transfer(2, 50)],
        ];
        for txs in shared {
            assert!(!looks_independent(&txs, nobody, |_| true), "{txs:?}");
        }
        // The same operation on two contracts.
        assert!(looks_independent(
            &[deposit(1, 70, 5), deposit(2, 71, 5)],
            nobody,
            |_| true
        ));
        // Payouts: one sender of plain transfers, many times; not when it
        // is the beneficiary.
        let payout = |from, to| TxEnv {
            gas_limit: PLAIN_TRANSFER_GAS,
            ..transfer(from, to)
        };
        let payouts = [payout(1, 50), payout(2, 60), payout(1, 51)];
        assert!(looks_independent(&payouts, nobody, |_| true));
        // Deposits to one account make a chain, but chunks predict the
        // account: serial, not beyond deposits. Unless it has code, or is
        // the beneficiary, or a sender repeats.
        let deposits: Vec<_> = (0..12).map(|i| payout(i, 99)).collect();
        assert!(looks_serial(&deposits));
        assert!(!looks_serial_beyond_deposits(&deposits, nobody, |_| false));
        assert!(looks_serial_beyond_deposits(&deposits, nobody, |a| *a == addr(99)));
        assert!(looks_serial_beyond_deposits(&deposits, addr(99), |_| false));
        let one_payer: Vec<_> = (0..12).map(|i| payout(1, 100 + i)).collect();
        assert!(looks_serial_beyond_deposits(&one_payer, nobody, |_| false));
        // Value passed along (each recipient pays the next): not deposits.
        let chain: Vec<_> = (0..12).map(|i| payout(i, i + 1)).collect();
        assert!(looks_serial_beyond_deposits(&chain, nobody, |_| false));
        // Whether an account repeats after a plain transfer (the chunks
        // then have accounts to predict), however the pass is split.
        let distinct: Vec<_> = (0..10).map(|i| transfer(i, 100 + i)).collect();
        let tokens: Vec<_> = (0..10).map(|i| token_transfer(i, 100 + i, 5)).collect();
        for parts in [1, 2, 3, 7] {
            let repeats = |txs: &[TxEnv]| {
                independence(txs, nobody, |_| true, parts).map(|answer| answer.repeats)
            };
            assert_eq!(repeats(&payouts), Some(true), "{parts}");
            assert_eq!(repeats(&distinct), Some(false), "{parts}");
            // One token contract, called every time: nothing to predict.
            assert_eq!(repeats(&tokens), Some(false), "{parts}");
        }
        assert!(!looks_independent(&payouts, addr(1), |_| true));
        // A higher gas limit may pay a contract, at an unknown cost.
        let generous = [payout(1, 50), transfer(1, 51)];
        assert!(!looks_independent(&generous, nobody, |_| true));
        // Deposits: many plain transfers to one account without code that
        // never sends; not when it has code, sends, is the beneficiary, or
        // one of the payments is a call.
        let deposits = [transfer(1, 50), transfer(2, 50), transfer(3, 50)];
        assert!(looks_independent(&deposits, nobody, |_| false));
        assert!(!looks_independent(&deposits, nobody, |a| *a == addr(50)));
        assert!(!looks_independent(&deposits, addr(50), |_| false));
        let called = [transfer(1, 50), deposit(2, 50, 5), transfer(3, 50)];
        assert!(!looks_independent(&called, nobody, |_| false));
        let named = [transfer(1, 50), token_transfer(2, 50, 5), transfer(3, 50)];
        assert!(!looks_independent(&named, nobody, |_| false));
        // A deposit address that pays out too: its account is predicted,
        // but auto keeps to deposit addresses that only receive.
        let spends = [transfer(1, 50), transfer(2, 50), transfer(50, 60)];
        assert!(!looks_independent(&spends, nobody, |_| false));
        // A chain of plain transfers, each recipient paying the next.
        let chain: Vec<_> = (1..20).map(|i| transfer(i, i + 1)).collect();
        assert!(!looks_independent(&chain, nobody, |_| false));
        // Paid once, by a plain transfer: no code lookup needed.
        let once = [transfer(1, 50), transfer(2, 51)];
        assert!(looks_independent(&once, nobody, |_| true));
    }
}

#[cfg(test)]
mod two_scan_tests {
    //! The two-scan pass against the same rules applied to every account
    //! (the one-map pass it replaced): skipping the accounts that appear
    //! once must not change an answer.
    use super::*;
    use crate::choose::chains::{commutative, looks_commutative};
    use crate::choose::look::{digest, EARLY_LOOK_MIN};
    use crate::input::BlockInput;
    use alloy_primitives::{Bytes, U256};
    use proptest::prelude::*;

    /// The pass without its shortcut: every account of the part gets a
    /// role, as before the first scan learnt which ones repeat.
    fn reference(
        txs: &[TxEnv],
        beneficiary: Address,
        has_code: &impl Fn(&Address) -> bool,
        parts: usize,
    ) -> Option<Independent> {
        let mut repeats = false;
        for part in 0..parts {
            repeated_accounts(txs, beneficiary, part, parts)?;
            let every = |address: &Address| in_part(digest(address), part, parts);
            repeats |= assign_roles(txs, beneficiary, has_code, 0, every)?.repeats;
        }
        Some(Independent { repeats })
    }

    /// A transaction over a pool of `accounts` addresses (0 is the
    /// beneficiary): a plain transfer (a payout when `payout`), a call
    /// naming an address, a call without arguments, or a create.
    fn tx(kind: u8, from: u8, to: u8, arg: u8, payout: bool) -> TxEnv {
        let address = |i: u8| Address::repeat_byte(i.wrapping_add(1));
        let mut tx = TxEnv {
            caller: address(from),
            kind: TxKind::Call(address(to)),
            value: U256::from(u64::from(arg % 2)),
            gas_limit: if payout { PLAIN_TRANSFER_GAS } else { 50_000 },
            ..Default::default()
        };
        match kind % 4 {
            0 => tx.value = U256::from(1),
            1 => {
                let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
                data.extend_from_slice(&[0; 12]);
                data.extend_from_slice(address(arg).as_slice());
                data.extend_from_slice(&U256::from(7).to_be_bytes::<32>());
                tx.data = Bytes::from(data);
            }
            2 => tx.data = Bytes::from(vec![0x12, 0x34, 0x56, arg % 3]),
            _ => tx.kind = TxKind::Create,
        }
        tx
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn two_scans_answer_as_one_map_did(
            // Over 24 accounts, blocks of up to 10 transactions share an
            // account now and then: both answers occur often.
            shape in prop::collection::vec((0u8..4, 0u8..24, 0u8..24, 0u8..24, any::<bool>()), 1..10),
            parts in 1usize..4,
            coded in any::<u16>(),
        ) {
            let txs: Vec<TxEnv> = shape
                .iter()
                .map(|&(kind, from, to, arg, payout)| tx(kind, from, to, arg, payout))
                .collect();
            let beneficiary = Address::repeat_byte(1);
            // Some accounts have code, chosen by the bits of `coded`.
            let has_code = |a: &Address| (coded >> (a[0] % 16)) & 1 == 1;
            prop_assert_eq!(
                independence(&txs, beneficiary, has_code, parts),
                reference(&txs, beneficiary, &has_code, parts)
            );
        }

        /// What lets large blocks be turned down on their first eighth
        /// (`prefix`): a prefix that is not independent (or not
        /// commutative), the whole block is not either.
        #[test]
        fn a_prefix_that_breaks_a_rule_breaks_it_for_the_block(
            shape in prop::collection::vec((0u8..4, 0u8..24, 0u8..24, 0u8..24, any::<bool>()), 1..14),
            cut in any::<prop::sample::Index>(),
            coded in any::<u16>(),
        ) {
            let txs: Vec<TxEnv> = shape
                .iter()
                .map(|&(kind, from, to, arg, payout)| tx(kind, from, to, arg, payout))
                .collect();
            let start = &txs[..cut.index(txs.len() + 1)];
            let beneficiary = Address::repeat_byte(1);
            let has_code = |a: &Address| (coded >> (a[0] % 16)) & 1 == 1;
            if reference(start, beneficiary, &has_code, 1).is_none() {
                prop_assert!(reference(&txs, beneficiary, &has_code, 1).is_none());
            }
            if !commutative(start) {
                prop_assert!(!commutative(&txs));
            }
        }
    }

    /// On blocks large enough to be judged on their prefix, the passes
    /// answer as they do without it: every workload at every preset, and
    /// random blocks (both answers occur).
    #[test]
    fn large_blocks_answer_as_without_the_prefix() {
        use parevm_testkit::gen::{random_block, GenParams};
        use parevm_testkit::workload::{Preset, Size, WorkloadKind, WorkloadSpec};
        let txs = EARLY_LOOK_MIN + 100;
        let mut blocks = Vec::new();
        for kind in WorkloadKind::ALL {
            for preset in [
                Preset::Independent,
                Preset::HotRecipient,
                Preset::HotPool,
                Preset::Chained,
            ] {
                if preset.applies_to(kind) {
                    let spec = WorkloadSpec::preset(kind, preset, Size::Txs(txs));
                    blocks.push(BlockInput::from_kit(spec.build().expect("workload").input));
                }
            }
        }
        for seed in 0..4 {
            let params = GenParams {
                txs,
                ..GenParams::default()
            };
            blocks.push(BlockInput::from_kit(random_block(seed, &params).1));
        }
        let mut answers = [[0usize; 2]; 2];
        for input in &blocks {
            let beneficiary = input.block.beneficiary;
            let full = independence_part(&input.txs, beneficiary, &|_| false, 0, 1);
            answers[0][usize::from(full.is_some())] += 1;
            assert_eq!(independence(&input.txs, beneficiary, |_| false, 2), full);
            let commutes = commutative(&input.txs);
            answers[1][usize::from(commutes)] += 1;
            assert_eq!(looks_commutative(&input.txs), commutes);
        }
        for answer in answers {
            assert!(answer[0] > 0 && answer[1] > 0, "{answers:?}");
        }
    }
}
