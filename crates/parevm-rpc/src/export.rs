//! Blocks of a node as RLP (`geth export`'s format: whole blocks one after
//! another), for `parevm import`.
//!
//! Nodes that serve `debug_getRawBlock` give the bytes directly; others
//! (anvil among them) only give JSON. So the block is encoded from its JSON
//! with alloy's consensus types, the uncles' headers read with
//! `eth_getUncleByBlockNumberAndIndex`, and the result is trusted only if
//! the header encodes to the hash the node reports.

use alloy_consensus::{Block, BlockBody, Header, TxEnvelope};
use alloy_primitives::B256;
use parevm::block::rpc::RpcBlock;

use crate::error::RpcError;
use crate::node::{quantity, Node};

/// Block `number` of `node`, RLP-encoded.
///
/// # Errors
/// The node's errors; [`RpcError::Block`] when the JSON does not decode or
/// the encoded header does not hash to the node's block hash.
pub fn block_rlp(node: &Node, number: u64) -> Result<Vec<u8>, RpcError> {
    let json = node.block_json(number)?;
    let block: RpcBlock = serde_json::from_value(json).map_err(|e| RpcError::Block {
        number,
        message: format!("not an eth_getBlockByNumber block: {e}"),
    })?;
    let hash = block.header.hash;
    let mut ommers = Vec::with_capacity(block.uncles.len());
    for index in 0..block.uncles.len() {
        let uncle: Option<alloy_rpc_types_eth::Header> = node.request(
            "eth_getUncleByBlockNumberAndIndex",
            (quantity(number), quantity(index as u64)),
        )?;
        let uncle = uncle.ok_or_else(|| RpcError::Block {
            number,
            message: format!("the node has no uncle {index}"),
        })?;
        ommers.push(uncle.inner);
    }
    let transactions: Vec<TxEnvelope> = block
        .transactions
        .into_transactions()
        .map(|tx| tx.inner.into_inner())
        .collect();
    let consensus = Block {
        header: block.header.inner,
        body: BlockBody {
            transactions,
            ommers,
            withdrawals: block.withdrawals,
        },
    };
    check_hash(&consensus.header, hash, number)?;
    Ok(alloy_rlp::encode(&consensus))
}

fn check_hash(header: &Header, hash: B256, number: u64) -> Result<(), RpcError> {
    let encoded = header.hash_slow();
    if encoded != hash {
        return Err(RpcError::Block {
            number,
            message: format!(
                "its header encodes to {encoded}, but the node reports {hash}: a header field the JSON does not carry"
            ),
        });
    }
    Ok(())
}
