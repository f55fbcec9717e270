//! A connection to an Ethereum node over JSON-RPC (plain HTTP).
//!
//! [`Node`] owns a small tokio runtime and an alloy RPC client, and offers a
//! blocking API: parevm's engine and CLI are synchronous, and the engine's
//! worker threads call the node from a [`Storage`](parevm::Storage). Every
//! call has a timeout; a call that fails for a reason that may pass (the
//! connection, a timeout, a rate limit, a 5xx answer) is retried with
//! exponential backoff, and after the last attempt the failure becomes
//! [`RpcError::Unreachable`]. An answer the node gives on purpose (an unknown
//! method, an unknown block) is not retried.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use alloy_primitives::{Address, Bytes, B256, U256, U64};
use alloy_provider::{Provider, RootProvider};
use alloy_rpc_client::{ClientBuilder, RpcClient};
use alloy_transport::{TransportError, TransportErrorKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::RpcError;

/// How patient a [`Node`] is.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// How long one request may take.
    pub timeout: Duration,
    /// How many times a failed request is tried again.
    pub retries: u32,
    /// The wait before the first retry; it doubles on each further one.
    pub backoff: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            retries: 4,
            backoff: Duration::from_millis(250),
        }
    }
}

/// An account as `eth_getProof` reports it at some block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvedAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Keccak of the code.
    pub code_hash: B256,
    /// Root of the account's storage trie.
    pub storage_root: B256,
}

/// `eth_getProof`'s answer, the parts parevm reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProofAnswer {
    balance: U256,
    nonce: U64,
    code_hash: B256,
    storage_hash: B256,
}

impl From<ProofAnswer> for ProvedAccount {
    fn from(answer: ProofAnswer) -> Self {
        Self {
            balance: answer.balance,
            nonce: answer.nonce.to(),
            code_hash: answer.code_hash,
            storage_root: answer.storage_hash,
        }
    }
}

/// Requests per JSON-RPC batch: small enough for nodes' batch limits.
const BATCH: usize = 100;

/// A node, reached over JSON-RPC.
pub struct Node {
    url: String,
    options: NodeOptions,
    provider: RootProvider,
    client: RpcClient,
    // Declared last: dropped after the client that runs on it.
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("url", &self.url).finish()
    }
}

impl Node {
    /// A node at `url` (`http://host:port`). Nothing is sent yet.
    ///
    /// # Errors
    /// [`RpcError::BadUrl`] for a URL that is not plain HTTP(S);
    /// [`RpcError::Runtime`] if the async runtime cannot start.
    pub fn connect(url: &str, options: NodeOptions) -> Result<Self, RpcError> {
        let parsed: reqwest::Url = url.parse().map_err(|e| RpcError::BadUrl {
            url: url.to_string(),
            message: format!("{e}"),
        })?;
        if parsed.scheme() != "http" {
            return Err(RpcError::BadUrl {
                url: url.to_string(),
                message: "only plain http:// is supported (parevm is built without TLS); \
                          reach remote nodes through a local proxy or tunnel"
                    .into(),
            });
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("parevm-rpc")
            .enable_all()
            .build()
            .map_err(|e| RpcError::Runtime(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| RpcError::Runtime(e.to_string()))?;
        let client: RpcClient = {
            let _guard = runtime.enter();
            ClientBuilder::default().http_with_client(http, parsed)
        };
        Ok(Self {
            url: url.to_string(),
            options,
            provider: RootProvider::new(client.clone()),
            client,
            runtime,
        })
    }

    /// The URL this node was reached at.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs a future on the node's runtime and waits for it. Must not be
    /// called from inside an async task (the engine's and the CLI's threads
    /// are plain threads).
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// One JSON-RPC call, with retries for failures that may pass.
    ///
    /// # Errors
    /// [`RpcError::Unreachable`] after the last retry; [`RpcError::Node`]
    /// when the node answers with an error; [`RpcError::Decode`] when its
    /// answer has an unexpected shape.
    pub fn request<P, R>(&self, method: &'static str, params: P) -> Result<R, RpcError>
    where
        P: Serialize + Clone + Send + Sync + std::fmt::Debug + Unpin + 'static,
        R: DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static,
    {
        self.block_on(self.request_async(method, params))
    }

    /// [`Node::request`] for async callers.
    pub(crate) async fn request_async<P, R>(
        &self,
        method: &'static str,
        params: P,
    ) -> Result<R, RpcError>
    where
        P: Serialize + Clone + Send + Sync + std::fmt::Debug + Unpin + 'static,
        R: DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static,
    {
        let mut wait = self.options.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer: Result<R, TransportError> = self
                .provider
                .raw_request(Cow::Borrowed(method), params.clone())
                .await;
            match answer {
                Ok(value) => return Ok(value),
                Err(error) if passing(&error) && attempt <= self.options.retries => {
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
                Err(error) => return Err(self.classify(method, attempt, error)),
            }
        }
    }

    /// The same method with many parameter sets, as JSON-RPC batches of at
    /// most [`BATCH`] calls; answers in the order of `params`. A batch whose
    /// transport fails is sent again, as [`Node::request`] does.
    pub(crate) async fn batch<P, R>(
        &self,
        method: &'static str,
        params: Vec<P>,
    ) -> Result<Vec<R>, RpcError>
    where
        P: Serialize + Clone + Send + Sync + std::fmt::Debug + Unpin + 'static,
        R: DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static,
    {
        let mut answers = Vec::with_capacity(params.len());
        for chunk in params.chunks(BATCH) {
            let mut wait = self.options.backoff;
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.batch_once::<P, R>(method, chunk).await {
                    Ok(values) => {
                        answers.extend(values);
                        break;
                    }
                    Err(error) if passing(&error) && attempt <= self.options.retries => {
                        tokio::time::sleep(wait).await;
                        wait = wait.saturating_mul(2);
                    }
                    Err(error) => return Err(self.classify(method, attempt, error)),
                }
            }
        }
        Ok(answers)
    }

    async fn batch_once<P, R>(
        &self,
        method: &'static str,
        chunk: &[P],
    ) -> Result<Vec<R>, TransportError>
    where
        P: Serialize + Clone + Send + Sync + std::fmt::Debug + Unpin + 'static,
        R: DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static,
    {
        let mut batch = self.client.new_batch();
        let waiters = chunk
            .iter()
            .map(|p| batch.add_call::<P, R>(method, p))
            .collect::<Result<Vec<_>, _>>()?;
        batch.send().await?;
        let mut values = Vec::with_capacity(waiters.len());
        for waiter in waiters {
            values.push(waiter.await?);
        }
        Ok(values)
    }

    /// Turns a transport error into ours, naming the node and the method.
    fn classify(&self, method: &'static str, attempts: u32, error: TransportError) -> RpcError {
        let url = self.url.clone();
        match error {
            TransportError::ErrorResp(payload) => {
                let unknown_method = payload.code == -32601
                    || payload.message.contains("does not exist")
                    || payload.message.contains("not available")
                    || payload.message.contains("Method not found");
                if unknown_method && method.starts_with("debug_") {
                    RpcError::NoDebugApi {
                        url,
                        method,
                        message: payload.message.to_string(),
                    }
                } else {
                    RpcError::Node {
                        url,
                        method,
                        code: payload.code,
                        message: payload.message.to_string(),
                    }
                }
            }
            TransportError::DeserError { err, text } => RpcError::Decode {
                url,
                method,
                message: format!("{err} in {}", shorten(&text)),
            },
            TransportError::NullResp => RpcError::Decode {
                url,
                method,
                message: "null answer".into(),
            },
            other => RpcError::Unreachable {
                url,
                attempts,
                message: other.to_string(),
            },
        }
    }

    /// The chain id (`eth_chainId`).
    ///
    /// # Errors
    /// As [`Node::request`].
    pub fn chain_id(&self) -> Result<u64, RpcError> {
        let id: U64 = self.request("eth_chainId", ())?;
        Ok(id.to())
    }

    /// The latest block number (`eth_blockNumber`).
    ///
    /// # Errors
    /// As [`Node::request`].
    pub fn latest_block(&self) -> Result<u64, RpcError> {
        let number: U64 = self.request("eth_blockNumber", ())?;
        Ok(number.to())
    }

    /// Block `number` as JSON with full transaction objects, exactly as the
    /// node returns it.
    ///
    /// # Errors
    /// [`RpcError::UnknownBlock`] when the node does not have it; else as
    /// [`Node::request`].
    pub fn block_json(&self, number: u64) -> Result<serde_json::Value, RpcError> {
        self.block_on(self.block_json_async(number))
    }

    pub(crate) async fn block_json_async(
        &self,
        number: u64,
    ) -> Result<serde_json::Value, RpcError> {
        let block: Option<serde_json::Value> = self
            .request_async("eth_getBlockByNumber", (quantity(number), true))
            .await?;
        match block {
            Some(block) if !block.is_null() => Ok(block),
            _ => Err(RpcError::UnknownBlock {
                url: self.url.clone(),
                number,
            }),
        }
    }

    /// The hash of block `number`.
    ///
    /// # Errors
    /// As [`Node::block_json`].
    pub fn block_hash(&self, number: u64) -> Result<B256, RpcError> {
        #[derive(Debug, Deserialize)]
        struct Hashed {
            hash: B256,
        }
        let block: Option<Hashed> =
            self.request("eth_getBlockByNumber", (quantity(number), false))?;
        block.map(|b| b.hash).ok_or_else(|| RpcError::UnknownBlock {
            url: self.url.clone(),
            number,
        })
    }

    /// The per-transaction pre-states of block `number`
    /// (`debug_traceBlockByNumber` with geth's `prestateTracer`), as the node
    /// returns them.
    ///
    /// # Errors
    /// [`RpcError::NoDebugApi`] when the node lacks the method; else as
    /// [`Node::request`].
    pub fn prestate_json(&self, number: u64) -> Result<serde_json::Value, RpcError> {
        self.block_on(self.prestate_json_async(number))
    }

    pub(crate) async fn prestate_json_async(
        &self,
        number: u64,
    ) -> Result<serde_json::Value, RpcError> {
        let tracer = serde_json::json!({ "tracer": "prestateTracer" });
        self.request_async("debug_traceBlockByNumber", (quantity(number), tracer))
            .await
    }

    /// An account at the end of block `at` (`eth_getProof` without slots).
    ///
    /// # Errors
    /// As [`Node::request`].
    pub fn proved_account(&self, address: Address, at: u64) -> Result<ProvedAccount, RpcError> {
        let answer: ProofAnswer =
            self.request("eth_getProof", (address, Vec::<B256>::new(), quantity(at)))?;
        Ok(answer.into())
    }

    /// The code at `address` at the end of block `at`.
    ///
    /// # Errors
    /// As [`Node::request`].
    pub fn code(&self, address: Address, at: u64) -> Result<Bytes, RpcError> {
        self.request("eth_getCode", (address, quantity(at)))
    }

    /// A storage slot of `address` at the end of block `at`.
    ///
    /// # Errors
    /// As [`Node::request`].
    pub fn slot(&self, address: Address, slot: U256, at: u64) -> Result<U256, RpcError> {
        let value: B256 = self.request(
            "eth_getStorageAt",
            (address, B256::from(slot), quantity(at)),
        )?;
        Ok(value.into())
    }

    /// The node's client name and version (`web3_clientVersion`).
    ///
    /// # Errors
    /// As [`Node::request`].
    pub fn client_version(&self) -> Result<String, RpcError> {
        self.request("web3_clientVersion", ())
    }

    /// The hardfork an anvil node runs (`anvil_nodeInfo`), or `None` for a
    /// node that is not anvil.
    pub fn anvil_hardfork(&self) -> Option<String> {
        let info: serde_json::Value = self.request("anvil_nodeInfo", ()).ok()?;
        info.get("hardFork")?.as_str().map(str::to_owned)
    }
}

/// A block number as a JSON-RPC quantity.
pub(crate) fn quantity(number: u64) -> String {
    format!("{number:#x}")
}

/// Whether a failure may pass if the request is tried again.
fn passing(error: &TransportError) -> bool {
    match error {
        TransportError::Transport(kind) => match kind {
            TransportErrorKind::HttpError(http) => http.status == 429 || http.status >= 500,
            TransportErrorKind::MissingBatchResponse(_) => false,
            _ => true,
        },
        TransportError::ErrorResp(payload) => payload.code == 429 || payload.code == -32005,
        _ => false,
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_taken() {
        for url in ["https://example.com", "not a url", "ws://127.0.0.1:8545"] {
            let error = Node::connect(url, NodeOptions::default()).expect_err(url);
            assert!(matches!(error, RpcError::BadUrl { .. }), "{url}: {error}");
            assert!(error.to_string().contains(url), "{error}");
        }
        assert!(Node::connect("http://127.0.0.1:8545", NodeOptions::default()).is_ok());
    }

    #[test]
    fn an_absent_node_is_tried_again_then_reported_resumable() {
        let options = NodeOptions {
            timeout: Duration::from_secs(2),
            retries: 2,
            backoff: Duration::from_millis(1),
        };
        let node = Node::connect("http://127.0.0.1:9", options).expect("a URL");
        let error = node.chain_id().expect_err("nobody listens");
        assert!(
            matches!(error, RpcError::Unreachable { attempts: 3, .. }),
            "{error}"
        );
        assert!(error.is_resumable());
    }
}
