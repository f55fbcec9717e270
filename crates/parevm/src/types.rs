//! The small vocabulary shared by every module.
//!
//! The scheduler and the multi-version memory speak only of transaction
//! indices, incarnations and versions; the EVM-specific [`Location`] lives
//! here too so the glue modules agree on one key type, but neither the
//! scheduler nor mv-memory depends on it.

use alloy_primitives::{Address, B256, U256};
use revm::state::AccountInfo;

/// Position of a transaction in its block (0-based).
pub type TxIdx = usize;

/// How many times a transaction has been (re-)started; the first execution is 0.
pub type Incarnation = usize;

/// One execution attempt of one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// The transaction.
    pub tx: TxIdx,
    /// Which attempt.
    pub incarnation: Incarnation,
}

impl Version {
    /// A version from its parts.
    pub const fn new(tx: TxIdx, incarnation: Incarnation) -> Self {
        Self { tx, incarnation }
    }
}

/// A piece of EVM state that transactions read and write, as tracked by the
/// parallel executor.
///
/// The split is deliberate:
/// - **Account** covers balance, nonce and code hash (+ the code itself,
///   which is immutable per hash). revm's `Database::basic` returns all of
///   them at once, so reading them apart would not buy anything.
/// - **Storage** is one slot. Most DeFi conflicts live here.
/// - **StorageWipe** records that a transaction cleared *all* storage of an
///   account (pre-Cancun SELFDESTRUCT, or a contract created over an
///   address). A slot read resolves against the latest wipe below the reader,
///   so a wipe is a write every later slot read of that account depends on,
///   without turning every slot into a dependency of every balance change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// Balance, nonce, code hash (and code) of an account.
    Account(Address),
    /// One storage slot of an account.
    Storage(Address, U256),
    /// "The storage of this account was cleared here."
    StorageWipe(Address),
}

/// One answer a transaction's database gave it: the location asked about
/// and the value returned. Code (by hash) and block hashes are left out:
/// they cannot differ between two databases of the same block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// `basic(address)`: balance, nonce and code hash, or no account.
    Account(Address, Option<(U256, u64, B256)>),
    /// `storage(address, slot)` and its value.
    Slot(Address, U256, U256),
    /// The EIP-7610 probe: whether the account has storage.
    HasStorage(Address, bool),
    /// `basic(address)` answered with the pre-block account.
    PreBlockAccount(Address),
    /// `storage(address, slot)` answered with the pre-block value.
    PreBlockSlot(Address, U256),
    /// The EIP-7610 probe answered from the pre-block storage.
    PreBlockProbe(Address),
}

impl Seen {
    /// The answer `basic` gave.
    pub(crate) fn account(address: Address, info: Option<&AccountInfo>) -> Self {
        Self::Account(address, info.map(|i| (i.balance, i.nonce, i.code_hash)))
    }
}
