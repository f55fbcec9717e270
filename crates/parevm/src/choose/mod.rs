//! The path choice: which path runs a block.
//!
//! Every path returns the same result, so the choice only decides how
//! fast it comes. It is made from the transactions alone (plus, for a few
//! accounts, whether they have code), before anything runs, so it must be
//! cheap: each pass stops as soon as its answer is known, and a large
//! block is first judged on its first eighth.
//!
//! # The decision
//! [`choose`] takes the first rule that applies:
//!
//! 1. **A forced mode** ([`Mode::Sequential`], [`Mode::BlockStm`],
//!    [`Mode::Chunked`], [`Mode::ChunkedDeltas`]) runs that path; Block-STM
//!    then never gives up.
//! 2. **One thread, or fewer than [`AUTO_MIN_TXS`] transactions**:
//!    sequential. Starting workers costs more than such a block can save.
//! 3. **A payout block** (one sender sends more than two thirds of the
//!    block, not all of them 21,000-gas payouts): chunks if the payouts
//!    run as chunks (at least 1,024 of them), else sequential
//!    ([`chains::payout_path`]). The passes below would reach the same
//!    answer at a higher cost.
//! 4. **Independent** (no two transactions share a sender, a recipient of
//!    value, a calldata address or a (contract, selector) of a call
//!    without addresses; a sender of plain transfers or a code-less
//!    account that only receives plain transfers may repeat, since the
//!    chunks predict such accounts): chunks
//!    ([`independence::independence`]).
//! 5. **Serial** (the longest estimated dependency chain, through nonces,
//!    value passed from one sender to the next, and payments to one
//!    recipient, is more than two thirds of the block;
//!    [`chains::looks_serial`]):
//!    - chunks that track storage deltas when the chain runs only through
//!      contract entries that distinct senders add to (transfers of one
//!      token to one holder: [`chains::looks_commutative`]);
//!    - chunks when it runs only through deposits, plain transfers to
//!      code-less accounts that send nothing in the block
//!      ([`chains::looks_serial_beyond_deposits`]);
//!    - otherwise sequential: there is little to overlap and every
//!      conflict would cost an abort.
//! 6. **Mostly plain transfers** (fewer than [`AUTO_MIN_TXS`] transactions
//!    carry calldata or create a contract, and they are under a quarter
//!    of the block): sequential. A plain transfer costs about what
//!    Block-STM spends on its bookkeeping ([`chains::mostly_transfers`]).
//! 7. **Otherwise Block-STM**, which gives up after 32 finished executions
//!    once validation aborted more than 30% of them ([`AUTO_GIVE_UP`]); the
//!    sequential loop then finishes the block from the longest final
//!    prefix, keeping the executions whose answers still hold.
//!
//! The estimates err one way: a block estimated serial that was not loses
//! its speedup, never correctness; a block estimated independent that was
//! not costs the chunks after the first conflict, which the sequential
//! loop finishes.
//!
//! # The estimates
//! Three kinds of dependency are estimated, all from the transactions:
//! - **nonce chains**: a transaction follows the previous one of its sender;
//! - **value flow**: a transaction follows the latest earlier transaction
//!   that paid its sender, as the recipient of a value transfer or as an
//!   address argument in the calldata (an ERC-20 `transfer(to, amount)`, a
//!   swap's recipient; [`look::address_arguments`] tells addresses from
//!   amounts);
//! - **shared recipients**: two transfers of value to one account both
//!   update its balance; two calls to one contract whose first address
//!   argument is the same (`transfer(hot, ..)` on one token, swaps on one
//!   pool) most likely update the same entry of that contract's state.

pub(crate) mod chains;
pub(crate) mod independence;
pub(crate) mod look;

use alloy_primitives::Address;
use revm::primitives::KECCAK_EMPTY;

use crate::block_stm::GiveUp;
use crate::input::{BlockInput, Config, Mode};
use crate::storage::{code_hash_of, Storage};

/// Below this many transactions `auto` runs sequentially: starting workers
/// and the Block-STM bookkeeping cost more than they can save.
pub(crate) const AUTO_MIN_TXS: usize = 24;

/// Blocks of at least this many transactions run the independence pass on
/// all threads.
const PARALLEL_PREDICT_MIN: usize = 2_048;

/// When `auto` gives up on Block-STM: after 32 finished executions, once
/// validation aborted more than three in ten of them. Independent blocks
/// abort none. On two threads, blocks that are one dependency chain (one
/// hot pool, one hot lending market) abort 36-40% of their executions and
/// lose to the sequential loop, while the mainnet fixture blocks that gain
/// from Block-STM abort 9-27% (a block losing at 33% is the exception).
pub(crate) const AUTO_GIVE_UP: GiveUp = GiveUp {
    min_executions: 32,
    max_waste: 0.3,
};

/// The path that runs a block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Path {
    /// The sequential loop.
    Sequential,
    /// Block-STM, giving up to the sequential loop by `give_up`.
    BlockStm {
        /// When to give up (`None`: never).
        give_up: Option<GiveUp>,
    },
    /// Optimistic chunks.
    Chunked {
        /// The chunks after the first track storage deltas.
        track: bool,
        /// Some account sends or receives more than once, so the chunks
        /// may have accounts to predict (`chunks::flows`).
        predict_accounts: bool,
    },
}

/// The path for `input` under `config` (module docs, "The decision").
pub(crate) fn choose<S: Storage>(storage: &S, input: &BlockInput, config: &Config) -> Path {
    let threads = config.threads.get();
    match config.mode {
        Mode::Sequential => Path::Sequential,
        Mode::BlockStm => Path::BlockStm { give_up: None },
        Mode::Chunked => chunks(false, true),
        Mode::ChunkedDeltas => chunks(true, true),
        Mode::Auto if threads == 1 || input.txs.len() < AUTO_MIN_TXS => Path::Sequential,
        Mode::Auto => auto(storage, input, threads),
    }
}

fn chunks(track: bool, predict_accounts: bool) -> Path {
    Path::Chunked {
        track,
        predict_accounts,
    }
}

/// Rules 3 to 7 of the decision.
fn auto<S: Storage>(storage: &S, input: &BlockInput, threads: usize) -> Path {
    let txs = &input.txs;
    let beneficiary = input.block.beneficiary;
    let has_code = |address: &Address| has_code(storage, address);
    // 3. Payouts.
    if let Some(run_as_chunks) = chains::payout_path(txs) {
        return if run_as_chunks {
            chunks(false, true)
        } else {
            Path::Sequential
        };
    }
    // 4. Independent (the pass reads the whole block before anything runs:
    // it is split over the threads on large blocks).
    let parts = if txs.len() >= PARALLEL_PREDICT_MIN {
        threads
    } else {
        1
    };
    if let Some(independent) = independence::independence(txs, beneficiary, has_code, parts) {
        return chunks(false, independent.repeats);
    }
    // 5. Serial.
    if chains::looks_serial(txs) {
        return if chains::looks_commutative(txs) {
            chunks(true, true)
        } else if !chains::looks_serial_beyond_deposits(txs, beneficiary, has_code) {
            chunks(false, true)
        } else {
            Path::Sequential
        };
    }
    // 6. Mostly plain transfers.
    if chains::mostly_transfers(txs, AUTO_MIN_TXS) {
        return Path::Sequential;
    }
    // 7. Block-STM.
    Path::BlockStm {
        give_up: Some(AUTO_GIVE_UP),
    }
}

/// Whether `address` has code before the block (a failing read counts as
/// yes: the answer only steers the choice).
fn has_code<S: Storage>(storage: &S, address: &Address) -> bool {
    match storage.account(address) {
        Ok(Some(account)) => code_hash_of(account.code_hash) != KECCAK_EMPTY,
        Ok(None) => false,
        Err(_) => true,
    }
}
