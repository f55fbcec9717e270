//! Every use of revm's machinery: the databases revm reads through, the
//! handler, the journal, the inspector, and turning revm's state into our
//! changes. Outside this folder, revm appears only as plain data
//! (transactions, block environments, fork ids, bytecode, primitives).
//!
//! - [`view`]: Block-STM's database, a versioned view of mv-memory over the
//!   pre-block storage, recording what each execution read.
//! - [`task`]: one transaction on a per-thread EVM, the handler that makes
//!   the beneficiary's fee credit lazy, and the EVM as Block-STM's
//!   `VmTask`.
//! - [`journal`]: revm's journal plus the EIP-7610 storage-collision rule,
//!   used by every path.
//! - [`deltas`]: the inspector that follows values derived from stale slots
//!   (chunks that track storage deltas), and the facts it records.
//! - [`changes`]: revm's per-transaction state as our changes, and the one
//!   change built by hand, the lazy fee credit.
//! - [`database`]: any revm `DatabaseRef` as the pre-block
//!   [`Storage`](crate::storage::Storage), for nodes that keep their state
//!   behind revm's traits.
//! - [`machine`]: how the other paths run transactions without touching
//!   revm: their databases implement [`machine::Source`], and a
//!   [`machine::Machine`] owns the EVM over it (the sequential loop, each
//!   chunk); [`machine::system_call`] runs the block's system calls.

pub(crate) mod changes;
pub(crate) mod database;
pub(crate) mod deltas;
pub(crate) mod journal;
pub(crate) mod machine;
pub(crate) mod task;
pub(crate) mod view;

/// A storage failure is an error revm's databases may return.
impl revm::database_interface::DBErrorMarker for crate::error::StorageError {}
