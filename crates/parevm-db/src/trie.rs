//! Incremental Merkle-Patricia roots over the database.
//!
//! Every trie leaf is kept by its hashed key in the `leaves` table (so a
//! range of keys with a common nibble prefix is a range of the table), and
//! the reference of every trie node computed so far is kept in `nodes`,
//! keyed by its nibble path. The node at path `p` depends only on the
//! leaves whose key starts with `p`:
//!
//! - none: no node;
//! - one: a leaf node holding the rest of the key;
//! - several whose longest common prefix `c` is longer than `p`: an
//!   extension node from `p` to the node at `c`;
//! - otherwise: a branch node whose children are the nodes at `p` followed
//!   by each nibble.
//!
//! The first and last leaf of the range give the longest common prefix, so
//! each node costs two ordered lookups plus its children. A changed leaf
//! invalidates the cached nodes on its path (65 entries); the next root
//! recomputes those and reuses every other cached node: the work per block
//! follows the leaves it changed, not the size of the state. Node encoding
//! is alloy-trie's (`LeafNodeRef`, `ExtensionNodeRef`, `BranchNodeRef`).
//!
//! The account trie's keys are `keccak(address)`; each account's storage
//! trie has the keys `keccak(slot)` under its own prefix in both tables.

use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_trie::nodes::{BranchNodeRef, ExtensionNodeRef, LeafNodeRef, RlpNode};
use alloy_trie::{Nibbles, TrieAccount, TrieMask, EMPTY_ROOT_HASH};
use parevm::storage::code_hash_of;
use parevm::StateDiff;
use redb::{ReadableTable, Table, WriteTransaction};

use crate::schema::{self, slot_key};
use crate::types::{DbError, StoredAccount};

/// Which trie: the accounts', or one account's storage.
#[derive(Clone, Copy)]
enum Trie {
    Accounts,
    Storage(B256),
}

impl Trie {
    /// The prefix of this trie's keys in `leaves` and `nodes`.
    fn base(self) -> Vec<u8> {
        match self {
            Self::Accounts => vec![0],
            Self::Storage(hashed) => {
                let mut base = vec![1];
                base.extend_from_slice(hashed.as_slice());
                base
            }
        }
    }
}

fn leaf_key(base: &[u8], hashed: &B256) -> Vec<u8> {
    let mut key = base.to_vec();
    key.extend_from_slice(hashed.as_slice());
    key
}

fn node_key(base: &[u8], path: &[u8]) -> Vec<u8> {
    let mut key = base.to_vec();
    key.push(path.len() as u8);
    key.extend_from_slice(path);
    key
}

fn nibbles(hashed: &[u8]) -> Vec<u8> {
    hashed.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect()
}

/// The lowest and highest 32-byte key under `path`.
fn bounds(path: &[u8]) -> ([u8; 32], [u8; 32]) {
    let (mut low, mut high) = ([0u8; 32], [0xffu8; 32]);
    for (i, nibble) in path.iter().enumerate() {
        let byte = i / 2;
        if i % 2 == 0 {
            low[byte] = nibble << 4;
            high[byte] = (nibble << 4) | 0x0f;
        } else {
            low[byte] |= nibble;
            high[byte] = (high[byte] & 0xf0) | nibble;
        }
    }
    (low, high)
}

type Leaves<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// The reference of the node at `path` of `trie` (`None`: no leaf below).
fn node_ref(
    leaves: &Leaves<'_>,
    nodes: &mut Leaves<'_>,
    base: &[u8],
    path: &mut Vec<u8>,
) -> Result<Option<RlpNode>, DbError> {
    let cache = node_key(base, path);
    if let Some(cached) = nodes.get(cache.as_slice()).map_err(DbError::storage)? {
        return RlpNode::from_raw(cached.value())
            .map(Some)
            .ok_or_else(|| DbError::Corrupt("a cached trie node over 33 bytes".into()));
    }
    let (low, high) = bounds(path);
    let (low, high) = (
        leaf_key(base, &B256::from(low)),
        leaf_key(base, &B256::from(high)),
    );
    let (first, last) = {
        let mut range = leaves
            .range(low.as_slice()..=high.as_slice())
            .map_err(DbError::storage)?;
        let Some(first) = range.next().transpose().map_err(DbError::storage)? else {
            return Ok(None);
        };
        let first = (first.0.value().to_vec(), first.1.value().to_vec());
        let last = range.next_back().transpose().map_err(DbError::storage)?;
        (first, last.map(|(key, _)| key.value().to_vec()))
    };
    let mut buf = Vec::new();
    let first_path = nibbles(&first.0[base.len()..]);
    let node = match last {
        None => {
            let rest = Nibbles::from_nibbles(&first_path[path.len()..]);
            LeafNodeRef::new(&rest, &first.1).rlp(&mut buf)
        }
        Some(last) => {
            let last_path = nibbles(&last[base.len()..]);
            let common = first_path
                .iter()
                .zip(&last_path)
                .take_while(|(a, b)| a == b)
                .count();
            if common > path.len() {
                let extension = Nibbles::from_nibbles(&first_path[path.len()..common]);
                let mut child_path = first_path[..common].to_vec();
                let child = node_ref(leaves, nodes, base, &mut child_path)?
                    .ok_or_else(|| DbError::Corrupt("an extension without a child".into()))?;
                ExtensionNodeRef::new(&extension, child.as_slice()).rlp(&mut buf)
            } else {
                let mut stack = Vec::new();
                let mut mask = TrieMask::default();
                for nibble in 0..16u8 {
                    path.push(nibble);
                    let child = node_ref(leaves, nodes, base, path)?;
                    path.pop();
                    if let Some(child) = child {
                        stack.push(child);
                        mask.set_bit(nibble);
                    }
                }
                BranchNodeRef::new(&stack, mask).rlp(&mut buf)
            }
        }
    };
    nodes
        .insert(cache.as_slice(), node.as_slice())
        .map_err(DbError::storage)?;
    Ok(Some(node))
}

/// The root of `trie` from its leaves and cached nodes.
fn root(leaves: &Leaves<'_>, nodes: &mut Leaves<'_>, trie: Trie) -> Result<B256, DbError> {
    let base = trie.base();
    Ok(match node_ref(leaves, nodes, &base, &mut Vec::new())? {
        None => EMPTY_ROOT_HASH,
        Some(node) => node.as_hash().unwrap_or_else(|| keccak256(node.as_slice())),
    })
}

/// Drops the cached nodes on the path of `hashed` in `trie`.
fn invalidate(nodes: &mut Leaves<'_>, base: &[u8], hashed: &B256) -> Result<(), DbError> {
    let path = nibbles(hashed.as_slice());
    for len in 0..=path.len() {
        nodes
            .remove(node_key(base, &path[..len]).as_slice())
            .map_err(DbError::storage)?;
    }
    Ok(())
}

/// Removes every entry of `table` whose key starts with `prefix`.
fn remove_prefix<V: redb::Value + 'static>(
    table: &mut Table<'_, &'static [u8], V>,
    prefix: &[u8],
) -> Result<(), DbError> {
    let mut high = prefix.to_vec();
    high.extend_from_slice(&[0xff; 66]);
    table
        .retain_in(prefix..high.as_slice(), |_, _| false)
        .map_err(DbError::storage)
}

/// Applies `diff` to the state tables and returns the new state root:
/// accounts and slots, the trie leaves, the storage roots of the accounts
/// whose storage changed, and the account trie's root.
pub(crate) fn apply(txn: &WriteTransaction, diff: &StateDiff) -> Result<B256, DbError> {
    let mut accounts = txn.open_table(schema::ACCOUNTS).map_err(DbError::storage)?;
    let mut slots = txn.open_table(schema::SLOTS).map_err(DbError::storage)?;
    let mut codes = txn.open_table(schema::CODES).map_err(DbError::storage)?;
    let mut leaves = txn.open_table(schema::LEAVES).map_err(DbError::storage)?;
    let mut nodes = txn.open_table(schema::NODES).map_err(DbError::storage)?;
    let account_base = Trie::Accounts.base();
    for (address, change) in diff {
        let hashed = keccak256(address);
        let storage_base = Trie::Storage(hashed).base();
        let before = match accounts.get(&address.0 .0).map_err(DbError::storage)? {
            Some(value) => Some(schema::decode_account(value.value())?),
            None => None,
        };
        let wiped = change.info.is_none() || change.storage_cleared;
        if wiped {
            clear_storage(&mut slots, address)?;
            remove_prefix(&mut leaves, &storage_base)?;
            remove_prefix(&mut nodes, &storage_base)?;
        }
        let Some(info) = &change.info else {
            accounts.remove(&address.0 .0).map_err(DbError::storage)?;
            leaves
                .remove(leaf_key(&account_base, &hashed).as_slice())
                .map_err(DbError::storage)?;
            invalidate(&mut nodes, &account_base, &hashed)?;
            continue;
        };
        for (slot, value) in &change.storage {
            let key = slot_key(&address.0 .0, slot);
            let hashed_slot = keccak256(slot.to_be_bytes::<32>());
            let leaf = leaf_key(&storage_base, &hashed_slot);
            if value.is_zero() {
                slots.remove(&key).map_err(DbError::storage)?;
                leaves.remove(leaf.as_slice()).map_err(DbError::storage)?;
            } else {
                slots
                    .insert(&key, &value.to_be_bytes::<32>())
                    .map_err(DbError::storage)?;
                leaves
                    .insert(leaf.as_slice(), alloy_rlp::encode(value).as_slice())
                    .map_err(DbError::storage)?;
            }
            invalidate(&mut nodes, &storage_base, &hashed_slot)?;
        }
        if let Some(code) = &info.code {
            codes
                .insert(&info.code_hash.0, code.original_bytes().as_ref())
                .map_err(DbError::storage)?;
        }
        let storage_root = match before {
            Some(before) if !wiped && change.storage.is_empty() => before.storage_root,
            _ => root(&leaves, &mut nodes, Trie::Storage(hashed))?,
        };
        let account = StoredAccount {
            balance: info.balance,
            nonce: info.nonce,
            code_hash: code_hash_of(info.code_hash),
            storage_root,
        };
        accounts
            .insert(&address.0 .0, schema::encode_account(&account).as_slice())
            .map_err(DbError::storage)?;
        let trie_account = TrieAccount {
            nonce: account.nonce,
            balance: account.balance,
            storage_root: account.storage_root,
            code_hash: account.code_hash,
        };
        leaves
            .insert(
                leaf_key(&account_base, &hashed).as_slice(),
                alloy_rlp::encode(trie_account).as_slice(),
            )
            .map_err(DbError::storage)?;
        invalidate(&mut nodes, &account_base, &hashed)?;
    }
    root(&leaves, &mut nodes, Trie::Accounts)
}

/// Removes every slot of `address`.
fn clear_storage(
    slots: &mut Table<'_, &'static [u8; 52], &'static [u8; 32]>,
    address: &Address,
) -> Result<(), DbError> {
    let low = slot_key(&address.0 .0, &U256::ZERO);
    let high = slot_key(&address.0 .0, &U256::MAX);
    slots
        .retain_in(&low..=&high, |_, _| false)
        .map_err(DbError::storage)
}

/// The state root of the state in `txn` (every cached node is reused).
pub(crate) fn current_root(txn: &WriteTransaction) -> Result<B256, DbError> {
    let leaves = txn.open_table(schema::LEAVES).map_err(DbError::storage)?;
    let mut nodes = txn.open_table(schema::NODES).map_err(DbError::storage)?;
    root(&leaves, &mut nodes, Trie::Accounts)
}
