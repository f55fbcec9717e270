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
//! key to the versions of that key: a vector sorted by transaction index.
//! Most locations have one or two writers, and transactions finish roughly
//! in block order, so a sorted vector (binary search, usually an append)
//! beats a B-tree, whose every node is a kilobyte-sized allocation. Reads
//! take a shared lock on one shard; writes take the exclusive lock of the
//! shards they touch. The set of keys each transaction last wrote is kept per
//! transaction, so a re-execution can remove writes that disappeared and
//! report whether it wrote anything new (which forces re-validation of the
//! transactions above it).

use std::hash::{BuildHasher, Hash};
use std::ops::ControlFlow;
use std::sync::{Mutex, RwLock};

use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::types::{Incarnation, TxIdx, Version};

/// One write in the multi-version memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry<V> {
    /// Written by a finished incarnation.
    Data(Incarnation, V),
    /// The writer was aborted; it will probably write here again.
    Estimate,
}

/// Writes to one key, sorted by writer.
type Versions<V> = Vec<(TxIdx, Entry<V>)>;

/// One shard: keys to their versions.
type Shard<K, V> = RwLock<FxHashMap<K, Versions<V>>>;

const SHARDS: usize = 128;

/// The multi-version store of one block.
pub(crate) struct MvMemory<K, V> {
    shards: Box<[Shard<K, V>]>,
    last_written: Box<[Mutex<Vec<K>>]>,
    hasher: FxBuildHasher,
}

impl<K: Eq + Hash + Clone, V: Clone> MvMemory<K, V> {
    /// Memory for a block of `block_size` transactions.
    pub(crate) fn new(block_size: usize) -> Self {
        Self {
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

    fn shard(&self, key: &K) -> &Shard<K, V> {
        // The high bits of Fx hashes are the well-mixed ones.
        let h = self.hasher.hash_one(key);
        &self.shards[(h >> 57) as usize % SHARDS]
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
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        let versions = shard.get(key)?;
        let below = versions.partition_point(|(writer, _)| *writer < tx);
        for (writer, entry) in versions[..below].iter().rev() {
            if let ControlFlow::Break(r) = visit(*writer, entry) {
                return Some(r);
            }
        }
        None
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
            let entry = Entry::Data(version.incarnation, value);
            let mut shard = self.shard(&key).write().unwrap_or_else(|p| p.into_inner());
            // Most locations have a single writer: start at capacity one
            // (the default first growth is four ~100-byte entries).
            let versions = shard
                .entry(key.clone())
                .or_insert_with(|| Vec::with_capacity(1));
            match versions.binary_search_by_key(&version.tx, |(writer, _)| *writer) {
                Ok(at) => versions[at].1 = entry,
                Err(at) => versions.insert(at, (version.tx, entry)),
            }
            drop(shard);
            new_keys.push(key);
        }
        for stale in last
            .iter()
            .filter(|k| !first_incarnation && !new_keys.contains(k))
        {
            let mut shard = self.shard(stale).write().unwrap_or_else(|p| p.into_inner());
            if let Some(versions) = shard.get_mut(stale) {
                if let Ok(at) = versions.binary_search_by_key(&version.tx, |(writer, _)| *writer) {
                    versions.remove(at);
                }
            }
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
            let mut shard = self.shard(key).write().unwrap_or_else(|p| p.into_inner());
            if let Some(versions) = shard.get_mut(key) {
                if let Ok(at) = versions.binary_search_by_key(&tx, |(writer, _)| *writer) {
                    versions[at].1 = Entry::Estimate;
                }
            }
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
}
