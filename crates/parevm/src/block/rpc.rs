//! Blocks as a node's JSON-RPC returns them (`eth_getBlockByNumber(n, true)`):
//! the header, full transaction objects with their senders, withdrawals and
//! uncle hashes.

use alloy_consensus::TxEnvelope;
use alloy_primitives::B256;
use alloy_rpc_types_eth::{Block, BlockTransactions, Transaction};

use super::{BlockError, FullBlock};
use crate::chain::ChainSpec;

/// A block in the shape `eth_getBlockByNumber(n, true)` returns.
pub type RpcBlock = Block<Transaction<TxEnvelope>>;

/// What a node's block gives: the block ready to process, its uncles'
/// hashes (an RPC block carries no uncle headers, so their rewards cannot
/// be paid) and the hash the node reported.
#[derive(Clone, Debug)]
pub struct FromRpc {
    /// The block, as a block of the chain it was read under.
    pub block: FullBlock,
    /// Hashes of the block's uncles.
    pub uncle_hashes: Vec<B256>,
    /// The block hash the node reported.
    pub hash: B256,
}

/// `block` as a block of `chain` (its fork by number and timestamp). The
/// senders are the ones the node reports (`from`), not recovered again.
///
/// # Errors
/// [`BlockError::Invalid`] when the transactions are hashes only (the block
/// was asked for without `true`).
pub fn from_rpc(block: RpcBlock, chain: &ChainSpec) -> Result<FromRpc, BlockError> {
    let txs = match block.transactions {
        BlockTransactions::Full(txs) => txs,
        BlockTransactions::Hashes(hashes) if hashes.is_empty() => Vec::new(),
        BlockTransactions::Hashes(_) | BlockTransactions::Uncle => {
            return Err(BlockError::Invalid(
                "transactions must be full objects (eth_getBlockByNumber with `true`)".into(),
            ))
        }
    };
    let txs = txs.iter().map(|tx| super::tx_env(&tx.inner)).collect();
    let withdrawals = block.withdrawals.map(|w| w.0);
    let hash = block.header.hash;
    let header = block.header.inner;
    Ok(FromRpc {
        block: FullBlock::on_chain(chain, header, txs, withdrawals, Vec::new()),
        uncle_hashes: block.uncles,
        hash,
    })
}
