//! [`RpcStorage`]: the state a node holds after some block, as parevm's
//! [`Storage`].
//!
//! Reading a node one location at a time costs a round trip per read, and a
//! block reads thousands of locations. So the storage is filled up front
//! with what the block will touch ([`RpcStorage::prefetch_prestate`] from
//! the node's `prestateTracer`, or [`RpcStorage::prefetch_accounts`] with a
//! batch of `eth_getProof` and `eth_getCode` for the senders, recipients,
//! access lists and the beneficiary when the node has no debug API), and a
//! read the prefetch did not foresee goes to the node (`eth_getProof`,
//! `eth_getCode`, `eth_getStorageAt`, `eth_getBlockByNumber`) and is kept.
//! Every fetch on demand is also recorded, so [`fetch`](crate::fetch) can
//! write a complete pre-state.
//!
//! The cache sits behind a read-write lock: the engine's workers read it
//! concurrently, and write only on a miss, which waits for the network
//! anyway.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};

use alloy_primitives::{Address, Bytes, B256, U256};
use parevm::revm::bytecode::Bytecode;
use parevm::revm::primitives::KECCAK_EMPTY;
use parevm::storage::{bytecode_from_bytes, code_hash_of};
use parevm::{AccountBasic, Storage, StorageError};

use crate::error::RpcError;
use crate::node::{quantity, Node, ProvedAccount};
use crate::prestate::{Prestate, PrestateAccount};

/// The root of an empty trie: an account without storage.
const EMPTY_ROOT: B256 =
    alloy_primitives::b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");

#[derive(Default)]
struct Cache {
    accounts: HashMap<Address, Option<AccountBasic>>,
    codes: HashMap<B256, Bytecode>,
    slots: HashMap<(Address, U256), U256>,
    storage_roots: HashMap<Address, B256>,
    block_hashes: BTreeMap<u64, B256>,
}

/// What was read from the node on demand, beyond the prefetch.
#[derive(Clone, Debug, Default)]
pub struct Misses {
    /// Accounts and slots fetched on demand, in the pre-state's shape.
    pub prestate: Prestate,
    /// Block hashes fetched for `BLOCKHASH`.
    pub block_hashes: BTreeMap<u64, B256>,
    /// How many requests the misses took.
    pub requests: u64,
}

/// The state of a node at the end of block `at`, read over JSON-RPC.
pub struct RpcStorage<'n> {
    node: &'n Node,
    at: u64,
    cache: RwLock<Cache>,
    misses: Mutex<Misses>,
}

impl std::fmt::Debug for RpcStorage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcStorage")
            .field("node", &self.node.url())
            .field("at", &self.at)
            .finish()
    }
}

fn poisoned() -> StorageError {
    StorageError::new("the RPC storage cache was poisoned by a panicking reader")
}

fn storage_error(error: RpcError) -> StorageError {
    StorageError::new(error.to_string())
}

impl<'n> RpcStorage<'n> {
    /// The state of `node` at the end of block `at`; empty until prefetched.
    pub fn new(node: &'n Node, at: u64) -> Self {
        Self {
            node,
            at,
            cache: RwLock::new(Cache::default()),
            misses: Mutex::new(Misses::default()),
        }
    }

    /// Fills the cache with a pre-state (the merged `prestateTracer` answer
    /// for the next block). An account in it exists as given; a slot in it
    /// has the value given; a slot not in it is read from the node.
    pub fn prefetch_prestate(&mut self, prestate: &Prestate) {
        let cache = self.cache.get_mut().unwrap_or_else(|e| e.into_inner());
        for (address, account) in prestate {
            let code = account.code.clone().unwrap_or_default();
            let code_hash = if code.is_empty() {
                KECCAK_EMPTY
            } else {
                alloy_primitives::keccak256(&code)
            };
            if !code.is_empty() {
                cache
                    .codes
                    .entry(code_hash)
                    .or_insert_with(|| bytecode_from_bytes(code));
            }
            cache.accounts.insert(
                *address,
                Some(AccountBasic {
                    balance: account.balance.unwrap_or_default(),
                    nonce: account.nonce.unwrap_or_default(),
                    code_hash,
                }),
            );
            for (slot, value) in &account.storage {
                cache.slots.insert(
                    (*address, U256::from_be_bytes(slot.0)),
                    U256::from_be_bytes(value.0),
                );
            }
        }
    }

    /// Fills the cache with `addresses` (balance, nonce, code and storage
    /// root) in one batch of requests: the prefetch for a node without the
    /// debug API.
    ///
    /// # Errors
    /// As [`Node::request`].
    pub fn prefetch_accounts(&mut self, addresses: &[Address]) -> Result<(), RpcError> {
        let at = quantity(self.at);
        let proved = self.node.block_on(
            self.node.batch::<_, crate::node::ProofAnswer>(
                "eth_getProof",
                addresses
                    .iter()
                    .map(|a| (*a, Vec::<B256>::new(), at.clone()))
                    .collect(),
            ),
        )?;
        let proved: Vec<ProvedAccount> = proved.into_iter().map(Into::into).collect();
        let with_code: Vec<Address> = addresses
            .iter()
            .zip(&proved)
            .filter(|(_, p)| code_hash_of(p.code_hash) != KECCAK_EMPTY)
            .map(|(a, _)| *a)
            .collect();
        let codes = self.node.block_on(self.node.batch::<_, Bytes>(
            "eth_getCode",
            with_code.iter().map(|a| (*a, at.clone())).collect(),
        ))?;
        let cache = self.cache.get_mut().unwrap_or_else(|e| e.into_inner());
        for (address, account) in addresses.iter().zip(proved) {
            cache.storage_roots.insert(*address, account.storage_root);
            cache.accounts.insert(*address, existing(&account));
        }
        for code in codes {
            if !code.is_empty() {
                cache.codes.insert(
                    alloy_primitives::keccak256(&code),
                    bytecode_from_bytes(code),
                );
            }
        }
        Ok(())
    }

    /// What was read from the node beyond the prefetch.
    pub fn misses(&self) -> Misses {
        self.misses
            .lock()
            .map(|m| m.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn record(&self, requests: u64, change: impl FnOnce(&mut Misses)) {
        let mut misses = self.misses.lock().unwrap_or_else(|e| e.into_inner());
        misses.requests += requests;
        change(&mut misses);
    }

    /// Fetches an account on a miss: its proof, and its code if any.
    fn fetch_account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        let proved = self
            .node
            .proved_account(*address, self.at)
            .map_err(storage_error)?;
        let account = existing(&proved);
        let mut code = None;
        if let Some(basic) = &account {
            if basic.code_hash != KECCAK_EMPTY {
                let bytes = self.node.code(*address, self.at).map_err(storage_error)?;
                code = Some(bytes);
            }
        }
        let mut cache = self.cache.write().map_err(|_| poisoned())?;
        cache.storage_roots.insert(*address, proved.storage_root);
        cache.accounts.insert(*address, account.clone());
        if let (Some(basic), Some(bytes)) = (&account, &code) {
            cache
                .codes
                .insert(basic.code_hash, bytecode_from_bytes(bytes.clone()));
        }
        drop(cache);
        self.record(1 + u64::from(code.is_some()), |m| {
            if account.is_none() {
                // Absent from a pre-state is how a missing account is written.
                return;
            }
            let entry = m.prestate.entry(*address).or_default();
            entry.balance = Some(proved.balance);
            entry.nonce = (proved.nonce != 0).then_some(proved.nonce);
            entry.code = code.filter(|c| !c.is_empty());
        });
        Ok(account)
    }
}

/// An account as parevm sees it: `None` when the node reports it empty
/// (no balance, nonce or code), which is how a missing account looks.
fn existing(proved: &ProvedAccount) -> Option<AccountBasic> {
    let code_hash = code_hash_of(proved.code_hash);
    let empty = proved.balance.is_zero() && proved.nonce == 0 && code_hash == KECCAK_EMPTY;
    (!empty).then_some(AccountBasic {
        balance: proved.balance,
        nonce: proved.nonce,
        code_hash,
    })
}

impl Storage for RpcStorage<'_> {
    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        if let Some(account) = self
            .cache
            .read()
            .map_err(|_| poisoned())?
            .accounts
            .get(address)
        {
            return Ok(account.clone());
        }
        self.fetch_account(address)
    }

    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError> {
        if *code_hash == KECCAK_EMPTY || code_hash.is_zero() {
            return Ok(Bytecode::default());
        }
        self.cache
            .read()
            .map_err(|_| poisoned())?
            .codes
            .get(code_hash)
            .cloned()
            .ok_or_else(|| {
                StorageError::new(format!(
                    "code {code_hash} was never seen at an account read from {}",
                    self.node.url()
                ))
            })
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        if let Some(value) = self
            .cache
            .read()
            .map_err(|_| poisoned())?
            .slots
            .get(&(*address, *slot))
        {
            return Ok(*value);
        }
        let value = self
            .node
            .slot(*address, *slot, self.at)
            .map_err(storage_error)?;
        self.cache
            .write()
            .map_err(|_| poisoned())?
            .slots
            .insert((*address, *slot), value);
        self.record(1, |m| {
            m.prestate
                .entry(*address)
                .or_insert_with(PrestateAccount::default)
                .storage
                .insert(B256::from(*slot), B256::from(value));
        });
        Ok(value)
    }

    fn block_hash(&self, number: u64) -> Result<B256, StorageError> {
        if let Some(hash) = self
            .cache
            .read()
            .map_err(|_| poisoned())?
            .block_hashes
            .get(&number)
        {
            return Ok(*hash);
        }
        let hash = self.node.block_hash(number).map_err(storage_error)?;
        self.cache
            .write()
            .map_err(|_| poisoned())?
            .block_hashes
            .insert(number, hash);
        self.record(1, |m| {
            m.block_hashes.insert(number, hash);
        });
        Ok(hash)
    }

    fn has_storage(&self, address: &Address) -> Result<bool, StorageError> {
        let known = self
            .cache
            .read()
            .map_err(|_| poisoned())?
            .storage_roots
            .get(address)
            .copied();
        let root = match known {
            Some(root) => root,
            None => {
                let proved = self
                    .node
                    .proved_account(*address, self.at)
                    .map_err(storage_error)?;
                self.cache
                    .write()
                    .map_err(|_| poisoned())?
                    .storage_roots
                    .insert(*address, proved.storage_root);
                self.record(1, |_| {});
                proved.storage_root
            }
        };
        Ok(!root.is_zero() && root != EMPTY_ROOT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeOptions;
    use std::time::Duration;

    /// A node nobody listens at: every request fails fast.
    fn absent_node() -> Node {
        let options = NodeOptions {
            timeout: Duration::from_secs(2),
            retries: 1,
            backoff: Duration::from_millis(1),
        };
        Node::connect("http://127.0.0.1:9", options).expect("a URL")
    }

    #[test]
    fn prefetched_reads_stay_local_and_misses_go_to_the_node() {
        let node = absent_node();
        let mut storage = RpcStorage::new(&node, 5);
        let a = Address::with_last_byte(0xaa);
        let mut prestate = Prestate::new();
        prestate.insert(
            a,
            PrestateAccount {
                balance: Some(U256::from(7)),
                nonce: Some(2),
                code: Some(Bytes::from_static(&[0x60, 0x00])),
                storage: [(B256::with_last_byte(1), B256::with_last_byte(9))].into(),
            },
        );
        storage.prefetch_prestate(&prestate);
        let account = storage.account(&a).expect("prefetched").expect("exists");
        assert_eq!((account.balance, account.nonce), (U256::from(7), 2));
        let code = storage
            .code_by_hash(&account.code_hash)
            .expect("prefetched code");
        assert_eq!(code.original_bytes().as_ref(), &[0x60, 0x00]);
        assert_eq!(
            storage.storage(&a, &U256::from(1)).expect("prefetched"),
            U256::from(9)
        );
        assert_eq!(storage.misses().requests, 0);
        // Not prefetched: asked of the node, which is not there.
        let error = storage.storage(&a, &U256::from(2)).expect_err("a miss");
        assert!(error.message.contains("did not answer"), "{error:?}");
        let error = storage
            .account(&Address::with_last_byte(1))
            .expect_err("a miss");
        assert!(error.message.contains("127.0.0.1:9"), "{error:?}");
    }
}
