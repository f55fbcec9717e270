//! parevm and a live Ethereum node, over JSON-RPC.
//!
//! - [`Node`]: a blocking JSON-RPC client (alloy's, over plain HTTP) with
//!   timeouts and retries with backoff, and the calls parevm needs.
//! - [`RpcStorage`]: the node's state after a block as parevm's
//!   [`Storage`](parevm::Storage): prefetched from the node's
//!   `prestateTracer` (or, without the debug API, from the accounts the block
//!   names), cached, with a read of the node for every miss.
//! - [`load_block`]: a block of the node, ready to execute over that state.
//! - [`fetch`]: blocks with their exact pre-state, written as the block
//!   folders `parevm run` reads; resumable.
//! - [`export`]: a node's blocks as RLP, for `parevm import`.
//! - [`post_state`]: a block's state changes checked against the node's
//!   state after it.
//! - [`chain_file`]: which chain a fetched block belongs to.
//!
//! The engine never sees the network: it reads a [`Storage`](parevm::Storage)
//! like any other. A miss on a worker thread waits for the node; the
//! prefetch keeps those rare.

pub mod chain_file;
mod error;
pub mod export;
pub mod fetch;
mod load;
mod node;
pub mod post_state;
pub mod prestate;
mod storage;

pub use chain_file::ChainFile;
pub use error::RpcError;
pub use load::{load_block, NodeBlock, Prefetch};
pub use node::{Node, NodeOptions, ProvedAccount};
pub use storage::{Misses, RpcStorage};
