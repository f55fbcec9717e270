//! Whole-block processing around the transaction engine.
//!
//! [`execute_block`](crate::execute_block) runs only a block's transactions. A real block also
//! has work before and after them, which this module adds:
//!
//! - **before**: the EIP-4788 beacon-root and EIP-2935 block-hash-history
//!   system calls;
//! - **the transactions**, through [`ExecuteTxs`] (parevm's
//!   [`execute_block`](crate::execute_block), so in parallel),
//!   over a [`LayeredStorage`]: the pre-block state plus the system calls'
//!   changes;
//! - **after**: EIP-4895 withdrawals, EIP-7685 requests (EIP-6110 deposits
//!   from logs, EIP-7002 and EIP-7251 system calls), pre-merge block and
//!   uncle rewards;
//! - **commitments**: typed receipts and their root, the logs bloom, blob gas
//!   used, the requests hash, and (with a complete pre-state, see
//!   [`trie::state_root`](crate::trie::state_root)) intermediate and final state roots.
//!
//! System calls and rewards run sequentially on a small overlay over the
//! storage; their effects are ordinary [`StateDiff`]s merged before and
//! after the transactions' diff.

use alloy_consensus::{Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxType};
use alloy_eips::eip4895::Withdrawal;
use alloy_eips::eip7685::Requests;
use alloy_eips::eip7840::BlobParams;
use alloy_primitives::{address, b256, Address, Bloom, Bytes, B256, U256};
use revm::context::BlockEnv;
use revm::context_interface::block::BlobExcessGasAndPrice;
use revm::primitives::eip4844::{
    BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
};
use revm::primitives::hardfork::SpecId;

use crate::chain::ChainSpec;
use crate::error::{ExecError, StorageError};
use crate::output::merge::merge_into;
use crate::output::{BlockResult, StateDiff};
use crate::storage::LayeredStorage;
use crate::storage::Storage;

pub mod genesis;
mod header;
pub mod rpc;
mod system;
mod tx;

use crate::input::BlockInput;
pub use header::{default_blob_params, validate_header};
use system::{block_reward, parse_deposit, SystemCaller};
pub use tx::{from_consensus, from_consensus_under, tx_env, BlockRules};

/// The caller of system calls (EIP-4788 and later).
pub const SYSTEM_ADDRESS: Address = address!("fffffffffffffffffffffffffffffffffffffffe");
/// EIP-4788 beacon roots contract.
pub const BEACON_ROOTS_ADDRESS: Address = address!("000F3df6D732807Ef1319fB7B8bB8522d0Beac02");
/// EIP-2935 block hash history contract.
pub const HISTORY_STORAGE_ADDRESS: Address = address!("0000F90827F1C53a10cb7A02335B175320002935");
/// EIP-7002 withdrawal request contract.
pub const WITHDRAWAL_REQUEST_ADDRESS: Address =
    address!("00000961Ef480Eb55e80D19ad83579A64c007002");
/// EIP-7251 consolidation request contract.
pub const CONSOLIDATION_REQUEST_ADDRESS: Address =
    address!("0000BBdDc7CE488642fb579F8B00f3a590007251");
/// Topic 0 of the deposit contract's `DepositEvent(bytes,bytes,bytes,bytes,bytes)`.
pub const DEPOSIT_EVENT_TOPIC: B256 =
    b256!("649bbc62d0e31342afea4e5cd82d4049e7e1ee912fc0889aa790803be39038c5");
/// Gas of one blob (EIP-4844).
pub const GAS_PER_BLOB: u64 = 1 << 17;

/// One uncle (ommer) of a pre-merge block: what its reward needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ommer {
    /// The uncle's miner.
    pub beneficiary: Address,
    /// The uncle's block number.
    pub number: u64,
}

/// A whole block: header, transactions with recovered senders, withdrawals
/// and uncles, with the fork rules and chain it runs under.
#[derive(Clone, Debug)]
pub struct FullBlock {
    /// Fork rules.
    pub spec: SpecId,
    /// Chain id.
    pub chain_id: u64,
    /// The header (its roots and gas used are what processing is checked against).
    pub header: Header,
    /// The transactions in block order.
    pub txs: Vec<revm::context::TxEnv>,
    /// EIP-4895 withdrawals (Shanghai on).
    pub withdrawals: Option<Vec<Withdrawal>>,
    /// Uncles, for pre-merge rewards.
    pub ommers: Vec<Ommer>,
    /// Where EIP-6110 deposit logs come from.
    pub deposit_contract: Address,
    /// Blob parameters (Cancun on): target, maximum, base fee update
    /// fraction, per-transaction maximum, EIP-7918 base cost.
    pub blob_params: Option<BlobParams>,
}

impl FullBlock {
    /// A block under `rules`.
    pub fn with_rules(
        rules: BlockRules,
        header: Header,
        txs: Vec<revm::context::TxEnv>,
        withdrawals: Option<Vec<Withdrawal>>,
        ommers: Vec<Ommer>,
    ) -> Self {
        Self {
            spec: rules.spec,
            chain_id: rules.chain_id,
            blob_params: rules.blob_params,
            deposit_contract: rules.deposit_contract,
            header,
            txs,
            withdrawals,
            ommers,
        }
    }

    /// A block of `chain`: its rules, chain id, deposit contract and blob
    /// parameters from the chain's schedule at the header's number and
    /// timestamp.
    pub fn on_chain(
        chain: &ChainSpec,
        header: Header,
        txs: Vec<revm::context::TxEnv>,
        withdrawals: Option<Vec<Withdrawal>>,
        ommers: Vec<Ommer>,
    ) -> Self {
        Self::with_rules(
            BlockRules::of(chain, &header),
            header,
            txs,
            withdrawals,
            ommers,
        )
    }

    /// revm's block environment for this header.
    pub fn block_env(&self) -> BlockEnv {
        let h = &self.header;
        let merged = self.spec.is_enabled_in(SpecId::MERGE);
        BlockEnv {
            number: U256::from(h.number),
            beneficiary: h.beneficiary,
            timestamp: U256::from(h.timestamp),
            gas_limit: h.gas_limit,
            basefee: h.base_fee_per_gas.unwrap_or_default(),
            difficulty: h.difficulty,
            prevrandao: merged.then_some(h.mix_hash),
            blob_excess_gas_and_price: self.spec.is_enabled_in(SpecId::CANCUN).then(|| {
                let fraction = match &self.blob_params {
                    Some(params) => u64::try_from(params.update_fraction).unwrap_or(u64::MAX),
                    None if self.spec.is_enabled_in(SpecId::PRAGUE) => {
                        BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE
                    }
                    None => BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN,
                };
                BlobExcessGasAndPrice::new(h.excess_blob_gas.unwrap_or_default(), fraction)
            }),
            ..Default::default()
        }
    }

    /// The input of [`execute_block`](crate::execute_block) for the transactions of this block.
    pub fn block_input(&self) -> BlockInput {
        BlockInput {
            spec: self.spec,
            chain_id: self.chain_id,
            block: self.block_env(),
            txs: self.txs.clone(),
        }
    }

    /// Gas the blobs of this block's transactions use.
    pub fn blob_gas_used(&self) -> u64 {
        self.txs
            .iter()
            .map(|tx| tx.blob_hashes.len() as u64 * GAS_PER_BLOB)
            .sum()
    }
}

/// Why a block could not be processed. Any of these makes the block invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// A transaction could not be executed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The storage failed outside the transactions (system calls, rewards).
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// A mandatory system call failed.
    #[error("system call to {contract} failed: {reason}")]
    SystemCall {
        /// The contract called.
        contract: Address,
        /// revm's outcome.
        reason: String,
    },
    /// The block breaks a block-level rule (blob gas, deposit log layout,
    /// missing header field, ...).
    #[error("invalid block: {0}")]
    Invalid(String),
}

/// Everything processing a block produces.
#[derive(Clone, Debug)]
pub struct ProcessedBlock {
    /// The transactions' receipts and diffs, as [`execute_block`](crate::execute_block) returned them.
    pub result: BlockResult,
    /// Changes of the pre-block system calls.
    pub pre_block: StateDiff,
    /// Changes after the transactions: withdrawals, request system calls, rewards.
    pub post_block: StateDiff,
    /// The whole block's changes: pre-block, transactions, post-block.
    pub state: StateDiff,
    /// Consensus receipts. Before Byzantium their status is the intermediate
    /// state root when one was computable, else [`B256::ZERO`].
    pub receipts: Vec<ReceiptEnvelope>,
    /// Root of the receipts trie; `None` before Byzantium without
    /// intermediate state roots.
    pub receipts_root: Option<B256>,
    /// Bloom of all logs.
    pub logs_bloom: Bloom,
    /// Gas used by the transactions.
    pub gas_used: u64,
    /// Blob gas used (EIP-4844).
    pub blob_gas_used: u64,
    /// EIP-7685 requests hash (Prague on).
    pub requests_hash: Option<B256>,
}

/// The outcome of one check of a processed block against its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`gas_used`, `receipts_root`, ...).
    pub name: &'static str,
    /// `None` if it matched, else what differed.
    pub mismatch: Option<String>,
}

impl ProcessedBlock {
    /// Compares everything computable with the header: gas used, logs
    /// bloom, receipts root (when known), blob gas used (Cancun on), requests
    /// hash (Prague on) and withdrawals root (Shanghai on). The state root is
    /// not here: it needs a complete pre-state (see [`crate::trie::state_root`]).
    pub fn header_checks(&self, block: &FullBlock) -> Vec<Check> {
        fn check<T: PartialEq + std::fmt::Debug>(name: &'static str, got: T, want: T) -> Check {
            Check {
                name,
                mismatch: (got != want)
                    .then(|| format!("{name}: computed {got:?}, header {want:?}")),
            }
        }
        let h = &block.header;
        let mut checks = vec![
            check("gas_used", self.gas_used, h.gas_used),
            check("logs_bloom", self.logs_bloom, h.logs_bloom),
        ];
        if let Some(root) = self.receipts_root {
            checks.push(check("receipts_root", root, h.receipts_root));
        }
        if block.spec.is_enabled_in(SpecId::CANCUN) || h.blob_gas_used.is_some() {
            checks.push(check(
                "blob_gas_used",
                Some(self.blob_gas_used),
                h.blob_gas_used,
            ));
        }
        if block.spec.is_enabled_in(SpecId::PRAGUE) || h.requests_hash.is_some() {
            checks.push(check("requests_hash", self.requests_hash, h.requests_hash));
        }
        if block.spec.is_enabled_in(SpecId::SHANGHAI) || h.withdrawals_root.is_some() {
            let root = block
                .withdrawals
                .as_ref()
                .map(|w| alloy_consensus::proofs::calculate_withdrawals_root(w));
            checks.push(check("withdrawals_root", root, h.withdrawals_root));
        }
        checks
    }
}

/// Computes state roots for pre-Byzantium receipts: the root of the
/// pre-block state with a diff applied.
pub type IntermediateRoots<'a> = &'a dyn Fn(&StateDiff) -> B256;

/// What runs a block's transactions for [`process_block`]: parevm's
/// [`Config`](crate::Config) implements it with
/// [`execute_block`](crate::execute_block).
pub trait ExecuteTxs {
    /// Executes `input`'s transactions over `storage`.
    ///
    /// # Errors
    /// As [`execute_block`](crate::execute_block).
    fn execute_txs<S: Storage>(
        &self,
        storage: &S,
        input: &BlockInput,
    ) -> Result<BlockResult, ExecError>;
}

/// Processes a whole block: pre-block system calls, the transactions
/// through `executor` (a [`Config`](crate::Config): in parallel), post-block
/// changes, receipts, bloom and requests. Pre-Byzantium receipts root is
/// left `None` (see [`process_block_with_roots`]).
///
/// # Errors
/// A [`BlockError`] when a transaction is invalid, a mandatory system call
/// fails, or a block-level rule is broken.
pub fn process_block<S: Storage>(
    storage: &S,
    block: &FullBlock,
    executor: &impl ExecuteTxs,
) -> Result<ProcessedBlock, BlockError> {
    process_block_with_roots(storage, block, executor, None)
}

/// [`process_block`], with a function giving the state root of the
/// pre-block state plus a diff, so that pre-Byzantium receipts (which hold
/// the state root after each transaction) and their root can be computed.
///
/// The phases: the block-level rules that need no execution, the
/// pre-block system calls, the transactions over the pre-block state with
/// the system calls' changes on top, the post-block changes (withdrawals,
/// requests, rewards), then the receipts.
///
/// # Errors
/// As [`process_block`].
pub fn process_block_with_roots<S: Storage>(
    storage: &S,
    block: &FullBlock,
    executor: &impl ExecuteTxs,
    roots: Option<IntermediateRoots<'_>>,
) -> Result<ProcessedBlock, BlockError> {
    let blob_gas_used = check_block_rules(block)?;
    let mut system = SystemCaller::new(storage, block.block_env(), block.input_cfg(), block.spec);
    pre_block_calls(&mut system, block)?;
    let pre_block = std::mem::take(&mut system.diff);
    let layered = LayeredStorage::new(storage, pre_block.clone());
    let result = executor.execute_txs(&layered, &block.block_input())?;
    check_gas_limits(block, &result)?;
    system.db.commit(&result.state);
    let requests_hash = post_block_changes(&mut system, block, &result)?;
    let post_block = std::mem::take(&mut system.diff);
    let (receipts, receipts_root, logs_bloom) = receipts(block, &result, &pre_block, roots)?;
    let mut state = pre_block.clone();
    merge_into(&mut state, &result.state);
    merge_into(&mut state, &post_block);
    Ok(ProcessedBlock {
        gas_used: result.gas_used(),
        result,
        pre_block,
        post_block,
        state,
        receipts,
        receipts_root,
        logs_bloom,
        blob_gas_used,
        requests_hash,
    })
}

/// The block-level rules that need no execution (blobs, withdrawals);
/// returns the blob gas used.
fn check_block_rules(block: &FullBlock) -> Result<u64, BlockError> {
    let spec = block.spec;
    let blob_gas_used = block.blob_gas_used();
    if let Some(params) = &block.blob_params {
        if blob_gas_used > params.max_blob_gas_per_block() {
            return Err(BlockError::Invalid(format!(
                "blob gas used {blob_gas_used} exceeds the maximum of {} blobs",
                params.max_blob_count
            )));
        }
        if let Some((i, tx)) = block
            .txs
            .iter()
            .enumerate()
            .find(|(_, tx)| tx.blob_hashes.len() as u64 > params.max_blobs_per_tx)
        {
            return Err(BlockError::Invalid(format!(
                "transaction {i} carries {} blobs, more than {} per transaction",
                tx.blob_hashes.len(),
                params.max_blobs_per_tx
            )));
        }
    } else if blob_gas_used > 0 {
        return Err(BlockError::Invalid(
            "blob transactions before Cancun".into(),
        ));
    }
    if spec.is_enabled_in(SpecId::SHANGHAI) != block.withdrawals.is_some() {
        return Err(BlockError::Invalid(format!(
            "withdrawals {} in a {spec:?} block",
            if block.withdrawals.is_some() {
                "present"
            } else {
                "missing"
            }
        )));
    }

    Ok(blob_gas_used)
}

/// The EIP-4788 and EIP-2935 system calls before the transactions.
fn pre_block_calls<S: Storage>(
    system: &mut SystemCaller<'_, S>,
    block: &FullBlock,
) -> Result<(), BlockError> {
    let (spec, h) = (block.spec, &block.header);
    // Pre-block system calls.
    if spec.is_enabled_in(SpecId::CANCUN) {
        let root = h.parent_beacon_block_root.ok_or_else(|| {
            BlockError::Invalid("Cancun block without parentBeaconBlockRoot".into())
        })?;
        if h.number > 0 {
            system.call(BEACON_ROOTS_ADDRESS, root.0.to_vec().into(), false)?;
        }
    }
    if spec.is_enabled_in(SpecId::PRAGUE) && h.number > 0 {
        system.call(
            HISTORY_STORAGE_ADDRESS,
            h.parent_hash.0.to_vec().into(),
            false,
        )?;
    }
    Ok(())
}

/// Each transaction's gas limit must fit in what the block has left.
fn check_gas_limits(block: &FullBlock, result: &BlockResult) -> Result<(), BlockError> {
    let h = &block.header;
    let mut before = 0u64;
    for (i, (tx, env)) in result.txs.iter().zip(&block.txs).enumerate() {
        if env.gas_limit > h.gas_limit.saturating_sub(before) {
            return Err(BlockError::Invalid(format!(
                "transaction {i} gas limit {} exceeds the block's remaining gas {}",
                env.gas_limit,
                h.gas_limit.saturating_sub(before)
            )));
        }
        before = tx.receipt.cumulative_gas_used;
    }
    Ok(())
}

/// Withdrawals, EIP-7685 requests and pre-merge rewards after the
/// transactions; returns the requests hash (Prague on).
fn post_block_changes<S: Storage>(
    system: &mut SystemCaller<'_, S>,
    block: &FullBlock,
    result: &BlockResult,
) -> Result<Option<B256>, BlockError> {
    let (spec, h) = (block.spec, &block.header);
    if let Some(withdrawals) = &block.withdrawals {
        for w in withdrawals {
            let wei = U256::from(w.amount) * U256::from(1_000_000_000u64);
            system.credit(w.address, wei)?;
        }
    }
    let requests_hash = if spec.is_enabled_in(SpecId::PRAGUE) {
        let mut requests = Requests::default();
        let mut deposits = Vec::new();
        for tx in &result.txs {
            for log in &tx.receipt.logs {
                if log.address == block.deposit_contract
                    && log.topics().first() == Some(&DEPOSIT_EVENT_TOPIC)
                {
                    deposits.extend_from_slice(&parse_deposit(&log.data.data)?);
                }
            }
        }
        requests.push_request_with_type(0, deposits);
        let withdrawals = system.call(WITHDRAWAL_REQUEST_ADDRESS, Bytes::new(), true)?;
        requests.push_request_with_type(1, withdrawals);
        let consolidations = system.call(CONSOLIDATION_REQUEST_ADDRESS, Bytes::new(), true)?;
        requests.push_request_with_type(2, consolidations);
        Some(requests.requests_hash())
    } else {
        None
    };
    if !spec.is_enabled_in(SpecId::MERGE) {
        let base = block_reward(spec);
        let ommers = block.ommers.len() as u64;
        system.credit(
            h.beneficiary,
            base + base * U256::from(ommers) / U256::from(32),
        )?;
        for ommer in &block.ommers {
            let distance = (ommer.number + 8).saturating_sub(h.number);
            system.credit(
                ommer.beneficiary,
                base * U256::from(distance) / U256::from(8),
            )?;
        }
    }
    Ok(requests_hash)
}

/// Consensus receipts, their root and the logs bloom.
fn receipts(
    block: &FullBlock,
    result: &BlockResult,
    pre_block: &StateDiff,
    roots: Option<IntermediateRoots<'_>>,
) -> Result<(Vec<ReceiptEnvelope>, Option<B256>, Bloom), BlockError> {
    let spec = block.spec;
    let byzantium = spec.is_enabled_in(SpecId::BYZANTIUM);
    let mut running = pre_block.clone();
    let mut receipts = Vec::with_capacity(result.txs.len());
    let mut logs_bloom = Bloom::ZERO;
    for (tx, env) in result.txs.iter().zip(&block.txs) {
        let status = if byzantium {
            Eip658Value::Eip658(tx.receipt.success())
        } else {
            merge_into(&mut running, &tx.changes);
            Eip658Value::PostState(roots.map_or(B256::ZERO, |root| root(&running)))
        };
        let receipt = Receipt {
            status,
            cumulative_gas_used: tx.receipt.cumulative_gas_used,
            logs: tx.receipt.logs.clone(),
        };
        let with_bloom = ReceiptWithBloom::from(receipt);
        logs_bloom |= with_bloom.logs_bloom;
        let ty = TxType::try_from(env.tx_type).map_err(|_| {
            BlockError::Invalid(format!("unknown transaction type {}", env.tx_type))
        })?;
        receipts.push(ReceiptEnvelope::from_typed(ty, with_bloom));
    }
    let receipts_root = (byzantium || roots.is_some())
        .then(|| alloy_consensus::proofs::calculate_receipt_root(&receipts));

    Ok((receipts, receipts_root, logs_bloom))
}

impl FullBlock {
    fn input_cfg(&self) -> revm::context::CfgEnv {
        let mut cfg = revm::context::CfgEnv::new_with_spec(self.spec);
        cfg.chain_id = self.chain_id;
        cfg
    }
}
