//! Whole-block processing around the transaction engine.
//!
//! [`execute_block`] runs only a block's transactions. A real block also
//! has work before and after them, which this module adds:
//!
//! - **before**: the EIP-4788 beacon-root and EIP-2935 block-hash-history
//!   system calls;
//! - **the transactions**, still through [`execute_block`] (so in parallel),
//!   over a [`LayeredStorage`]: the pre-block state plus the system calls'
//!   changes;
//! - **after**: EIP-4895 withdrawals, EIP-7685 requests (EIP-6110 deposits
//!   from logs, EIP-7002 and EIP-7251 system calls), pre-merge block and
//!   uncle rewards;
//! - **commitments**: typed receipts and their root, the logs bloom, blob gas
//!   used, the requests hash, and (with a complete pre-state, see
//!   [`FullState`]) intermediate and final state roots.
//!
//! System calls and rewards run sequentially on a small overlay over the
//! storage; their effects are ordinary [`StateDiff`]s merged before and
//! after the transactions' diff.

use std::collections::{BTreeMap, HashMap};

use alloy_consensus::{Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxType};
use alloy_eips::eip1559::BaseFeeParams;
use alloy_eips::eip4895::Withdrawal;
use alloy_eips::eip7685::Requests;
use alloy_eips::eip7840::BlobParams;
use alloy_primitives::{address, b256, keccak256, Address, Bloom, Bytes, B256, U256};
use alloy_trie::{TrieAccount, EMPTY_ROOT_HASH};
use revm::bytecode::Bytecode;
use revm::context::result::ExecutionResult;
use revm::context::{BlockEnv, Context};
use revm::context_interface::block::BlobExcessGasAndPrice;
use revm::database_interface::Database;
use revm::handler::{MainBuilder, MainContext, SystemCallEvm};
use revm::primitives::eip4844::{
    BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
};
use revm::primitives::hardfork::SpecId;
use revm::primitives::KECCAK_EMPTY;

use crate::error::{ExecError, StorageError};
use crate::output::{merge_into, AccountChange, AccountState, BlockResult, StateDiff};
use crate::sequential::OverlayDb;
use crate::storage::{AccountBasic, Storage};
use crate::tx_task::changes_of;
use crate::{execute_block, BlockInput, Config};

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
/// The mainnet deposit contract (EIP-6110 deposit requests come from its logs).
pub const MAINNET_DEPOSIT_CONTRACT: Address = address!("00000000219ab540356cBB839Cbe05303d7705Fa");
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
    /// A block on a chain whose deposit contract is mainnet's.
    pub fn new(
        spec: SpecId,
        chain_id: u64,
        header: Header,
        txs: Vec<revm::context::TxEnv>,
        withdrawals: Option<Vec<Withdrawal>>,
        ommers: Vec<Ommer>,
    ) -> Self {
        Self {
            spec,
            chain_id,
            header,
            txs,
            withdrawals,
            ommers,
            deposit_contract: MAINNET_DEPOSIT_CONTRACT,
            blob_params: default_blob_params(spec),
        }
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

    /// The input of [`execute_block`] for the transactions of this block.
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

/// The blob parameters a fork starts with (Cancun: 3/6 blobs; Prague:
/// 6/9; Osaka: 6/9, at most 6 per transaction, EIP-7918 reserve price),
/// `None` before Cancun. Blob-parameter-only forks (BPO1...) keep Osaka's
/// EVM rules and change only these; pass them explicitly.
pub fn default_blob_params(spec: SpecId) -> Option<BlobParams> {
    if spec.is_enabled_in(SpecId::OSAKA) {
        Some(BlobParams::osaka())
    } else if spec.is_enabled_in(SpecId::PRAGUE) {
        Some(BlobParams::prague())
    } else if spec.is_enabled_in(SpecId::CANCUN) {
        Some(BlobParams::cancun())
    } else {
        None
    }
}

/// Checks a header against its parent: hash link, number, timestamp, gas
/// limit bounds, gas used, extra data, EIP-1559 base fee, post-merge
/// constants, EIP-4844 excess blob gas, and which optional fields a fork
/// requires. Proof-of-work difficulty and seal are not checked.
///
/// # Errors
/// [`BlockError::Invalid`] naming the first rule broken.
pub fn validate_header(
    block: &FullBlock,
    parent: &Header,
    parent_spec: SpecId,
) -> Result<(), BlockError> {
    let h = &block.header;
    let spec = block.spec;
    let fail = |m: String| Err(BlockError::Invalid(m));
    if h.parent_hash != parent.hash_slow() {
        return fail(format!("parent hash {} is not the parent's", h.parent_hash));
    }
    if h.number != parent.number + 1 {
        return fail(format!("number {} after {}", h.number, parent.number));
    }
    if h.timestamp <= parent.timestamp {
        return fail(format!(
            "timestamp {} not after the parent's {}",
            h.timestamp, parent.timestamp
        ));
    }
    if h.extra_data.len() > 32 {
        return fail(format!("extra data of {} bytes", h.extra_data.len()));
    }
    if h.gas_used > h.gas_limit {
        return fail(format!(
            "gas used {} above gas limit {}",
            h.gas_used, h.gas_limit
        ));
    }
    let london = spec.is_enabled_in(SpecId::LONDON);
    let parent_london = parent_spec.is_enabled_in(SpecId::LONDON);
    // At the London transition the parent's limit is doubled (elasticity).
    let parent_limit = if london && !parent_london {
        parent.gas_limit.saturating_mul(2)
    } else {
        parent.gas_limit
    };
    let bound = parent_limit / 1024;
    if h.gas_limit.abs_diff(parent_limit) >= bound || h.gas_limit < 5000 {
        return fail(format!(
            "gas limit {} out of bounds for parent {}",
            h.gas_limit, parent_limit
        ));
    }
    if london {
        let expected = if parent_london {
            parent
                .next_block_base_fee(BaseFeeParams::ethereum())
                .ok_or_else(|| BlockError::Invalid("parent without base fee".into()))?
        } else {
            1_000_000_000
        };
        if h.base_fee_per_gas != Some(expected) {
            return fail(format!(
                "base fee {:?}, expected {expected}",
                h.base_fee_per_gas
            ));
        }
    } else if h.base_fee_per_gas.is_some() {
        return fail("base fee before London".into());
    }
    if spec.is_enabled_in(SpecId::MERGE) {
        if !h.difficulty.is_zero() || h.nonce != alloy_primitives::B64::ZERO {
            return fail("non-zero difficulty or nonce after the merge".into());
        }
        if h.ommers_hash != alloy_consensus::EMPTY_OMMER_ROOT_HASH {
            return fail("uncles after the merge".into());
        }
    }
    let require = |present: bool, enabled: bool, field: &str| {
        if present != enabled {
            Err(BlockError::Invalid(format!(
                "{field} {} in a {spec:?} header",
                if present { "present" } else { "missing" }
            )))
        } else {
            Ok(())
        }
    };
    require(
        h.withdrawals_root.is_some(),
        spec.is_enabled_in(SpecId::SHANGHAI),
        "withdrawals root",
    )?;
    let cancun = spec.is_enabled_in(SpecId::CANCUN);
    require(h.blob_gas_used.is_some(), cancun, "blob gas used")?;
    require(h.excess_blob_gas.is_some(), cancun, "excess blob gas")?;
    require(
        h.parent_beacon_block_root.is_some(),
        cancun,
        "parent beacon block root",
    )?;
    require(
        h.requests_hash.is_some(),
        spec.is_enabled_in(SpecId::PRAGUE),
        "requests hash",
    )?;
    if let Some(params) = &block.blob_params {
        let expected = if parent_spec.is_enabled_in(SpecId::CANCUN) {
            params.next_block_excess_blob_gas_osaka(
                parent.excess_blob_gas.unwrap_or_default(),
                parent.blob_gas_used.unwrap_or_default(),
                parent.base_fee_per_gas.unwrap_or_default(),
            )
        } else {
            0
        };
        if h.excess_blob_gas != Some(expected) {
            return fail(format!(
                "excess blob gas {:?}, expected {expected}",
                h.excess_blob_gas
            ));
        }
    }
    Ok(())
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
    /// The transactions' receipts and diffs, as [`execute_block`] returned them.
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
    /// not here: it needs a complete pre-state (see [`FullState`]).
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

/// Processes a whole block: pre-block system calls, the transactions
/// through [`execute_block`] with `config`, post-block changes, receipts,
/// bloom and requests. Pre-Byzantium receipts root is left `None` (see
/// [`process_block_with_roots`]).
///
/// # Errors
/// A [`BlockError`] when a transaction is invalid, a mandatory system call
/// fails, or a block-level rule is broken.
pub fn process_block<S: Storage>(
    storage: &S,
    block: &FullBlock,
    config: &Config,
) -> Result<ProcessedBlock, BlockError> {
    process_block_with_roots(storage, block, config, None)
}

/// [`process_block`], with a function giving the state root of the
/// pre-block state plus a diff, so that pre-Byzantium receipts (which hold
/// the state root after each transaction) and their root can be computed.
///
/// # Errors
/// As [`process_block`].
pub fn process_block_with_roots<S: Storage>(
    storage: &S,
    block: &FullBlock,
    config: &Config,
    roots: Option<IntermediateRoots<'_>>,
) -> Result<ProcessedBlock, BlockError> {
    let spec = block.spec;
    let h = &block.header;
    let block_env = block.block_env();

    // Block-level rules that need no execution.
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

    let mut system = SystemCaller::new(storage, block_env.clone(), block.input_cfg(), spec);

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
    let pre_block = std::mem::take(&mut system.diff);

    // The transactions, in parallel when the config says so.
    let layered = LayeredStorage::new(storage, pre_block.clone());
    let input = block.block_input();
    let result = execute_block(&layered, &input, config)?;
    // Each transaction's gas limit must fit in what the block has left.
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
    system.db.commit(&result.state);

    // Post-block: withdrawals, requests, rewards.
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
    let post_block = std::mem::take(&mut system.diff);

    // Receipts.
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

impl FullBlock {
    fn input_cfg(&self) -> revm::context::CfgEnv {
        let mut cfg = revm::context::CfgEnv::new_with_spec(self.spec);
        cfg.chain_id = self.chain_id;
        cfg
    }
}

/// The proof-of-work block reward of a fork.
fn block_reward(spec: SpecId) -> U256 {
    let ether = U256::from(10u64).pow(U256::from(18));
    if spec.is_enabled_in(SpecId::PETERSBURG) {
        ether * U256::from(2)
    } else if spec.is_enabled_in(SpecId::BYZANTIUM) {
        ether * U256::from(3)
    } else {
        ether * U256::from(5)
    }
}

/// Decodes one `DepositEvent` log's data into the 192-byte EIP-6110 request
/// (pubkey, withdrawal credentials, amount, signature, index), enforcing the
/// exact ABI layout the deposit contract emits.
fn parse_deposit(data: &[u8]) -> Result<Vec<u8>, BlockError> {
    // Five dynamic `bytes` fields: offsets, then (length, padded data) each.
    const FIELDS: [(usize, usize); 5] = [(160, 48), (256, 32), (320, 8), (384, 96), (512, 8)];
    let bad = |what: String| BlockError::Invalid(format!("invalid deposit log: {what}"));
    if data.len() != 576 {
        return Err(bad(format!("data length {} != 576", data.len())));
    }
    let word = |at: usize| -> Result<usize, BlockError> {
        let w = U256::from_be_slice(&data[at..at + 32]);
        usize::try_from(w).map_err(|_| bad(format!("word at {at} too large")))
    };
    let mut out = Vec::with_capacity(192);
    for (i, (offset, size)) in FIELDS.into_iter().enumerate() {
        if word(i * 32)? != offset {
            return Err(bad(format!("field {i} offset")));
        }
        if word(offset)? != size {
            return Err(bad(format!("field {i} size")));
        }
        out.extend_from_slice(&data[offset + 32..offset + 32 + size]);
    }
    Ok(out)
}

/// Sequential EVM for system calls and balance credits around the block's
/// transactions, recording their changes.
struct SystemCaller<'a, S: Storage> {
    db: OverlayDb<'a, S>,
    block: BlockEnv,
    cfg: revm::context::CfgEnv,
    spec: SpecId,
    diff: StateDiff,
}

impl<'a, S: Storage> SystemCaller<'a, S> {
    fn new(storage: &'a S, block: BlockEnv, cfg: revm::context::CfgEnv, spec: SpecId) -> Self {
        Self {
            db: OverlayDb::new(storage),
            block,
            cfg,
            spec,
            diff: StateDiff::new(),
        }
    }

    fn record<'c, C: ?Sized>(&mut self, changes: &'c C)
    where
        &'c C: IntoIterator<Item = (&'c Address, &'c AccountChange)>,
    {
        self.db.commit(changes);
        merge_into(&mut self.diff, changes);
    }

    /// Calls a system contract. Without code there, an optional call does
    /// nothing and a mandatory one fails; a mandatory call must succeed.
    fn call(
        &mut self,
        contract: Address,
        data: Bytes,
        mandatory: bool,
    ) -> Result<Bytes, BlockError> {
        let has_code = self
            .db
            .basic(contract)?
            .is_some_and(|info| info.code_hash != KECCAK_EMPTY);
        if !has_code {
            if mandatory {
                return Err(BlockError::SystemCall {
                    contract,
                    reason: "no code at the system contract".into(),
                });
            }
            return Ok(Bytes::new());
        }
        let mut evm = Context::mainnet()
            .with_db(&mut self.db)
            .with_block(self.block.clone())
            .with_cfg(self.cfg.clone())
            .build_mainnet();
        let outcome = evm.system_call(contract, data);
        drop(evm);
        let outcome = outcome.map_err(|e| BlockError::SystemCall {
            contract,
            reason: e.to_string(),
        })?;
        let output = match outcome.result {
            ExecutionResult::Success { output, .. } => output.into_data(),
            other if mandatory => {
                return Err(BlockError::SystemCall {
                    contract,
                    reason: format!("{other:?}"),
                })
            }
            _ => Bytes::new(),
        };
        let mut changes = changes_of(&outcome.state, self.spec);
        changes.remove(&SYSTEM_ADDRESS);
        self.record(&changes);
        Ok(output)
    }

    /// Adds wei to an account outside any transaction (withdrawal, reward),
    /// with EIP-161 touch semantics: an account left empty is removed.
    fn credit(&mut self, address: Address, amount: U256) -> Result<(), BlockError> {
        let before = self.db.basic(address)?;
        let (balance, nonce, code_hash) = match &before {
            Some(info) => (
                info.balance.saturating_add(amount),
                info.nonce,
                info.code_hash,
            ),
            None => (amount, 0, KECCAK_EMPTY),
        };
        let empty = balance.is_zero() && nonce == 0 && code_hash == KECCAK_EMPTY;
        let change = if empty && self.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) {
            if before.is_none() {
                return Ok(());
            }
            AccountChange {
                info: None,
                storage_cleared: true,
                storage: BTreeMap::new(),
            }
        } else {
            AccountChange {
                info: Some(AccountState {
                    balance,
                    nonce,
                    code_hash,
                    code: None,
                }),
                storage_cleared: false,
                storage: BTreeMap::new(),
            }
        };
        self.record(&StateDiff::from([(address, change)]));
        Ok(())
    }
}

/// A [`Storage`] seen through a [`StateDiff`]: the base state with the
/// diff's accounts, slots, deletions and code applied on top.
#[derive(Clone, Debug)]
pub struct LayeredStorage<S> {
    base: S,
    overlay: StateDiff,
    codes: HashMap<B256, Bytecode>,
}

impl<S: Storage> LayeredStorage<S> {
    /// `base` with `overlay` applied.
    pub fn new(base: S, overlay: StateDiff) -> Self {
        let codes = overlay
            .values()
            .filter_map(|c| c.info.as_ref())
            .filter_map(|i| i.code.clone().map(|code| (i.code_hash, code)))
            .collect();
        Self {
            base,
            overlay,
            codes,
        }
    }

    /// The overlay.
    pub fn overlay(&self) -> &StateDiff {
        &self.overlay
    }
}

impl<S: Storage> Storage for LayeredStorage<S> {
    /// A slot the overlay sets to non-zero counts; otherwise the base's
    /// storage counts unless the overlay cleared or deleted the account.
    /// (An overlay that zeroes every base slot one by one is not seen.)
    fn has_storage(&self, address: &Address) -> Result<bool, StorageError> {
        match self.overlay.get(address) {
            Some(change) if change.info.is_none() => Ok(false),
            Some(change) if change.storage.values().any(|v| !v.is_zero()) => Ok(true),
            Some(change) if change.storage_cleared => Ok(false),
            _ => self.base.has_storage(address),
        }
    }

    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        match self.overlay.get(address) {
            Some(change) => Ok(change.info.as_ref().map(|i| AccountBasic {
                balance: i.balance,
                nonce: i.nonce,
                code_hash: i.code_hash,
            })),
            None => self.base.account(address),
        }
    }

    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError> {
        match self.codes.get(code_hash) {
            Some(code) => Ok(code.clone()),
            None => self.base.code_by_hash(code_hash),
        }
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        match self.overlay.get(address) {
            Some(change) => match change.storage.get(slot) {
                Some(value) => Ok(*value),
                None if change.storage_cleared || change.info.is_none() => Ok(U256::ZERO),
                None => self.base.storage(address, slot),
            },
            None => self.base.storage(address, slot),
        }
    }

    fn block_hash(&self, number: u64) -> Result<B256, StorageError> {
        self.base.block_hash(number)
    }
}

/// One account of a [`FullState`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FullAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Code hash ([`KECCAK_EMPTY`] without code).
    pub code_hash: B256,
    /// Non-zero storage slots.
    pub storage: BTreeMap<U256, U256>,
}

/// A complete world state in memory (every account, every non-zero slot),
/// so that state roots can be computed: the genesis of a blockchain test
/// and everything imported on top of it.
#[derive(Clone, Debug, Default)]
pub struct FullState {
    accounts: BTreeMap<Address, FullAccount>,
    codes: HashMap<B256, Bytecode>,
    block_hashes: HashMap<u64, B256>,
}

impl FullState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an account with its code and storage (zero slots are dropped).
    pub fn insert(
        &mut self,
        address: Address,
        balance: U256,
        nonce: u64,
        code: Bytes,
        storage: BTreeMap<U256, U256>,
    ) {
        let code_hash = if code.is_empty() {
            KECCAK_EMPTY
        } else {
            let hash = keccak256(&code);
            self.codes
                .insert(hash, crate::storage::bytecode_from_bytes(code));
            hash
        };
        let storage = storage.into_iter().filter(|(_, v)| !v.is_zero()).collect();
        self.accounts.insert(
            address,
            FullAccount {
                balance,
                nonce,
                code_hash,
                storage,
            },
        );
    }

    /// Records the hash of block `number` for `BLOCKHASH`.
    pub fn insert_block_hash(&mut self, number: u64, hash: B256) {
        self.block_hashes.insert(number, hash);
    }

    /// All accounts, ordered by address.
    pub fn accounts(&self) -> &BTreeMap<Address, FullAccount> {
        &self.accounts
    }

    /// Code by hash (empty code for [`KECCAK_EMPTY`]).
    pub fn code(&self, hash: &B256) -> Option<&Bytecode> {
        self.codes.get(hash)
    }

    /// Applies a block's (or transaction's) changes.
    pub fn apply(&mut self, diff: &StateDiff) {
        for (address, change) in diff {
            match &change.info {
                None => {
                    self.accounts.remove(address);
                }
                Some(info) => {
                    if let Some(code) = &info.code {
                        self.codes.insert(info.code_hash, code.clone());
                    }
                    let account = self.accounts.entry(*address).or_default();
                    if change.storage_cleared {
                        account.storage.clear();
                    }
                    account.balance = info.balance;
                    account.nonce = info.nonce;
                    account.code_hash = info.code_hash;
                    for (slot, value) in &change.storage {
                        if value.is_zero() {
                            account.storage.remove(slot);
                        } else {
                            account.storage.insert(*slot, *value);
                        }
                    }
                }
            }
        }
    }

    /// The state root (Merkle-Patricia trie of all accounts).
    pub fn state_root(&self) -> B256 {
        self.state_root_with(&StateDiff::new())
    }

    /// The state root this state would have with `diff` applied, without applying it.
    pub fn state_root_with(&self, diff: &StateDiff) -> B256 {
        let mut entries: Vec<(B256, TrieAccount)> =
            Vec::with_capacity(self.accounts.len() + diff.len());
        for (address, account) in &self.accounts {
            if diff.contains_key(address) {
                continue;
            }
            entries.push((
                keccak256(address),
                trie_account(
                    account.balance,
                    account.nonce,
                    account.code_hash,
                    storage_root(account.storage.iter()),
                ),
            ));
        }
        for (address, change) in diff {
            let Some(info) = &change.info else { continue };
            let base = self
                .accounts
                .get(address)
                .filter(|_| !change.storage_cleared)
                .map(|a| &a.storage);
            let mut slots: BTreeMap<U256, U256> = base.cloned().unwrap_or_default();
            slots.extend(change.storage.iter().map(|(k, v)| (*k, *v)));
            entries.push((
                keccak256(address),
                trie_account(
                    info.balance,
                    info.nonce,
                    info.code_hash,
                    storage_root(slots.iter()),
                ),
            ));
        }
        alloy_trie::root::state_root_unsorted(entries)
    }
}

fn trie_account(balance: U256, nonce: u64, code_hash: B256, storage_root: B256) -> TrieAccount {
    TrieAccount {
        nonce,
        balance,
        storage_root,
        code_hash,
    }
}

fn storage_root<'a>(slots: impl Iterator<Item = (&'a U256, &'a U256)>) -> B256 {
    let nonzero: Vec<(B256, U256)> = slots
        .filter(|(_, v)| !v.is_zero())
        .map(|(k, v)| (B256::from(*k), *v))
        .collect();
    if nonzero.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    alloy_trie::root::storage_root_unhashed(nonzero)
}

impl Storage for FullState {
    fn has_storage(&self, address: &Address) -> Result<bool, StorageError> {
        Ok(self
            .accounts
            .get(address)
            .is_some_and(|a| a.storage.values().any(|v| !v.is_zero())))
    }

    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        Ok(self.accounts.get(address).map(|a| AccountBasic {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
        }))
    }

    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError> {
        if *code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        self.codes
            .get(code_hash)
            .cloned()
            .ok_or_else(|| StorageError::new(format!("unknown code hash {code_hash}")))
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        Ok(self
            .accounts
            .get(address)
            .and_then(|a| a.storage.get(slot))
            .copied()
            .unwrap_or_default())
    }

    fn block_hash(&self, number: u64) -> Result<B256, StorageError> {
        Ok(self.block_hashes.get(&number).copied().unwrap_or_default())
    }
}
