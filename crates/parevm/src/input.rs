//! What [`execute_block`](crate::execute_block) is asked to do: the block
//! ([`BlockInput`]) and how to run it ([`Config`], [`Mode`]).

use std::num::NonZeroUsize;

use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::primitives::hardfork::SpecId;
use revm::primitives::TxKind;

/// Everything needed to execute a block's transactions.
#[derive(Clone, Debug)]
pub struct BlockInput {
    /// The fork rules (see [`ChainSpec::spec_at`](crate::chain::ChainSpec::spec_at)).
    pub spec: SpecId,
    /// Chain id (1 for Ethereum mainnet).
    pub chain_id: u64,
    /// Number, timestamp, beneficiary, base fee, gas limit, prevrandao /
    /// difficulty and blob gas price of the block.
    pub block: BlockEnv,
    /// The transactions, in block order, with recovered senders.
    pub txs: Vec<TxEnv>,
}

impl BlockInput {
    /// revm's configuration for this block: the fork's mainnet gas
    /// parameters, the chain id and the per-transaction blob limit.
    pub fn cfg(&self) -> CfgEnv {
        let mut cfg = CfgEnv::new_with_spec(self.spec);
        cfg.chain_id = self.chain_id;
        // revm checks no blob count unless told: EIP-4844 (Cancun) allows
        // 6 blobs, EIP-7691 (Prague) 9, EIP-7594 (Osaka) caps a
        // transaction at 6 again.
        if let Some(max) = max_blobs_per_tx(self.spec) {
            cfg.set_max_blobs_per_tx(max);
        }
        cfg
    }
}

/// The most blobs one transaction may carry under `spec` (`None` before
/// Cancun, where blob transactions are rejected anyway).
pub fn max_blobs_per_tx(spec: SpecId) -> Option<u64> {
    if spec.is_enabled_in(SpecId::OSAKA) {
        Some(6)
    } else if spec.is_enabled_in(SpecId::PRAGUE) {
        Some(9)
    } else if spec.is_enabled_in(SpecId::CANCUN) {
        Some(6)
    } else {
        None
    }
}

/// Which path [`execute_block`](crate::execute_block) takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Parallel unless the block is too small or too serial to gain from it.
    #[default]
    Auto,
    /// Always Block-STM (even with one thread).
    BlockStm,
    /// Always optimistic chunks (one contiguous chunk of the block per
    /// thread, checked afterwards; the sequential loop finishes the block
    /// from the first conflict). Fastest on blocks without dependencies.
    Chunked,
    /// Always optimistic chunks, whose storage reads from before the chunk
    /// are tracked as deltas (module `evm::deltas`): transactions that only add
    /// to or subtract from the same slots (transfers to one token holder)
    /// do not conflict, as long as every decision they took comes out the
    /// same with the real values. Tracking costs an inspector on every
    /// instruction of the chunks after the first.
    ChunkedDeltas,
    /// Always the sequential loop.
    Sequential,
}

/// How to execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Worker threads for the parallel path.
    pub threads: NonZeroUsize,
    /// Path selection.
    pub mode: Mode,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            mode: Mode::Auto,
        }
    }
}

impl Config {
    /// Block-STM with `threads` workers.
    pub fn block_stm(threads: usize) -> Self {
        Self {
            threads: NonZeroUsize::new(threads).unwrap_or(NonZeroUsize::MIN),
            mode: Mode::BlockStm,
        }
    }

    /// The sequential path.
    pub fn sequential() -> Self {
        Self {
            threads: NonZeroUsize::MIN,
            mode: Mode::Sequential,
        }
    }
}

/// The gas of a plain transfer to an account without code.
pub(crate) const PLAIN_TRANSFER_GAS: u64 = 21_000;

/// A transaction that only moves value: a call with no calldata, access
/// list, blobs or authorizations. Sent to an account without code it costs
/// exactly the 21,000 gas of a transaction.
pub(crate) fn is_plain_transfer(tx: &TxEnv) -> bool {
    matches!(tx.kind, TxKind::Call(_))
        && tx.data.is_empty()
        && tx.access_list.is_empty()
        && tx.blob_hashes.is_empty()
        && tx.authorization_list.is_empty()
}

#[cfg(test)]
impl BlockInput {
    /// A block made by the test kit (which sees this crate as a dependency,
    /// so its `BlockInput` is another type to the unit tests).
    pub(crate) fn from_kit(input: parevm_testkit::parevm::BlockInput) -> Self {
        Self {
            spec: input.spec,
            chain_id: input.chain_id,
            block: input.block,
            txs: input.txs,
        }
    }
}
