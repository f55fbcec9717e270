//! Signed DeFi traffic for a real node: a genesis file with funded keys,
//! the transactions that deploy the repository's contracts (`contracts/`)
//! and set them up, and blocks of conflict-heavy or mixed traffic, all as
//! raw signed EIP-1559 transactions (`eth_sendRawTransaction`'s input).
//!
//! Deterministic from a seed. The generator keeps each key's nonce, so the
//! blocks must be mined in the order they are made, each whole (send a
//! block's transactions, then mine once).
//!
//! Block shapes ([`Shape`]):
//! - `HotToken`: token transfers that all pay one recipient;
//! - `HotPool`: swaps on the one pool, half of them with a minimum output
//!   the pool cannot give, so they revert;
//! - `SenderChains`: a few senders with many transactions each, each
//!   paying the next sender;
//! - `Coinbase`: transfers to the block's beneficiary and from it (its
//!   balance also takes every fee of the block);
//! - `Mixed`: a blend of ETH transfers, token transfers (some to a hot
//!   recipient), swaps (some reverting), lending deposits, borrows (some
//!   beyond the limit, so reverting) and repayments.
//!
//! The genesis is the chain anvil builds, as a conforming client sees it,
//! where anvil's own genesis header differs (see [`GENESIS_BASE_FEE`]).
//! It holds the system contracts of EIP-2935, EIP-7002 and
//! EIP-7251 but not EIP-4788's: anvil (1.7.1) does not make the beacon-root
//! system call, so with the contract present its state would differ from
//! every conforming client's. Without it the call does nothing on both.

use alloy_consensus::{SignableTransaction as _, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{keccak256, Address, Bytes, Signature, TxKind, U256};
use alloy_sol_types::SolCall as _;
use k256::ecdsa::SigningKey;

use crate::gen::Rng;
use crate::workload::contracts::{abi, transfer_calldata};

/// The chain id of the generated genesis.
pub const CHAIN_ID: u64 = 1337;
/// The block gas limit of the generated genesis (start anvil with the same
/// `--gas-limit`).
pub const GAS_LIMIT: u64 = 60_000_000;
/// The genesis timestamp; blocks follow 12 seconds apart.
pub const GENESIS_TIME: u64 = 1_700_000_000;
/// The base fee of anvil's first block (start anvil with `--base-fee` this).
pub const FIRST_BASE_FEE: u64 = 1_000_000_000;
/// The genesis base fee: the one whose EIP-1559 successor after an empty
/// block is [`FIRST_BASE_FEE`]. anvil gives its first block its genesis's
/// base fee instead of lowering it by an eighth as EIP-1559 does after an
/// empty London block; a chain valid under the rule must start one step
/// higher than anvil's block 1.
pub const GENESIS_BASE_FEE: u64 = 1_142_857_142;
/// Every transaction's fee cap: far above the base fee this traffic leads to.
const MAX_FEE: u128 = 100_000_000_000;
/// One token unit (18 decimals).
const UNIT: u64 = 1_000_000_000_000_000_000;

/// What a block of traffic stresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Token transfers to one recipient.
    HotToken,
    /// Swaps on one pool, half reverting.
    HotPool,
    /// Few senders, many transactions each.
    SenderChains,
    /// Transfers to and from the beneficiary.
    Coinbase,
    /// A blend of everything.
    Mixed,
}

/// The deployed contracts (addresses follow from the deployer's nonces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployed {
    /// Token A (the pool's token0 and the lending pool's token).
    pub token_a: Address,
    /// Token B.
    pub token_b: Address,
    /// The router.
    pub router: Address,
    /// The A/B pool.
    pub pair: Address,
    /// The lending pool of token A.
    pub pool: Address,
}

/// A generator of signed traffic; see the module documentation.
pub struct Traffic {
    keys: Vec<SigningKey>,
    addresses: Vec<Address>,
    nonces: Vec<u64>,
    rng: Rng,
    deployed: Deployed,
}

#[derive(serde::Deserialize)]
struct Artifact {
    bytecode: Bytes,
}

/// Creation code of a committed artifact.
fn creation_code(name: &str, json: &str) -> Result<Vec<u8>, String> {
    let artifact: Artifact =
        serde_json::from_str(json).map_err(|e| format!("artifact {name}: {e}"))?;
    Ok(artifact.bytecode.to_vec())
}

fn word(address: Address) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[12..].copy_from_slice(address.as_slice());
    out
}

impl Traffic {
    /// `accounts` funded keys (at least 4) from `seed`.
    pub fn new(seed: u64, accounts: usize) -> Self {
        let keys: Vec<SigningKey> = (0..)
            .map(|i: u64| {
                keccak256([b"traffic".as_slice(), &seed.to_be_bytes(), &i.to_be_bytes()].concat())
            })
            .filter_map(|secret| SigningKey::from_slice(secret.as_slice()).ok())
            .take(accounts.max(4))
            .collect();
        let addresses: Vec<Address> = keys.iter().map(Address::from_private_key).collect();
        let deployer = addresses[0];
        let deployed = Deployed {
            token_a: deployer.create(0),
            token_b: deployer.create(1),
            router: deployer.create(2),
            pair: deployer.create(3),
            pool: deployer.create(4),
        };
        Self {
            nonces: vec![0; keys.len()],
            keys,
            addresses,
            rng: Rng::new(seed),
            deployed,
        }
    }

    /// The funded addresses, deployer first.
    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// The block beneficiary the genesis names (a funded key, so that it
    /// also sends transactions).
    pub fn coinbase(&self) -> Address {
        self.addresses[1]
    }

    /// Where the contracts land.
    pub fn deployed(&self) -> Deployed {
        self.deployed
    }

    /// The genesis file: Prague from block 0, chain [`CHAIN_ID`], every key
    /// funded, the system contracts (see the module documentation).
    pub fn genesis_json(&self) -> String {
        use alloy_eips::{eip2935, eip7002, eip7251};
        let mut alloc = serde_json::Map::new();
        for address in &self.addresses {
            alloc.insert(
                format!("{address:#x}"),
                serde_json::json!({ "balance": "0xd3c21bcecceda1000000" }),
            );
        }
        for (address, code) in [
            (
                eip2935::HISTORY_STORAGE_ADDRESS,
                &eip2935::HISTORY_STORAGE_CODE,
            ),
            (
                eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
                &eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_CODE,
            ),
            (
                eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
                &eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_CODE,
            ),
        ] {
            alloc.insert(
                format!("{address:#x}"),
                serde_json::json!({ "balance": "0x0", "nonce": "0x1", "code": code }),
            );
        }
        serde_json::json!({
            "config": {
                "chainId": CHAIN_ID, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0,
                "eip158Block": 0, "byzantiumBlock": 0, "constantinopleBlock": 0,
                "petersburgBlock": 0, "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0,
                "terminalTotalDifficulty": 0, "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0
            },
            "alloc": alloc,
            "coinbase": format!("{:#x}", self.coinbase()),
            "gasLimit": format!("{GAS_LIMIT:#x}"),
            "difficulty": "0x0",
            "baseFeePerGas": format!("{GENESIS_BASE_FEE:#x}"),
            "timestamp": format!("{GENESIS_TIME:#x}")
        })
        .to_string()
    }

    /// A signed transaction from key `from`, with its next nonce.
    fn sign(&mut self, from: usize, to: TxKind, value: U256, input: Vec<u8>, gas: u64) -> Bytes {
        let tx = TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: self.nonces[from],
            gas_limit: gas,
            max_fee_per_gas: MAX_FEE,
            max_priority_fee_per_gas: 1_000_000_000,
            to,
            value,
            access_list: Default::default(),
            input: input.into(),
        };
        self.nonces[from] += 1;
        // Signing a 32-byte prehash with a valid key does not fail.
        let (signature, recovery) = self.keys[from]
            .sign_prehash_recoverable(tx.signature_hash().as_slice())
            .unwrap_or_else(|e| unreachable!("prehash signing: {e}"));
        let signed = TxEnvelope::Eip1559(tx.into_signed(Signature::from((signature, recovery))));
        signed.encoded_2718().into()
    }

    fn call(&mut self, from: usize, to: Address, input: Vec<u8>, gas: u64) -> Bytes {
        self.sign(from, TxKind::Call(to), U256::ZERO, input, gas)
    }

    fn pay(&mut self, from: usize, to: Address, wei: u64) -> Bytes {
        self.sign(from, TxKind::Call(to), U256::from(wei), Vec::new(), 21_000)
    }

    /// Deploys token A, token B, the router, the A/B pool and the lending
    /// pool of A, from the first key.
    ///
    /// # Errors
    /// A message if a committed artifact does not parse.
    pub fn deploy(&mut self) -> Result<Vec<Bytes>, String> {
        let token = creation_code("Token", include_str!("../../../contracts/out/Token.json"))?;
        let router = creation_code("Router", include_str!("../../../contracts/out/Router.json"))?;
        let mut pair = creation_code("Pair", include_str!("../../../contracts/out/Pair.json"))?;
        pair.extend(word(self.deployed.token_a));
        pair.extend(word(self.deployed.token_b));
        let mut pool = creation_code(
            "LendingPool",
            include_str!("../../../contracts/out/LendingPool.json"),
        )?;
        pool.extend(word(self.deployed.token_a));
        Ok([token.clone(), token, router, pair, pool]
            .into_iter()
            .map(|code| self.sign(0, TxKind::Create, U256::ZERO, code, 5_000_000))
            .collect())
    }

    /// Mints both tokens to every key, has every key approve the router
    /// and the lending pool, and gives the pool its liquidity.
    pub fn setup(&mut self) -> Vec<Bytes> {
        let d = self.deployed;
        let plenty = U256::from(UNIT) * U256::from(1_000_000u64);
        let mut txs = Vec::new();
        for i in 0..self.addresses.len() {
            let to = self.addresses[i];
            for token in [d.token_a, d.token_b] {
                let input = abi::IToken::mintCall { to, amount: plenty }.abi_encode();
                txs.push(self.call(0, token, input, 120_000));
            }
        }
        for i in 0..self.addresses.len() {
            for (token, spender) in [
                (d.token_a, d.router),
                (d.token_b, d.router),
                (d.token_a, d.pool),
            ] {
                let input = abi::IToken::approveCall {
                    spender,
                    amount: U256::MAX,
                }
                .abi_encode();
                txs.push(self.call(i, token, input, 80_000));
            }
        }
        let liquidity = U256::from(UNIT) * U256::from(100_000u64);
        let input = abi::IRouter::addLiquidityCall {
            pair: d.pair,
            amount0Desired: liquidity,
            amount1Desired: liquidity,
            to: self.addresses[0],
        }
        .abi_encode();
        txs.push(self.call(0, d.router, input, 400_000));
        txs
    }

    /// Every key deposits token A into the lending pool (after
    /// [`Traffic::setup`]'s block, so that borrowing has collateral).
    pub fn deposits(&mut self) -> Vec<Bytes> {
        let pool = self.deployed.pool;
        (0..self.addresses.len())
            .map(|i| {
                let amount = U256::from(UNIT) * U256::from(1_000u64);
                self.call(
                    i,
                    pool,
                    abi::ILendingPool::depositCall { amount }.abi_encode(),
                    200_000,
                )
            })
            .collect()
    }

    /// Deploys a contract that stores `BLOCKHASH(NUMBER - 1)` in its slot 0
    /// when called, and calls it: a block whose execution needs an earlier
    /// block's hash.
    pub fn blockhash_probe(&mut self) -> Vec<Bytes> {
        // Runtime: PUSH1 1 NUMBER SUB BLOCKHASH PUSH1 0 SSTORE STOP; the
        // creation code copies those 9 bytes and returns them.
        let code = alloy_primitives::hex!("6009600c60003960096000f3600143034060005500").to_vec();
        let from = 2;
        let probe = self.addresses[from].create(self.nonces[from]);
        vec![
            self.sign(from, TxKind::Create, U256::ZERO, code, 200_000),
            self.call(from, probe, Vec::new(), 100_000),
        ]
    }

    /// A block of `txs` transactions of `shape`.
    pub fn block(&mut self, shape: Shape, txs: usize) -> Vec<Bytes> {
        (0..txs).map(|k| self.one(shape, k)).collect()
    }

    fn key(&mut self) -> usize {
        self.rng.below(self.addresses.len() as u64) as usize
    }

    fn someone(&mut self) -> Address {
        let key = self.key();
        self.addresses[key]
    }

    fn one(&mut self, shape: Shape, k: usize) -> Bytes {
        let d = self.deployed;
        match shape {
            Shape::HotToken => {
                let from = 2 + k % (self.addresses.len() - 2);
                let hot = self.addresses[0];
                self.token_transfer(from, d.token_a, hot)
            }
            Shape::HotPool => {
                let from = self.key();
                self.swap(from, k % 2 == 1)
            }
            Shape::SenderChains => {
                let chains = 4.min(self.addresses.len());
                let from = k % chains;
                let to = self.addresses[(from + 1) % chains];
                self.pay(from, to, 1_000 + k as u64)
            }
            Shape::Coinbase => {
                let coinbase = self.coinbase();
                if k.is_multiple_of(3) {
                    let to = self.someone();
                    self.pay(1, to, 5_000 + k as u64)
                } else {
                    let from = self.key();
                    self.pay(from, coinbase, 7_000 + k as u64)
                }
            }
            Shape::Mixed => self.mixed(),
        }
    }

    fn token_transfer(&mut self, from: usize, token: Address, to: Address) -> Bytes {
        let amount = U256::from(1 + self.rng.below(1_000)) * U256::from(UNIT / 1_000);
        self.call(from, token, transfer_calldata(to, amount).to_vec(), 100_000)
    }

    /// A swap on the pool; `greedy` asks for more than the pool gives.
    fn swap(&mut self, from: usize, greedy: bool) -> Bytes {
        let d = self.deployed;
        let a_to_b = self.rng.chance(50);
        let amount_in = U256::from(1 + self.rng.below(100)) * U256::from(UNIT);
        let token_in = if a_to_b { d.token_a } else { d.token_b };
        let input = abi::IRouter::swapExactTokensForTokensCall {
            amountIn: amount_in,
            amountOutMin: if greedy {
                amount_in * U256::from(2)
            } else {
                U256::ZERO
            },
            pair: d.pair,
            tokenIn: token_in,
            to: self.addresses[from],
        }
        .abi_encode();
        self.call(from, d.router, input, 250_000)
    }

    fn mixed(&mut self) -> Bytes {
        let d = self.deployed;
        let from = self.key();
        match self.rng.below(100) {
            0..=24 => {
                let to = if self.rng.chance(20) {
                    self.coinbase()
                } else {
                    self.someone()
                };
                let wei = 1 + self.rng.below(1_000_000);
                self.pay(from, to, wei)
            }
            25..=54 => {
                let to = if self.rng.chance(30) {
                    self.addresses[0]
                } else {
                    self.someone()
                };
                let token = if self.rng.chance(50) {
                    d.token_a
                } else {
                    d.token_b
                };
                self.token_transfer(from, token, to)
            }
            55..=79 => {
                let greedy = self.rng.chance(15);
                self.swap(from, greedy)
            }
            roll => {
                let unit = U256::from(UNIT);
                let input = match roll % 3 {
                    0 => abi::ILendingPool::depositCall {
                        amount: unit * U256::from(1 + self.rng.below(50)),
                    }
                    .abi_encode(),
                    // Up to 1,500 units against a 750-unit limit: some revert.
                    1 => abi::ILendingPool::borrowCall {
                        amount: unit * U256::from(1 + self.rng.below(1_500)),
                    }
                    .abi_encode(),
                    _ => abi::ILendingPool::repayCall {
                        amount: unit * U256::from(1 + self.rng.below(20)),
                    }
                    .abi_encode(),
                };
                self.call(from, d.pool, input, 200_000)
            }
        }
    }
}
