//! Pre-states in the shape of geth's `prestateTracer`.
//!
//! `debug_traceBlockByNumber` with the tracer answers one pre-state per
//! transaction, each taken just before that transaction, so after the
//! block's earlier transactions. The block's pre-state is their merge where
//! the first sighting of an account field or a slot wins: a transaction
//! that changes a location also touches it, so the first transaction to
//! show a location shows it as it was before the block.
//!
//! Two exceptions the merge leaves out: the system contracts' storage
//! (EIP-4788, EIP-2935, EIP-7002, EIP-7251), which the block's system calls
//! change before any transaction and no per-transaction trace shows as it
//! was before the block. Those slots are read from the node instead.

use std::collections::BTreeMap;

use alloy_primitives::{Address, Bytes, B256, U256};
use parevm::block::{
    BEACON_ROOTS_ADDRESS, CONSOLIDATION_REQUEST_ADDRESS, HISTORY_STORAGE_ADDRESS,
    WITHDRAWAL_REQUEST_ADDRESS,
};
use serde::{Deserialize, Serialize};

/// One account of a pre-state: what the tracer saw of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrestateAccount {
    /// Balance (absent: not seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<U256>,
    /// Nonce (absent: zero).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flexible_u64"
    )]
    pub nonce: Option<u64>,
    /// Code (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Bytes>,
    /// The slots seen, with their values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<B256, B256>,
}

/// A block's pre-state: every account it touches.
pub type Prestate = BTreeMap<Address, PrestateAccount>;

/// A nonce as geth writes it (a JSON number) or as a hex quantity.
fn flexible_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error as _;
    let value = Option::<serde_json::Value>::deserialize(d)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("nonce {n} is not a u64"))),
        Some(serde_json::Value::String(s)) => {
            let digits = s.strip_prefix("0x").unwrap_or(&s);
            u64::from_str_radix(digits, if s.starts_with("0x") { 16 } else { 10 })
                .map(Some)
                .map_err(|e| D::Error::custom(format!("nonce {s:?}: {e}")))
        }
        Some(other) => Err(D::Error::custom(format!("nonce {other} is not a number"))),
    }
}

/// Whether the block's system calls write this account's storage before
/// its transactions run.
pub fn is_system_contract(address: &Address) -> bool {
    [
        BEACON_ROOTS_ADDRESS,
        HISTORY_STORAGE_ADDRESS,
        WITHDRAWAL_REQUEST_ADDRESS,
        CONSOLIDATION_REQUEST_ADDRESS,
    ]
    .contains(address)
}

/// Merges the per-transaction answer of `debug_traceBlockByNumber` with the
/// `prestateTracer` into the block's pre-state.
///
/// Accepts both shapes nodes answer: an array of `{ txHash, result }` and
/// an array of bare results.
///
/// # Errors
/// A message naming the transaction whose trace failed or does not parse.
pub fn merge_traces(traces: &serde_json::Value) -> Result<Prestate, String> {
    let list = traces
        .as_array()
        .ok_or_else(|| "the trace is not an array (one entry per transaction)".to_string())?;
    let mut merged = Prestate::new();
    for (index, entry) in list.iter().enumerate() {
        if let Some(error) = entry.get("error") {
            return Err(format!(
                "transaction {index}: the node's tracer failed: {error}"
            ));
        }
        let result = entry.get("result").unwrap_or(entry);
        let accounts: Prestate = serde_json::from_value(result.clone())
            .map_err(|e| format!("transaction {index}: not a prestateTracer result: {e}"))?;
        merge_into(&mut merged, accounts);
    }
    Ok(merged)
}

/// Adds a later sighting to `merged`: only what was not seen before.
pub fn merge_into(merged: &mut Prestate, later: Prestate) {
    for (address, seen) in later {
        let system = is_system_contract(&address);
        match merged.get_mut(&address) {
            None => {
                let mut account = seen;
                if system {
                    account.storage.clear();
                }
                merged.insert(address, account);
            }
            Some(account) => {
                if system {
                    continue;
                }
                for (slot, value) in seen.storage {
                    account.storage.entry(slot).or_insert(value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SLOT: &str = "0x0000000000000000000000000000000000000000000000000000000000000001";
    const ONE: &str = "0x0000000000000000000000000000000000000000000000000000000000000001";
    const TWO: &str = "0x0000000000000000000000000000000000000000000000000000000000000002";

    #[test]
    fn the_first_sighting_of_a_field_or_slot_wins() {
        let a = "0x00000000000000000000000000000000000000aa";
        let traces = json!([
            { "txHash": "0x01", "result": { a: { "balance": "0x10", "nonce": 1, "storage": { SLOT: ONE } } } },
            { "txHash": "0x02", "result": { a: { "balance": "0x5", "nonce": "0x2", "storage": { SLOT: TWO, TWO: TWO } } } }
        ]);
        let merged = merge_traces(&traces).expect("merges");
        let account = &merged[&a.parse::<Address>().expect("address")];
        assert_eq!(account.balance, Some(U256::from(16)));
        assert_eq!(account.nonce, Some(1));
        assert_eq!(
            account.storage[&SLOT.parse::<B256>().expect("slot")],
            ONE.parse::<B256>().expect("value")
        );
        // A slot first seen in the second transaction is taken from it.
        assert_eq!(
            account.storage[&TWO.parse::<B256>().expect("slot")],
            TWO.parse::<B256>().expect("value")
        );
    }

    #[test]
    fn system_contract_storage_is_left_to_the_node() {
        let history = format!("{HISTORY_STORAGE_ADDRESS:#x}");
        let traces = json!([{ "result": { history.clone(): { "balance": "0x0", "code": "0x00", "storage": { SLOT: ONE } } } }]);
        let merged = merge_traces(&traces).expect("merges");
        let account = &merged[&HISTORY_STORAGE_ADDRESS];
        assert!(account.storage.is_empty(), "{account:?}");
        assert!(account.code.is_some());
    }

    #[test]
    fn bare_results_are_read_and_failures_name_the_transaction() {
        let a = "0x00000000000000000000000000000000000000aa";
        let bare = json!([{ a: { "balance": "0x1" } }]);
        assert_eq!(merge_traces(&bare).expect("bare results").len(), 1);
        let failed = json!([{ "result": {} }, { "error": "execution timeout" }]);
        let error = merge_traces(&failed).expect_err("a failed trace");
        assert!(error.contains("transaction 1"), "{error}");
        let malformed = json!([{ "result": { a: { "balance": "zz" } } }]);
        assert!(merge_traces(&malformed)
            .expect_err("bad balance")
            .contains("transaction 0"));
        assert!(merge_traces(&json!({})).is_err());
    }
}
