//! What can go wrong between parevm and a node.

use std::path::PathBuf;

/// A failure talking to a node, or fetching from it.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The URL is not one parevm can reach.
    #[error("{url}: not a usable node URL: {message}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why.
        message: String,
    },
    /// The node did not answer, also after the retries. Whatever was
    /// fetched before is kept; the same command resumes.
    #[error("{url}: the node did not answer after {attempts} attempt(s): {message}")]
    Unreachable {
        /// The node.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last transport error.
        message: String,
    },
    /// The node lacks a debug method parevm needs.
    #[error(
        "{url}: the node does not serve {method} ({message}); fetching a pre-state needs the \
         debug API with geth's prestateTracer (geth --http.api eth,debug; reth --http.api eth,debug; anvil has it)"
    )]
    NoDebugApi {
        /// The node.
        url: String,
        /// The missing method.
        method: &'static str,
        /// The node's message.
        message: String,
    },
    /// The node does not have this block.
    #[error("{url}: the node has no block {number}")]
    UnknownBlock {
        /// The node.
        url: String,
        /// The block asked for.
        number: u64,
    },
    /// The node answered with an error.
    #[error("{url}: {method} failed: {message} (code {code})")]
    Node {
        /// The node.
        url: String,
        /// The method called.
        method: &'static str,
        /// JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The node's answer has an unexpected shape.
    #[error("{url}: {method}: unexpected answer: {message}")]
    Decode {
        /// The node.
        url: String,
        /// The method called.
        method: &'static str,
        /// What did not fit.
        message: String,
    },
    /// The node's chain is not mainnet and the node does not say its forks.
    #[error("{url}: chain {chain_id} is not mainnet and the node does not say its forks; pass --chain GENESIS.json")]
    UnknownChain {
        /// The node.
        url: String,
        /// The node's chain id.
        chain_id: u64,
    },
    /// The chain given is not the node's.
    #[error("{source_name}: chain id {given}, but the node at {url} serves chain {served}")]
    ChainMismatch {
        /// Where the chain given came from.
        source_name: String,
        /// Its chain id.
        given: u64,
        /// The node.
        url: String,
        /// The node's chain id.
        served: u64,
    },
    /// The async runtime or HTTP client could not start.
    #[error("cannot start the RPC client: {0}")]
    Runtime(String),
    /// A file could not be written or read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A block from the node could not be read as a block.
    #[error("block {number}: {message}")]
    Block {
        /// The block.
        number: u64,
        /// What is wrong with it.
        message: String,
    },
}

impl RpcError {
    /// True when trying again later may succeed (the node was unreachable).
    pub fn is_resumable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.into(),
            message: error.to_string(),
        }
    }
}
