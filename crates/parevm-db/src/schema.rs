//! The tables of a state database and how their values are laid out.
//!
//! | table | key | value |
//! |---|---|---|
//! | `accounts` | address (20 bytes) | balance (32), nonce (8), code hash (32), storage root (32) |
//! | `slots` | address and slot (20 + 32) | non-zero value (32) |
//! | `codes` | code hash (32) | code |
//! | `leaves` | `0` and hashed address (33), or `1`, hashed address and hashed slot (65) | the trie leaf's value (RLP) |
//! | `nodes` | `0`, or `1` and hashed address; then the nibble count and the nibbles | the node's reference (its RLP, or the RLP of its hash) |
//! | `block_hashes` | block number | block hash |
//! | `headers` | block number | RLP header |
//! | `meta` | name | the format marker; the head (number, hash, state root) |

use alloy_primitives::{B256, U256};
use redb::{TableDefinition, TableError, WriteTransaction};

use crate::types::{DbError, Head, StoredAccount};

pub(crate) const ACCOUNTS: TableDefinition<&[u8; 20], &[u8]> = TableDefinition::new("accounts");
pub(crate) const SLOTS: TableDefinition<&[u8; 52], &[u8; 32]> = TableDefinition::new("slots");
pub(crate) const CODES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("codes");
pub(crate) const LEAVES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("leaves");
pub(crate) const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("nodes");
pub(crate) const BLOCK_HASHES: TableDefinition<u64, &[u8; 32]> =
    TableDefinition::new("block_hashes");
pub(crate) const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The format marker every parevm state database carries.
pub(crate) const FORMAT: &str = "parevm-state-v1";
pub(crate) const FORMAT_KEY: &str = "format";
pub(crate) const HEAD_KEY: &str = "head";

/// Opens (creating) every table, so that a file whose tables have other
/// types is refused before anything is written.
pub(crate) fn open_all(txn: &WriteTransaction) -> Result<(), TableError> {
    txn.open_table(ACCOUNTS)?;
    txn.open_table(SLOTS)?;
    txn.open_table(CODES)?;
    txn.open_table(LEAVES)?;
    txn.open_table(NODES)?;
    txn.open_table(BLOCK_HASHES)?;
    txn.open_table(HEADERS)?;
    txn.open_table(META)?;
    Ok(())
}

/// The `slots` key of an account's slot.
pub(crate) fn slot_key(address: &[u8; 20], slot: &U256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address);
    key[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    key
}

pub(crate) fn encode_account(account: &StoredAccount) -> [u8; 104] {
    let mut out = [0u8; 104];
    out[..32].copy_from_slice(&account.balance.to_be_bytes::<32>());
    out[32..40].copy_from_slice(&account.nonce.to_be_bytes());
    out[40..72].copy_from_slice(account.code_hash.as_slice());
    out[72..].copy_from_slice(account.storage_root.as_slice());
    out
}

pub(crate) fn decode_account(bytes: &[u8]) -> Result<StoredAccount, DbError> {
    if bytes.len() != 104 {
        return Err(DbError::Corrupt(format!(
            "an account record of {} bytes (expected 104)",
            bytes.len()
        )));
    }
    let mut nonce = [0u8; 8];
    nonce.copy_from_slice(&bytes[32..40]);
    Ok(StoredAccount {
        balance: U256::from_be_slice(&bytes[..32]),
        nonce: u64::from_be_bytes(nonce),
        code_hash: B256::from_slice(&bytes[40..72]),
        storage_root: B256::from_slice(&bytes[72..]),
    })
}

pub(crate) fn encode_head(head: &Head) -> Vec<u8> {
    let mut out = Vec::with_capacity(72);
    out.extend_from_slice(&head.number.to_be_bytes());
    out.extend_from_slice(head.hash.as_slice());
    out.extend_from_slice(head.state_root.as_slice());
    out
}

pub(crate) fn decode_head(bytes: &[u8]) -> Result<Head, DbError> {
    if bytes.len() != 72 {
        return Err(DbError::Corrupt(format!(
            "a head record of {} bytes (expected 72)",
            bytes.len()
        )));
    }
    let mut number = [0u8; 8];
    number.copy_from_slice(&bytes[..8]);
    Ok(Head {
        number: u64::from_be_bytes(number),
        hash: B256::from_slice(&bytes[8..40]),
        state_root: B256::from_slice(&bytes[40..]),
    })
}
