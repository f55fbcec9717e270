//! A block from a node, ready to execute over the node's state before it.

use alloy_primitives::Address;
use parevm::block::rpc::{from_rpc, FromRpc, RpcBlock};
use parevm::block::{
    BEACON_ROOTS_ADDRESS, CONSOLIDATION_REQUEST_ADDRESS, HISTORY_STORAGE_ADDRESS,
    WITHDRAWAL_REQUEST_ADDRESS,
};
use parevm::revm::primitives::TxKind;
use parevm::ChainSpec;

use crate::error::RpcError;
use crate::node::Node;
use crate::prestate::{merge_traces, Prestate};
use crate::storage::RpcStorage;

/// How the state a block touches is read ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    /// The node's `prestateTracer` (exact; needs the debug API).
    Tracer,
    /// The tracer when the node has it, else the accounts the block names
    /// (senders, recipients, access lists, beneficiary, withdrawals, system
    /// contracts), with everything else read on demand.
    Auto,
}

/// Block `number` of a node, with the node's state after block
/// `number - 1` behind it.
#[derive(Debug)]
pub struct NodeBlock<'n> {
    /// The block as the node returned it (`eth_getBlockByNumber(n, true)`).
    pub json: serde_json::Value,
    /// The block, ready to process.
    pub read: FromRpc,
    /// The state before the block, prefetched.
    pub storage: RpcStorage<'n>,
    /// The merged `prestateTracer` answer, when the tracer was used.
    pub prestate: Option<Prestate>,
}

/// Reads block `number` from `node` as a block of `chain`, and prefetches
/// the state it touches.
///
/// # Errors
/// [`RpcError::UnknownBlock`], [`RpcError::NoDebugApi`] (with
/// [`Prefetch::Tracer`]), [`RpcError::Block`] for block 0 or a block that
/// does not decode, and the node's errors.
pub fn load_block<'n>(
    node: &'n Node,
    number: u64,
    chain: &ChainSpec,
    prefetch: Prefetch,
) -> Result<NodeBlock<'n>, RpcError> {
    if number == 0 {
        return Err(RpcError::Block {
            number,
            message: "block 0 is the genesis: it has no transactions to execute".into(),
        });
    }
    let json = node.block_json(number)?;
    let block: RpcBlock = serde_json::from_value(json.clone()).map_err(|e| RpcError::Block {
        number,
        message: format!("not an eth_getBlockByNumber block: {e}"),
    })?;
    let read = from_rpc(block, chain).map_err(|e| RpcError::Block {
        number,
        message: e.to_string(),
    })?;
    let mut storage = RpcStorage::new(node, number - 1);
    let traces = match node.prestate_json(number) {
        Ok(traces) => Some(traces),
        Err(RpcError::NoDebugApi { .. }) if prefetch == Prefetch::Auto => None,
        Err(error) => return Err(error),
    };
    let prestate = match traces {
        Some(traces) => {
            let prestate = merge_traces(&traces).map_err(|message| RpcError::Decode {
                url: node.url().to_string(),
                method: "debug_traceBlockByNumber",
                message,
            })?;
            storage.prefetch_prestate(&prestate);
            Some(prestate)
        }
        None => {
            storage.prefetch_accounts(&named_accounts(&read))?;
            None
        }
    };
    Ok(NodeBlock {
        json,
        read,
        storage,
        prestate,
    })
}

/// The accounts a block names without running it.
fn named_accounts(read: &FromRpc) -> Vec<Address> {
    let block = &read.block;
    let mut accounts = vec![
        block.header.beneficiary,
        BEACON_ROOTS_ADDRESS,
        HISTORY_STORAGE_ADDRESS,
        WITHDRAWAL_REQUEST_ADDRESS,
        CONSOLIDATION_REQUEST_ADDRESS,
    ];
    for tx in &block.txs {
        accounts.push(tx.caller);
        if let TxKind::Call(to) = tx.kind {
            accounts.push(to);
        }
        accounts.extend(tx.access_list.0.iter().map(|item| item.address));
    }
    for withdrawal in block.withdrawals.iter().flatten() {
        accounts.push(withdrawal.address);
    }
    accounts.sort_unstable();
    accounts.dedup();
    accounts
}
