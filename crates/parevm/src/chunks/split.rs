//! Splitting a block into chunks: initial boundaries of about equal gas
//! limit, and work stealing (an idle thread takes the back half of the
//! chunk with the most work left).

use std::sync::{Arc, Mutex};

use revm::context::TxEnv;

/// A chunk being executed: the range it still owns. Its owner claims one
/// transaction at a time from the front; an idle thread may take the back
/// half (see [`steal`]).
pub(super) struct Chunk {
    pub(super) start: usize,
    /// `(next, end)`: the next transaction to claim and the end of the range.
    pub(super) claim: Mutex<(usize, usize)>,
}

impl Chunk {
    pub(super) fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            claim: Mutex::new((start, end)),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, (usize, usize)> {
        self.claim.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next transaction of the range, if any is left.
    pub(super) fn claim_next(&self) -> Option<usize> {
        let mut claim = self.lock();
        let (next, end) = *claim;
        (next < end).then(|| {
            claim.0 += 1;
            next
        })
    }

    /// Gives up the rest of the range (after a failure).
    pub(super) fn close(&self) {
        let mut claim = self.lock();
        claim.1 = claim.0;
    }
}

/// Below this many unclaimed transactions a chunk is not split: each chunk
/// costs a check against every chunk before it.
pub(super) const MIN_STEAL: usize = 8;

/// Takes the back half of the chunk with the most unclaimed transactions,
/// as a new chunk, or `None` when no chunk has enough left.
pub(super) fn steal(chunks: &Mutex<Vec<Arc<Chunk>>>) -> Option<Arc<Chunk>> {
    let mut chunks = chunks.lock().unwrap_or_else(|p| p.into_inner());
    let mut claim = chunks
        .iter()
        .map(|chunk| chunk.lock())
        .max_by_key(|claim| claim.1.saturating_sub(claim.0))?;
    let left = claim.1.saturating_sub(claim.0);
    if left < MIN_STEAL {
        return None;
    }
    let middle = claim.0 + left / 2;
    let stolen = Arc::new(Chunk::new(middle, claim.1));
    claim.1 = middle;
    drop(claim);
    chunks.push(Arc::clone(&stolen));
    Some(stolen)
}

/// Chunk boundaries: `parts` contiguous ranges of about equal gas limit,
/// except that with `track` the first one gets [`FIRST_TRACKED_WEIGHT`]
/// halves of a share where the others get two.
///
/// Why: the first chunk never tracks deltas (it reads exact values), and a
/// tracked chunk runs every instruction through the inspector. On 8,000
/// ERC-20 transfers to one holder the first chunk ran 5.7-5.8 µs per
/// transaction and the tracked one 7.7-9.4 µs (the sequential loop
/// 5.1 µs). Stealing evens out the finishing times either way, but every
/// transaction the first chunk runs is one that is not tracked: a larger
/// first chunk shrinks the block's total work (by 2-3% there, within the
/// machine's noise).
pub(super) fn boundaries(txs: &[TxEnv], parts: usize, track: bool) -> Vec<usize> {
    let total: u128 = txs.iter().map(|tx| u128::from(tx.gas_limit.max(1))).sum();
    let first = if track { FIRST_TRACKED_WEIGHT } else { 2 };
    // Weights in halves of an equal share: the first part `first`, the
    // others 2 each.
    let weights = first + 2 * (parts as u128 - 1);
    let mut bounds = vec![0];
    let mut sum = 0u128;
    for (i, tx) in txs.iter().enumerate() {
        sum += u128::from(tx.gas_limit.max(1));
        // Parts wholly before the next boundary, by weight.
        let before = first + 2 * (bounds.len() as u128 - 1);
        if bounds.len() < parts && sum * weights >= total * before && i + 1 < txs.len() {
            bounds.push(i + 1);
        }
    }
    bounds.push(txs.len());
    bounds.dedup();
    bounds
}

/// The first chunk's weight when the others track deltas, in halves of an
/// equal share (2 = equal): 3 gives it 60% of the gas on two threads and
/// 2.3% on 64.
pub(super) const FIRST_TRACKED_WEIGHT: u128 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(gas_limit: u64) -> TxEnv {
        TxEnv {
            gas_limit,
            ..Default::default()
        }
    }

    #[test]
    fn stealing_takes_the_back_half_of_the_largest_remainder() {
        let chunks = Mutex::new(vec![
            Arc::new(Chunk::new(0, 50)),
            Arc::new(Chunk::new(50, 100)),
        ]);
        let first = Arc::clone(&chunks.lock().expect("registry")[0]);
        let second = Arc::clone(&chunks.lock().expect("registry")[1]);
        // The first chunk has claimed 40 transactions, the second 10.
        for _ in 0..40 {
            first.claim_next();
        }
        for _ in 0..10 {
            second.claim_next();
        }
        let stolen = steal(&chunks).expect("40 left in the second chunk");
        assert_eq!((stolen.start, *stolen.lock()), (80, (80, 100)));
        assert_eq!(*second.lock(), (60, 80));
        // Now: 10 left in the first, 20 in the second, 20 in the stolen one.
        let again = steal(&chunks).expect("20 left");
        assert_eq!(*again.lock(), (again.start, again.start + 10));
        // A closed chunk has nothing to give; remainders under the minimum
        // stay with their owner.
        first.close();
        assert_eq!(first.claim_next(), None);
        for chunk in chunks.lock().expect("registry").iter() {
            loop {
                let (next, end) = *chunk.lock();
                if end - next < MIN_STEAL {
                    break;
                }
                chunk.claim_next();
            }
        }
        assert!(steal(&chunks).is_none());
        assert_eq!(chunks.lock().expect("registry").len(), 4);
    }

    #[test]
    fn boundaries_split_by_gas_and_cover_the_block() {
        let txs: Vec<TxEnv> = [100, 100, 100, 100].map(tx).into();
        assert_eq!(boundaries(&txs, 2, false), vec![0, 2, 4]);
        let txs: Vec<TxEnv> = [300, 100, 100, 100].map(tx).into();
        assert_eq!(boundaries(&txs, 2, false), vec![0, 1, 4]);
        assert_eq!(boundaries(&txs, 1, false), vec![0, 4]);
        // More parts than transactions: one transaction per part.
        let txs: Vec<TxEnv> = [1, 1].map(tx).into();
        assert_eq!(boundaries(&txs, 8, false), vec![0, 1, 2]);
        assert_eq!(boundaries(&[], 4, false), vec![0]);
        // Tracking: the untracked first chunk takes 3/5 of the gas on two
        // threads, 3/9 on four (the others 2/9 each).
        let txs: Vec<TxEnv> = [100; 10].map(tx).into();
        assert_eq!(boundaries(&txs, 2, true), vec![0, 6, 10]);
        assert_eq!(boundaries(&txs, 2, false), vec![0, 5, 10]);
        let txs: Vec<TxEnv> = [100; 18].map(tx).into();
        assert_eq!(boundaries(&txs, 4, true), vec![0, 6, 10, 14, 18]);
        assert_eq!(boundaries(&txs, 1, true), vec![0, 18]);
    }
}
