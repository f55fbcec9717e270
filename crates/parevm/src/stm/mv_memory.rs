//! Multi-version memory: for every location, the values written by each
//! transaction of the block, so that transaction `i` can read "the latest
//! write below `i`".
//!
//! Generic over the key and value types: it knows nothing about revm or
//! accounts. Each entry is either a value written by a finished incarnation
//! or an ESTIMATE marker, left behind when that incarnation was aborted: a
//! reader meeting an ESTIMATE must wait for the writer to re-execute instead
//! of reading a value that is probably stale.
//!
//! Layout: a fixed number of shards, each an `RwLock` around a hash map from
//! key to the versions of that key: a vector sorted by transaction index,
//! whose first entry is stored inline. Most locations have one or two
//! writers, and transactions finish roughly in block order, so a sorted
//! vector (binary search, usually an append) beats a B-tree, whose every
//! node is a kilobyte-sized allocation. Reads
//! take a shared lock on one shard; writes take the exclusive lock of the
//! shards they touch. The set of keys each transaction last wrote is kept per
//! transaction, so a re-execution can remove writes that disappeared and
//! report whether it wrote anything new (which forces re-validation of the
//! transactions above it).
//!
//! In front of the shards sits a *writer filter*: per hash bucket, the
//! lowest transaction that ever wrote a key of that bucket in this block.
//! A reader below that transaction knows without a lock that nobody below
//! it wrote the key, which is the common case in a block of independent
//! transactions, for reads and validations alike. Buckets only ever lower
//! their mark, so a stale mark costs a lock, never a wrong answer; the mark
//! is set before the write is inserted, and every read that must see a
//! write is ordered after it by the scheduler.
//!
//! One key may be declared *dense*: a key that nearly every transaction
//! writes (the EVM's fee recipient). Its versions live in one slot per
//! transaction instead of a sorted vector behind a shard lock, so writers
//! never contend on it and never shift a long vector; a reader walks the
//! slots below it, which is what it would do with the vector too.

use std::hash::{BuildHasher, Hash};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, RwLock};

use rustc_hash::{FxBuildHasher, FxHashMap};
use smallvec::SmallVec;

use crate::types::{Incarnation, TxIdx, Version};

/// One write in the multi-version memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry<V> {
    /// Written by a finished incarnation.
    Data(Incarnation, V),
    /// The writer was aborted; it will probably write here again.
    Estimate,
}

/// Writes to one key, sorted by writer. Most keys have a single writer,
/// whose entry sits inline in the hash map: no allocation and no pointer to
/// chase on the way to it.
type Versions<V> = SmallVec<[(TxIdx, Entry<V>); 1]>;

/// One shard: keys to their versions.
type Shard<K, V> = RwLock<FxHashMap<K, Versions<V>>>;

const SHARDS: usize = 128;

/// The versions of the dense key: slot `i` holds transaction `i`'s write.
struct Dense<K, V> {
    key: K,
    slots: Box<[Mutex<Option<Entry<V>>>]>,
}

/// The multi-version store of one block.
pub(crate) struct MvMemory<K, V> {
    shards: Box<[Shard<K, V>]>,
    last_written: Box<[Mutex<Vec<K>>]>,
    hasher: FxBuildHasher,
    dense: Option<Dense<K, V>>,
    /// Per bucket, `block_size - w` for the lowest writer `w` (0: none).
    filter: Box<[AtomicU32]>,
    /// `filter.len() - 1` (a power of two minus one).
    filter_mask: usize,
    block_size: u32,
}

impl<K: Eq + Hash + Clone, V: Clone> MvMemory<K, V> {
    /// Memory for a block of `block_size` transactions.
    #[cfg(test)]
    pub(crate) fn new(block_size: usize) -> Self {
        Self::with_dense_key(block_size, None)
    }

    /// Memory for a block of `block_size` transactions in which `dense`, if
    /// given, is written by most transactions (see the module docs).
    pub(crate) fn with_dense_key(block_size: usize, dense: Option<K>) -> Self {
        // About eight buckets per transaction: a block's few writes per
        // transaction leave most buckets empty.
        let buckets = (block_size * 8).clamp(1 << 10, 1 << 20).next_power_of_two();
        Self {
            filter: (0..buckets).map(|_| AtomicU32::new(0)).collect(),
            filter_mask: buckets - 1,
            block_size: u32::try_from(block_size).unwrap_or(u32::MAX),
            dense: dense.map(|key| Dense {
                key,
                slots: (0..block_size).map(|_| Mutex::new(None)).collect(),
            }),
            // Blocks write a few locations per transaction: size the shards
            // up front instead of rehashing them while workers wait.
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(FxHashMap::with_capacity_and_hasher(
                        block_size * 4 / SHARDS,
                        FxBuildHasher,
                    ))
                })
                .collect(),
            last_written: (0..block_size).map(|_| Mutex::new(Vec::new())).collect(),
            hasher: FxBuildHasher,
        }
    }

    fn shard_of(&self, hash: u64) -> &Shard<K, V> {
        // The high bits of Fx hashes are the well-mixed ones.
        &self.shards[(hash >> 57) as usize % SHARDS]
    }

    fn bucket(&self, hash: u64) -> &AtomicU32 {
        &self.filter[(hash >> 30) as usize & self.filter_mask]
    }

    /// The filter's mark for writer `tx` (higher for lower writers).
    fn mark(&self, tx: TxIdx) -> u32 {
        self.block_size
            .saturating_sub(u32::try_from(tx).unwrap_or(u32::MAX))
    }

    /// Walks the writes to `key` by transactions below `tx`, newest first,
    /// until `visit` breaks. Returns the break value, or `None` if the walk
    /// ran out of writes.
    pub(crate) fn walk_below<R>(
        &self,
        key: &K,
        tx: TxIdx,
        mut visit: impl FnMut(TxIdx, &Entry<V>) -> ControlFlow<R>,
    ) -> Option<R> {
        if let Some(slots) = self.dense_slots(key) {
            for (writer, slot) in slots[..tx.min(slots.len())].iter().enumerate().rev() {
                let slot = slot.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(entry) = slot.as_ref() {
                    if let ControlFlow::Break(r) = visit(writer, entry) {
                        return Some(r);
                    }
                }
            }
            return None;
        }
        let hash = self.hasher.hash_one(key);
        // No transaction below `tx` wrote anything in this bucket.
        if self.bucket(hash).load(Ordering::Acquire) <= self.mark(tx) {
            return None;
        }
        let shard = self
            .shard_of(hash)
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let versions = shard.get(key)?;
        let below = versions.partition_point(|(writer, _)| *writer < tx);
        for (writer, entry) in versions[..below].iter().rev() {
            if let ControlFlow::Break(r) = visit(*writer, entry) {
                return Some(r);
            }
        }
        None
    }

    /// The per-transaction slots of `key` if it is the dense key.
    fn dense_slots(&self, key: &K) -> Option<&[Mutex<Option<Entry<V>>>]> {
        self.dense
            .as_ref()
            .filter(|dense| dense.key == *key)
            .map(|dense| &*dense.slots)
    }

    /// Sets (or with `None` removes) `tx`'s entry for `key`.
    fn set_entry(&self, key: &K, tx: TxIdx, entry: Option<Entry<V>>) {
        if let Some(slots) = self.dense_slots(key) {
            if let Some(slot) = slots.get(tx) {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = entry;
            }
            return;
        }
        let hash = self.hasher.hash_one(key);
        if entry.is_some() {
            self.bucket(hash).fetch_max(self.mark(tx), Ordering::AcqRel);
        }
        let mut shard = self
            .shard_of(hash)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match entry {
            Some(entry) => {
                let versions = shard.entry(key.clone()).or_default();
                match versions.binary_search_by_key(&tx, |(writer, _)| *writer) {
                    Ok(at) => versions[at].1 = entry,
                    Err(at) => versions.insert(at, (tx, entry)),
                }
            }
            None => {
                if let Some(versions) = shard.get_mut(key) {
                    if let Ok(at) = versions.binary_search_by_key(&tx, |(writer, _)| *writer) {
                        versions.remove(at);
                    }
                }
            }
        }
    }

    /// The latest write to `key` below `tx`: `Some((writer, entry))`, or
    /// `None` when no lower transaction wrote it (read storage).
    pub(crate) fn latest_below(&self, key: &K, tx: TxIdx) -> Option<(TxIdx, Entry<V>)> {
        self.walk_below(key, tx, |writer, entry| {
            ControlFlow::Break((writer, entry.clone()))
        })
    }

    /// Stores the writes of a finished incarnation, replacing the previous
    /// incarnation's. Returns `true` if it wrote a key the previous
    /// incarnation did not.
    pub(crate) fn record(&self, version: Version, writes: Vec<(K, V)>) -> bool {
        let mut last = self.last_written[version.tx]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let first_incarnation = last.is_empty();
        let mut new_keys = Vec::with_capacity(writes.len());
        let mut wrote_new = false;
        for (key, value) in writes {
            if first_incarnation || !last.contains(&key) {
                wrote_new = true;
            }
            self.set_entry(
                &key,
                version.tx,
                Some(Entry::Data(version.incarnation, value)),
            );
            new_keys.push(key);
        }
        for stale in last
            .iter()
            .filter(|k| !first_incarnation && !new_keys.contains(k))
        {
            self.set_entry(stale, version.tx, None);
        }
        *last = new_keys;
        wrote_new
    }

    /// Marks every write of `tx`'s last incarnation as an ESTIMATE (it was
    /// just aborted).
    pub(crate) fn convert_writes_to_estimates(&self, tx: TxIdx) {
        let last = self.last_written[tx]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for key in last.iter() {
            self.set_entry(key, tx, Some(Entry::Estimate));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_latest_lower_write_and_estimates() {
        let mv: MvMemory<u32, u64> = MvMemory::new(4);
        assert_eq!(mv.latest_below(&7, 3), None);
        assert!(mv.record(Version::new(0, 0), vec![(7, 10)]));
        assert!(mv.record(Version::new(2, 0), vec![(7, 30)]));
        assert_eq!(mv.latest_below(&7, 1), Some((0, Entry::Data(0, 10))));
        assert_eq!(mv.latest_below(&7, 3), Some((2, Entry::Data(0, 30))));
        assert_eq!(mv.latest_below(&7, 0), None);
        mv.convert_writes_to_estimates(2);
        assert_eq!(mv.latest_below(&7, 3), Some((2, Entry::Estimate)));
        // Re-execution writing the same key is not "new"; a different key is.
        assert!(!mv.record(Version::new(2, 1), vec![(7, 31)]));
        assert!(mv.record(Version::new(2, 2), vec![(8, 1)]));
        // The write to 7 disappeared with incarnation 2.
        assert_eq!(mv.latest_below(&7, 3), Some((0, Entry::Data(0, 10))));
    }

    /// The dense layout of a key answers exactly like the sparse one, over a
    /// random history of records, aborts and stale writes.
    #[test]
    fn dense_key_behaves_like_a_sparse_one() {
        let size = 12;
        let sparse: MvMemory<u32, u64> = MvMemory::new(size);
        let dense: MvMemory<u32, u64> = MvMemory::with_dense_key(size, Some(5));
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut incarnations = vec![0; size];
        for step in 0..2_000 {
            let tx = next(size as u64) as usize;
            if next(4) == 0 {
                sparse.convert_writes_to_estimates(tx);
                dense.convert_writes_to_estimates(tx);
            } else {
                incarnations[tx] += 1;
                let version = Version::new(tx, incarnations[tx]);
                let writes: Vec<(u32, u64)> =
                    (4..7).filter(|_| next(3) != 0).map(|k| (k, step)).collect();
                assert_eq!(
                    sparse.record(version, writes.clone()),
                    dense.record(version, writes)
                );
            }
            for key in 4..7 {
                for reader in 0..=size {
                    assert_eq!(
                        sparse.latest_below(&key, reader),
                        dense.latest_below(&key, reader),
                        "key {key} reader {reader} at step {step}"
                    );
                }
            }
        }
    }
}
