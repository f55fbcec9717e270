//! A cheap look at a block before executing it: how long is its longest
//! chain of transactions that must run one after another?
//!
//! `auto` mode uses the answer to pick a path. A block whose longest chain
//! is most of the block cannot gain from Block-STM (the chain runs serially
//! anyway, and every conflict costs an abort), so it goes straight to the
//! sequential loop instead of discovering the chain through wasted
//! executions. The prediction only chooses a path; results never depend on
//! it, and blocks it misses are still caught by the give-up rule of the
//! executor.
//!
//! Three kinds of edges are predicted, all from the transactions alone
//! (no state access):
//! - **nonce chains**: a transaction follows the previous one of its sender;
//! - **value flow**: a transaction follows the latest earlier transaction
//!   that paid its sender, either as the recipient of a value transfer or
//!   as an address argument in the calldata (an ERC-20 `transfer(to,
//!   amount)`, a swap's recipient). Any calldata word shaped like an address
//!   counts (see `address_arguments` for how amounts are told apart);
//! - **shared recipients**: two transfers of value to the same account both
//!   update its balance; two calls to the same contract whose first address
//!   argument is the same (`transfer(hot, ..)` on one token, swaps on one
//!   pool) most likely update the same entry of that contract's state.
//!
//! The last kind is a guess about contracts, but a guess that errs only
//! one way: a block predicted serial that was not runs sequentially and
//! loses its parallel speedup, never correctness, and only when the
//! predicted chain is most of the block.
//!
//! The other answer `auto` uses: a block with *no* predicted edge at all
//! goes to optimistic chunks (`chunked`), which pay nothing per
//! transaction for conflict tracking but lose the rest of a chunk to one
//! unpredicted conflict.

use alloy_primitives::Address;
use revm::context::TxEnv;
use revm::primitives::TxKind;
use std::hash::BuildHasher;

use rustc_hash::FxHashMap;

/// Calldata words scanned per transaction for address arguments; enough
/// for the arguments of common calls without scanning large payloads.
const MAX_WORDS: usize = 16;

/// Payout blocks (one sender's plain transfers) at least this large run
/// as chunks (`looks_serial_beyond_deposits`).
const PAYOUT_CHUNKS_MIN: usize = 1_024;

/// Blocks at least this large may be judged serial on their first eighth,
/// and are judged not independent or not commutative on it when it is
/// not ([`prefix`]).
const EARLY_LOOK_MIN: usize = 2_048;

/// The first eighth of a large block. The passes that say "no" as soon
/// as any part of the block breaks one of their rules ([`independence`],
/// [`looks_commutative`]) look at it first: a block that breaks a rule
/// there breaks it as a whole. On a block that then runs sequentially (a
/// dependency chain) the whole pass cost 2-4% of the sequential run; an
/// independent block pays an eighth more.
fn prefix(txs: &[TxEnv]) -> Option<&[TxEnv]> {
    (txs.len() >= EARLY_LOOK_MIN).then(|| &txs[..txs.len() / 8])
}

/// A transaction is a head-start candidate when its gas limit is at least
/// `1 / (HEAD_START_SHARE * threads)` of the block's.
const HEAD_START_SHARE: u128 = 8;

/// The transactions Block-STM should start first (`scheduler` module
/// docs, "Head start"), heaviest first: those that, in block order, would
/// start so late that they would still run after the others are done.
///
/// In block order on `threads` workers a transaction starts when about
/// `before / threads` of the block's work is done (`before`: the work of
/// the transactions ahead of it) and runs for its own work `w`; it ends
/// past the block's ideal end `total / threads` when
/// `before + w * threads > total`. Gas limits stand in for work: they
/// overstate it (by half for a typical wallet transaction), but the
/// heavy transactions of mainnet blocks are the ones with the large
/// limits. On the fixture blocks the transaction that took the longest
/// (37-56% of its block's sequential time on five blocks, one of them the
/// last of its block) was one of the three largest limits.
///
/// Only transactions that matter are picked, at least `1 / (8 * threads)`
/// of the block's gas limit, so that a block of more than `8 * threads`
/// similar transactions has none; at most `2 * threads`; none whose
/// sender sent before it in the block (`predecessors`: it would wait for
/// that transaction anyway).
pub(crate) fn head_start(
    txs: &[TxEnv],
    threads: usize,
    predecessors: &[Option<usize>],
) -> Vec<usize> {
    if threads < 2 {
        return Vec::new();
    }
    let work = |tx: &TxEnv| u128::from(tx.gas_limit.max(1));
    let total: u128 = txs.iter().map(work).sum();
    let t = threads as u128;
    let mut before = 0u128;
    let mut picked: Vec<(u64, usize)> = Vec::new();
    for (i, tx) in txs.iter().enumerate() {
        let w = work(tx);
        if w * HEAD_START_SHARE * t >= total
            && before + w * t > total
            && predecessors.get(i).copied().flatten().is_none()
        {
            picked.push((tx.gas_limit, i));
        }
        before += w;
    }
    picked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    picked.truncate(2 * threads);
    picked.into_iter().map(|(_, i)| i).collect()
}

/// Whether the block looks serial: its longest predicted chain is more than
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
/// account from the transfers before them (`chunked::AccountFlows`), so
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
/// code and used more gas than predicted (`chunked::account_shifts`), as
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

/// What [`independence`] learnt of an independent-looking block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Independent {
    /// Some account sends or receives more than once, and the first time
    /// in a plain transfer: the chunks may have accounts to predict
    /// (without one, `chunked::AccountFlows` could predict none).
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
    /// as `chunked::AccountFlows` counts them, and whether the first was a
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
/// transfers before them (`chunked` module docs), never the `beneficiary`
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
    let answers = crate::executor::fan_out(parts, |part| {
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
            let entry = rustc_hash::FxBuildHasher.hash_one((to, selector));
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

/// Whether the block's predicted dependencies all run through contract
/// entries shared by many senders, such as transfers of one token to one
/// holder: every sender is distinct, no account receives value twice or
/// receives value and sends, and no address argument is also a sender (a
/// swap that pays its own sender, value passed along a chain). Such
/// entries are often plain additions, which chunks that track deltas
/// (`deltas` module) run without conflict; the guess only picks the path.
pub(crate) fn looks_commutative(txs: &[TxEnv]) -> bool {
    // Each rule is about a pair of transactions (the prefix's senders are
    // the block's too): a prefix that breaks one, the block breaks it.
    if prefix(txs).is_some_and(|prefix| !commutative(prefix)) {
        return false;
    }
    commutative(txs)
}

/// [`looks_commutative`] on all of `txs`.
fn commutative(txs: &[TxEnv]) -> bool {
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

/// The gas of a plain transfer to an account without code.
pub(crate) const PLAIN_TRANSFER_GAS: u64 = 21_000;

/// A transaction that only moves value: a call with no calldata, access
/// list, blobs or authorizations. Sent to an account without code it costs
/// exactly the 21,000 gas of a transaction.
pub(crate) fn is_plain_transfer(tx: &TxEnv) -> bool {
    matches!(tx.kind, TxKind::Call(_))
        && tx.data.is_empty()
        && tx.access_list.is_empty()
        && tx.blob_hashes.is_empty()
        && tx.authorization_list.is_empty()
}

/// Whether the longest predicted dependency chain has more than `limit`
/// transactions.
#[cfg(test)]
fn chain_exceeds(txs: &[TxEnv], limit: usize) -> bool {
    scan(txs, limit, None, |_| false)
}

/// Whether the longest predicted chain has more than `limit` transactions,
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
            .map(|pair| rustc_hash::FxBuildHasher.hash_one(pair));
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

/// The number of transactions on the longest predicted dependency chain of
/// the block (0 for an empty block, 1 when nothing depends on anything).
#[cfg(test)]
fn longest_chain(txs: &[TxEnv]) -> usize {
    (0..=txs.len())
        .find(|&limit| !chain_exceeds(txs, limit))
        .unwrap_or(txs.len())
}

/// A 64-bit hash of an address.
fn digest(address: &Address) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(address)
}

/// The calldata words after the selector that look like an `address`, up
/// to [`MAX_WORDS`]: the ABI encoding leaves the top 12 bytes zero, and a
/// hash-derived address has a non-zero byte among its first four. The
/// second test tells addresses from amounts: token amounts stay below
/// 2^128 (a trillion tokens of 18 decimals is about 2^100), and two equal
/// amounts must not look like two payments to one address. Vanity
/// addresses with four leading zero bytes are missed, which only loses
/// an edge of the estimate.
fn address_arguments(data: &[u8]) -> impl Iterator<Item = Address> + '_ {
    data.get(4..)
        .unwrap_or_default()
        .chunks_exact(32)
        .take(MAX_WORDS)
        .filter(|word| word[..12].iter().all(|b| *b == 0) && word[12..16].iter().any(|b| *b != 0))
        .map(|word| Address::from_slice(&word[12..]))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn addr(i: u8) -> Address {
        Address::repeat_byte(i)
    }

    fn transfer(from: u8, to: u8) -> TxEnv {
        TxEnv {
            caller: addr(from),
            kind: TxKind::Call(addr(to)),
            value: U256::from(1),
            ..Default::default()
        }
    }

    /// `token.transfer(to, amount)` from `from`.
    fn token_transfer(from: u8, to: u8, amount: u64) -> TxEnv {
        let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
        data.extend_from_slice(&[0; 12]);
        data.extend_from_slice(addr(to).as_slice());
        data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
        TxEnv {
            caller: addr(from),
            kind: TxKind::Call(addr(0xee)),
            data: Bytes::from(data),
            ..Default::default()
        }
    }

    fn with_limit(from: u8, gas_limit: u64) -> TxEnv {
        TxEnv {
            gas_limit,
            ..transfer(from, 200)
        }
    }

    #[test]
    fn head_start_picks_heavy_transactions_that_would_start_late() {
        // Ten light transactions and a heavy one: at the end it would run
        // alone (picked); at the front it starts at once anyway.
        let mut txs: Vec<TxEnv> = (0..10).map(|i| with_limit(i, 100_000)).collect();
        txs.push(with_limit(50, 1_000_000));
        let none = vec![None; txs.len()];
        assert_eq!(head_start(&txs, 2, &none), vec![10]);
        assert_eq!(head_start(&txs, 1, &none), Vec::<usize>::new());
        let mut front = txs.clone();
        front.rotate_right(1);
        assert_eq!(head_start(&front, 2, &none), Vec::<usize>::new());
        // A block of many equal transactions has none to pick; on many
        // threads (more than an eighth of a transaction each) the last
        // ones, which in block order would start last, go first.
        let even: Vec<TxEnv> = (0..64).map(|i| with_limit(i, 100_000)).collect();
        for threads in [2, 4] {
            assert!(head_start(&even, threads, &vec![None; 64]).is_empty());
        }
        assert_eq!(
            head_start(&even, 16, &vec![None; 64]),
            (49..64).collect::<Vec<usize>>()
        );
        // A heavy transaction whose sender sent before it is not picked.
        let mut hinted = none.clone();
        hinted[10] = Some(3);
        assert!(head_start(&txs, 2, &hinted).is_empty());
        // Heaviest first.
        let mut many: Vec<TxEnv> = (0..40).map(|i| with_limit(i, 10_000)).collect();
        for (k, limit) in [
            (35, 300_000),
            (36, 500_000),
            (37, 400_000),
            (38, 200_000),
            (39, 600_000),
        ] {
            many[k] = with_limit(100 + k as u8, limit);
        }
        assert_eq!(
            head_start(&many, 16, &vec![None; 40]),
            vec![39, 36, 37, 35, 38]
        );
        assert_eq!(head_start(&many, 2, &vec![None; 40]), vec![39]);
    }

    #[test]
    fn independent_transfers_have_no_chain() {
        let txs: Vec<_> = (0..10).map(|i| transfer(i, 100 + i)).collect();
        assert_eq!(longest_chain(&txs), 1);
        assert_eq!(longest_chain(&[]), 0);
    }

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
mod two_scan_tests {
    //! The two-scan pass against the same rules applied to every account
    //! (the one-map pass it replaced): skipping the accounts that appear
    //! once must not change an answer.
    use super::*;
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
        use crate::gen::{random_block, GenParams};
        use crate::workload::{Preset, Size, WorkloadKind, WorkloadSpec};
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
                    blocks.push(spec.build().expect("workload").input);
                }
            }
        }
        for seed in 0..4 {
            let params = GenParams {
                txs,
                ..GenParams::default()
            };
            blocks.push(random_block(seed, &params).1);
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

#[cfg(test)]
mod payout_tests {
    use super::*;
    use crate::gen::{random_block, GenParams};
    use crate::storage::Storage;

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
