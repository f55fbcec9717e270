//! What the passes look at: calldata words shaped like addresses, account
//! digests, and the first eighth of a large block.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use alloy_primitives::Address;
use revm::context::TxEnv;

/// Calldata words scanned per transaction for address arguments; enough
/// for the arguments of common calls without scanning large payloads.
pub(crate) const MAX_WORDS: usize = 16;

/// Blocks at least this large may be judged serial on their first eighth,
/// and are judged not independent or not commutative on it when it is
/// not ([`prefix`]).
pub(crate) const EARLY_LOOK_MIN: usize = 2_048;

/// The first eighth of a large block. The passes that say "no" as soon
/// as any part of the block breaks one of their rules ([`independence`],
/// [`looks_commutative`]) look at it first: a block that breaks a rule
/// there breaks it as a whole. On a block that then runs sequentially (a
/// dependency chain) the whole pass cost 2-4% of the sequential run; an
/// independent block pays an eighth more.
pub(crate) fn prefix(txs: &[TxEnv]) -> Option<&[TxEnv]> {
    (txs.len() >= EARLY_LOOK_MIN).then(|| &txs[..txs.len() / 8])
}

/// A 64-bit hash of an address.
pub(crate) fn digest(address: &Address) -> u64 {
    FxBuildHasher.hash_one(address)
}

/// The calldata words after the selector that look like an `address`, up
/// to [`MAX_WORDS`]: the ABI encoding leaves the top 12 bytes zero, and a
/// hash-derived address has a non-zero byte among its first four. The
/// second test tells addresses from amounts: token amounts stay below
/// 2^128 (a trillion tokens of 18 decimals is about 2^100), and two equal
/// amounts must not look like two payments to one address. Vanity
/// addresses with four leading zero bytes are missed, which only loses
/// an edge of the estimate.
pub(crate) fn address_arguments(data: &[u8]) -> impl Iterator<Item = Address> + '_ {
    data.get(4..)
        .unwrap_or_default()
        .chunks_exact(32)
        .take(MAX_WORDS)
        .filter(|word| word[..12].iter().all(|b| *b == 0) && word[12..16].iter().any(|b| *b != 0))
        .map(|word| Address::from_slice(&word[12..]))
}
