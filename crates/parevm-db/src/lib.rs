//! # parevm-db — state that lasts
//!
//! A world state in an embedded ACID database ([redb](https://www.redb.org)),
//! which parevm executes blocks over and commits them to, one block per
//! transaction:
//!
//! - [`StateDb`] opens or creates the database (refusing a file that is not
//!   one of ours), reports its head, and commits a block's state diff
//!   together with its header, its hash and the new head, in one redb
//!   write transaction: a crash at any moment leaves the database at the
//!   last whole block.
//! - [`Snapshot`] is the state at the head as a [`parevm::Storage`], read
//!   from one redb read transaction: the parallel workers read it
//!   concurrently with no lock of ours on the way (redb's read
//!   transactions are snapshots).
//! - The state root is computed incrementally (module `trie`): the database
//!   keeps every trie leaf by its hashed key and a cache of trie node
//!   references by nibble path; a block invalidates the cached nodes on
//!   the paths of the leaves it changed, and only those are recomputed.
//! - [`import`] checks and commits blocks one after another: header against
//!   parent, execution through parevm, the header's gas, receipts root,
//!   bloom, requests and withdrawals, and the state root.
//! - [`chain`] imports a whole chain in a pipeline: senders and headers,
//!   execution, and state root with commit, each on its own thread, so the
//!   state root of one block is computed while the next executes.

pub mod chain;
mod db;
pub mod import;
mod schema;
mod snapshot;
mod trie;
mod types;

pub use db::StateDb;
pub use snapshot::Snapshot;
pub use types::{CommitError, Committed, DbError, Head, StoredAccount};
