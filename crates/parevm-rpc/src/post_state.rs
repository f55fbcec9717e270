//! Checks a block's state changes against the node's state after the block.
//!
//! Over JSON-RPC the state root cannot be recomputed (the node's whole state
//! is not at hand), but every account and slot the block changed can be
//! read back: balance, nonce and code hash with `eth_getProof`, slots with
//! `eth_getStorageAt`, in batches.

use alloy_primitives::{Address, B256, U256};
use parevm::revm::primitives::KECCAK_EMPTY;
use parevm::storage::code_hash_of;
use parevm::StateDiff;

use crate::error::RpcError;
use crate::node::{quantity, Node, ProofAnswer, ProvedAccount};

/// The first difference between `state` (a block's changes) and the
/// node's state at the end of block `at`, or `None` when all agree.
///
/// # Errors
/// The node's errors.
pub fn first_difference(
    node: &Node,
    at: u64,
    state: &StateDiff,
) -> Result<Option<String>, RpcError> {
    let block = quantity(at);
    let addresses: Vec<Address> = state.keys().copied().collect();
    let proofs: Vec<ProofAnswer> = node.block_on(
        node.batch(
            "eth_getProof",
            addresses
                .iter()
                .map(|a| (*a, Vec::<B256>::new(), block.clone()))
                .collect(),
        ),
    )?;
    for (address, proof) in addresses.iter().zip(proofs) {
        let node_account: ProvedAccount = proof.into();
        let change = &state[address];
        let (balance, nonce, code_hash) = match &change.info {
            Some(info) => (info.balance, info.nonce, info.code_hash),
            None => (U256::ZERO, 0, KECCAK_EMPTY),
        };
        let node_code = code_hash_of(node_account.code_hash);
        if (balance, nonce, code_hash) != (node_account.balance, node_account.nonce, node_code) {
            return Ok(Some(format!(
                "account {address}: parevm has balance {balance}, nonce {nonce}, code {code_hash}; \
                 the node has balance {}, nonce {}, code {node_code}",
                node_account.balance, node_account.nonce
            )));
        }
    }
    let slots: Vec<(Address, U256, U256)> = state
        .iter()
        .flat_map(|(address, change)| {
            change
                .storage
                .iter()
                .map(move |(slot, value)| (*address, *slot, *value))
        })
        .collect();
    let values: Vec<B256> = node.block_on(
        node.batch(
            "eth_getStorageAt",
            slots
                .iter()
                .map(|(a, slot, _)| (*a, B256::from(*slot), block.clone()))
                .collect(),
        ),
    )?;
    for ((address, slot, value), node_value) in slots.iter().zip(values) {
        let node_value: U256 = node_value.into();
        if *value != node_value {
            return Ok(Some(format!(
                "slot {slot:#x} of {address}: parevm has {value:#x}, the node has {node_value:#x}"
            )));
        }
    }
    Ok(None)
}
