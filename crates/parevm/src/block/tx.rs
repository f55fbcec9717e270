//! From consensus data to what parevm executes: a signed transaction to
//! revm's transaction environment, and a consensus block to a
//! [`FullBlock`](super::FullBlock) of a chain.

use alloy_consensus::transaction::{Recovered, SignerRecoverable as _};
use alloy_consensus::{Block, Header, Transaction as _, TxEip4844Variant, TxEnvelope};
use alloy_eips::eip7840::BlobParams;
use alloy_primitives::{Address, B256};
use revm::context::either::Either;
use revm::context::TxEnv;
use revm::primitives::hardfork::SpecId;

use super::{BlockError, FullBlock, Ommer};
use crate::chain::ChainSpec;
use crate::pool::fan_out;

/// The revm transaction environment of a signed transaction with a known
/// sender. Works for every Ethereum transaction type, including legacy
/// transactions without a chain id (pre-EIP-155).
pub fn tx_env(tx: &Recovered<TxEnvelope>) -> TxEnv {
    let inner = tx.inner();
    let dynamic_fee = inner.is_dynamic_fee();
    TxEnv {
        tx_type: inner.tx_type() as u8,
        caller: tx.signer(),
        gas_limit: inner.gas_limit(),
        gas_price: inner.max_fee_per_gas(),
        kind: inner.kind(),
        value: inner.value(),
        data: inner.input().clone(),
        nonce: inner.nonce(),
        chain_id: inner.chain_id(),
        access_list: inner.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: if dynamic_fee {
            inner.max_priority_fee_per_gas()
        } else {
            None
        },
        blob_hashes: inner
            .blob_versioned_hashes()
            .map(<[B256]>::to_vec)
            .unwrap_or_default(),
        max_fee_per_blob_gas: inner.max_fee_per_blob_gas().unwrap_or_default(),
        authorization_list: inner
            .authorization_list()
            .map(|list| list.iter().cloned().map(Either::Left).collect())
            .unwrap_or_default(),
    }
}

/// `block`, its senders recovered (on `threads` threads), as a block of
/// `chain`. Checks what the body alone decides: the transactions root, the
/// ommers hash, and that no blob transaction carries its sidecar.
///
/// # Errors
/// [`BlockError::Invalid`] naming the transaction or the field.
pub fn from_consensus(
    chain: &ChainSpec,
    block: Block<TxEnvelope>,
    threads: usize,
) -> Result<FullBlock, BlockError> {
    let rules = BlockRules::of(chain, &block.header);
    from_consensus_under(rules, block, threads)
}

/// The rules a block runs under: what [`FullBlock`] takes from its chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRules {
    /// The fork's EVM rules.
    pub spec: SpecId,
    /// Chain id.
    pub chain_id: u64,
    /// Blob parameters (Cancun on).
    pub blob_params: Option<BlobParams>,
    /// Where EIP-6110 deposit logs come from.
    pub deposit_contract: Address,
}

impl BlockRules {
    /// The rules of the block with `header` on `chain`.
    pub fn of(chain: &ChainSpec, header: &Header) -> Self {
        let spec = chain.spec_at(header.number, header.timestamp);
        Self {
            spec,
            chain_id: chain.chain_id,
            blob_params: chain.blob_params_at(spec, header.timestamp),
            deposit_contract: chain.deposit_contract,
        }
    }
}

/// [`from_consensus`] under explicit `rules` (a test network's schedule,
/// say, rather than a chain's).
///
/// # Errors
/// As [`from_consensus`].
pub fn from_consensus_under(
    rules: BlockRules,
    block: Block<TxEnvelope>,
    threads: usize,
) -> Result<FullBlock, BlockError> {
    let invalid = |message: String| BlockError::Invalid(message);
    let txs = recover_senders(&block.body.transactions, threads)?;
    let tx_root = alloy_consensus::proofs::calculate_transaction_root(&block.body.transactions);
    if tx_root != block.header.transactions_root {
        return Err(invalid(format!(
            "transactions root {tx_root} != header {}",
            block.header.transactions_root
        )));
    }
    let ommers_hash = alloy_consensus::proofs::calculate_ommers_root(&block.body.ommers);
    if ommers_hash != block.header.ommers_hash {
        return Err(invalid(format!(
            "ommers hash {ommers_hash} != header {}",
            block.header.ommers_hash
        )));
    }
    let ommers = block
        .body
        .ommers
        .iter()
        .map(|o| Ommer {
            beneficiary: o.beneficiary,
            number: o.number,
        })
        .collect();
    let withdrawals = block.body.withdrawals.map(|w| w.into_inner());
    Ok(FullBlock::with_rules(
        rules,
        block.header,
        txs,
        withdrawals,
        ommers,
    ))
}

/// Transactions per thread of the sender recovery, at least: below it
/// waking a thread costs more than the recoveries it takes over.
const RECOVERY_PART_MIN: usize = 16;

/// Each transaction's revm environment, its sender recovered from its
/// signature; split over `threads` threads on large blocks.
fn recover_senders(txs: &[TxEnvelope], threads: usize) -> Result<Vec<TxEnv>, BlockError> {
    let recover = |(i, tx): (usize, &TxEnvelope)| {
        if let TxEnvelope::Eip4844(signed) = tx {
            if matches!(signed.tx(), TxEip4844Variant::TxEip4844WithSidecar(_)) {
                return Err(BlockError::Invalid(format!(
                    "transaction {i}: blob transaction with its sidecar inside a block"
                )));
            }
        }
        let sender = tx
            .recover_signer()
            .map_err(|e| BlockError::Invalid(format!("transaction {i}: bad signature: {e}")))?;
        Ok(tx_env(&Recovered::new_unchecked(tx.clone(), sender)))
    };
    let parts = (txs.len() / RECOVERY_PART_MIN).clamp(1, threads.max(1));
    if parts == 1 {
        return txs.iter().enumerate().map(recover).collect();
    }
    let chunk = txs.len().div_ceil(parts);
    let recovered = fan_out(parts, |part| {
        let start = part * chunk;
        txs.iter()
            .enumerate()
            .skip(start)
            .take(chunk)
            .map(recover)
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|e| BlockError::Invalid(format!("recovering senders: {e}")))?;
    let mut out = Vec::with_capacity(txs.len());
    for part in recovered {
        out.extend(part?);
    }
    Ok(out)
}
