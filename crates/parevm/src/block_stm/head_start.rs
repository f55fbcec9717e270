//! The Block-STM head start: the heavy transactions that, in block order,
//! would start too late to finish with the rest are handed out first
//! (`stm::scheduler` module docs, "Head start").

use revm::context::TxEnv;

/// A transaction is a head-start candidate when its gas limit is at least
/// `1 / (HEAD_START_SHARE * threads)` of the block's.
const HEAD_START_SHARE: u128 = 8;

/// The transactions Block-STM should start first (`stm::scheduler` module
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_txs::transfer;

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
}
