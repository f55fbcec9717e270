//! Deterministic DeFi workloads for benchmarks, built from a seed.
//!
//! A workload is a block of transactions plus the pre-state they run on. The
//! pre-state is written directly into an [`InMemoryStorage`]: the runtime
//! code of the contracts in `contracts/` (Token, Pair, Router, LendingPool)
//! is placed at fixed addresses ([`contracts`]) and their storage slots
//! (balances, allowances, reserves, deposits, ...) are set as Solidity lays
//! them out, so no set-up transactions are needed and every transaction of
//! the block is a measured one.
//!
//! Kinds ([`WorkloadKind`]):
//! - `raw`: ETH transfers;
//! - `erc20`: `Token.transfer`;
//! - `amm`: `Router.swapExactTokensForTokens` on a constant-product pair;
//! - `lending`: `deposit` / `borrow` / `repay` on a lending pool;
//! - `mixed`: a mainnet-like blend of the four (30% / 35% / 25% / 10%).
//!
//! Knobs ([`WorkloadSpec`]): block size in transactions or gas, number of
//! accounts, the share of transactions that pay the hot account
//! ([`contracts::HOT_ACCOUNT`]) or use the hot pool (pair 0 /
//! lending pool 0), and the length of dependency chains:
//! - `raw`, `erc20`: in a chain, each transaction is sent by the recipient
//!   of the previous one (it reads the balance the previous one wrote);
//! - `amm`, `lending`: a chain's transactions all use the same pool.
//!
//! The hot account holds tokens before the block (an exchange's wallet
//! rather than an address the block pays for the first time).
//!
//! Chains are contiguous in the block. Every transaction of every workload
//! succeeds when the block is executed in order; the generator keeps track
//! of nonces and lending positions to guarantee it.

pub mod contracts;

use std::fmt;
use std::str::FromStr;

use alloy_primitives::{Address, Bytes, U256};
use revm::context::{BlockEnv, TxEnv};
use revm::context_interface::block::BlobExcessGasAndPrice;
use revm::primitives::hardfork::SpecId;
use revm::primitives::TxKind;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::gen::Rng;
use contracts::{
    account, address_word, allowance_slot, balance_slot, lending_pool, mapping_slot, pair,
    pair_slots, pool_slots, token_slots, Codes, LendingOp, BENEFICIARY, HOT_ACCOUNT, ROUTER, TOKEN,
    TOKEN_A, TOKEN_B,
};
use parevm::BlockInput;
use parevm::InMemoryStorage;

/// The largest block a workload may have, in transactions.
pub const MAX_TXS: usize = 2_000_000;

/// Why a workload could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WorkloadError {
    /// Zero transactions or zero gas requested.
    #[error("a workload needs at least one transaction (or a positive gas target)")]
    Empty,
    /// More than [`MAX_TXS`] transactions.
    #[error("workload too large: more than {MAX_TXS} transactions")]
    TooLarge,
    /// A hot ratio outside `0..=1`.
    #[error("hot ratio {0} is outside 0..=1")]
    HotRatio(f64),
    /// A chain length of zero.
    #[error("chain length must be at least 1")]
    ChainLen,
    /// Zero accounts.
    #[error("the number of accounts must be at least 1")]
    Accounts,
    /// A committed contract artifact could not be read.
    #[error("contract artifact {name}: {reason}")]
    Artifact {
        /// The contract.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An unknown workload or preset name.
    #[error("unknown {what} {name:?} (expected one of: {expected})")]
    UnknownName {
        /// "workload" or "preset".
        what: &'static str,
        /// The name given.
        name: String,
        /// The valid names.
        expected: &'static str,
    },
}

/// What the transactions of a workload do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// ETH transfers.
    Raw,
    /// ERC-20 transfers.
    Erc20,
    /// AMM swaps through the router.
    Amm,
    /// Lending pool deposits, borrows and repayments.
    Lending,
    /// A mainnet-like blend of the other four.
    Mixed,
}

impl WorkloadKind {
    /// Every kind, in the order of the benchmark suite.
    pub const ALL: [Self; 5] = [
        Self::Raw,
        Self::Erc20,
        Self::Amm,
        Self::Lending,
        Self::Mixed,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Erc20 => "erc20",
            Self::Amm => "amm",
            Self::Lending => "lending",
            Self::Mixed => "mixed",
        }
    }

    /// Approximate gas of one transaction of this kind (used to size blocks
    /// by gas; `mixed` gives the blend's average).
    pub fn approx_gas(self) -> u64 {
        match self {
            Self::Raw => 21_000,
            Self::Erc20 => 51_000,
            Self::Amm => 99_000,
            Self::Lending => 54_000,
            Self::Mixed => 54_000,
        }
    }

    fn gas_limit(self) -> u64 {
        match self {
            Self::Raw => 21_000,
            Self::Erc20 => 100_000,
            Self::Amm | Self::Lending | Self::Mixed => 250_000,
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WorkloadKind {
    type Err = WorkloadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| WorkloadError::UnknownName {
                what: "workload",
                name: s.to_owned(),
                expected: "raw, erc20, amm, lending, mixed",
            })
    }
}

/// Named settings of the knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Preset {
    /// Hot ratio 0, chains of length 1: no two transactions share a sender,
    /// a recipient or a written storage slot.
    Independent,
    /// Every transfer (ETH, ERC-20, swap output) pays the hot account.
    HotRecipient,
    /// Every swap and lending operation uses the hot pool.
    HotPool,
    /// One chain: each transaction depends on the previous one.
    Chained,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Self; 4] = [
        Self::Independent,
        Self::HotRecipient,
        Self::HotPool,
        Self::Chained,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Independent => "independent",
            Self::HotRecipient => "hot-recipient",
            Self::HotPool => "hot-pool",
            Self::Chained => "chained",
        }
    }

    /// Whether the preset changes anything for `kind` (`hot-recipient`
    /// means nothing to `lending`, `hot-pool` nothing to `raw` and `erc20`).
    pub fn applies_to(self, kind: WorkloadKind) -> bool {
        match self {
            Self::Independent | Self::Chained => true,
            Self::HotRecipient => kind != WorkloadKind::Lending,
            Self::HotPool => matches!(
                kind,
                WorkloadKind::Amm | WorkloadKind::Lending | WorkloadKind::Mixed
            ),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = WorkloadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| WorkloadError::UnknownName {
                what: "preset",
                name: s.to_owned(),
                expected: "independent, hot-recipient, hot-pool, chained",
            })
    }
}

/// How big the block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// Exactly this many transactions.
    Txs(usize),
    /// Transactions until their approximate gas reaches this target
    /// ([`WorkloadKind::approx_gas`]); the real gas used is within a few
    /// percent.
    Gas(u64),
}

/// Everything that determines a workload.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSpec {
    /// What the transactions do.
    pub kind: WorkloadKind,
    /// Block size.
    pub size: Size,
    /// Number of distinct accounts senders and recipients are drawn from
    /// (uniformly at random); `None` = a fresh account every time, so that
    /// accounts never cause conflicts.
    pub accounts: Option<usize>,
    /// Share of transfers (ETH, ERC-20, swap outputs) that pay the hot
    /// account, in `0..=1`.
    pub hot_recipient: f64,
    /// Share of swaps and lending operations that use the hot pool, in `0..=1`.
    pub hot_pool: f64,
    /// Length of dependency chains; `usize::MAX` (or anything at least the
    /// number of transactions) makes the whole block one chain.
    pub chain_len: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl WorkloadSpec {
    /// The `independent` preset of `kind` at `size`, seed 1.
    pub fn new(kind: WorkloadKind, size: Size) -> Self {
        Self {
            kind,
            size,
            accounts: None,
            hot_recipient: 0.0,
            hot_pool: 0.0,
            chain_len: 1,
            seed: 1,
        }
    }

    /// A preset of `kind` at `size`, seed 1.
    pub fn preset(kind: WorkloadKind, preset: Preset, size: Size) -> Self {
        let mut spec = Self::new(kind, size);
        match preset {
            Preset::Independent => {}
            Preset::HotRecipient => spec.hot_recipient = 1.0,
            Preset::HotPool => spec.hot_pool = 1.0,
            Preset::Chained => spec.chain_len = usize::MAX,
        }
        spec
    }

    /// Sets both hot ratios (the workload uses the one that applies to it).
    pub fn with_hot_ratio(mut self, ratio: f64) -> Self {
        self.hot_recipient = ratio;
        self.hot_pool = ratio;
        self
    }

    /// Sets the chain length.
    pub fn with_chain_len(mut self, len: usize) -> Self {
        self.chain_len = len;
        self
    }

    /// Sets the number of accounts.
    pub fn with_accounts(mut self, accounts: Option<usize>) -> Self {
        self.accounts = accounts;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Generates the workload.
    ///
    /// # Errors
    /// [`WorkloadError`] for an invalid knob or a broken contract artifact.
    pub fn build(&self) -> Result<Workload, WorkloadError> {
        match self.size {
            Size::Txs(0) | Size::Gas(0) => return Err(WorkloadError::Empty),
            Size::Txs(n) if n > MAX_TXS => return Err(WorkloadError::TooLarge),
            Size::Gas(g)
                if g / self.kind.approx_gas().min(WorkloadKind::Raw.approx_gas())
                    > MAX_TXS as u64 =>
            {
                return Err(WorkloadError::TooLarge)
            }
            _ => {}
        }
        for ratio in [self.hot_recipient, self.hot_pool] {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(WorkloadError::HotRatio(ratio));
            }
        }
        if self.chain_len == 0 {
            return Err(WorkloadError::ChainLen);
        }
        if self.accounts == Some(0) {
            return Err(WorkloadError::Accounts);
        }
        Generator::new(self, Codes::load()?).run()
    }
}

/// A generated block and its pre-state.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The pre-state.
    pub storage: InMemoryStorage,
    /// The block.
    pub input: BlockInput,
    /// What each transaction does (`raw`, `erc20`, `amm` or `lending`).
    pub tx_kinds: Vec<WorkloadKind>,
}

/// The block environment every workload uses (Cancun, base fee 10 wei).
pub fn block_env() -> BlockEnv {
    BlockEnv {
        number: U256::from(20_000_000u64),
        beneficiary: BENEFICIARY,
        timestamp: U256::from(1_720_000_000u64),
        gas_limit: u64::MAX / 2,
        basefee: 10,
        prevrandao: Some(Default::default()),
        blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new(0, 3_338_477)),
        ..Default::default()
    }
}

/// `n` independent ETH transfers: distinct funded senders, distinct fresh
/// recipients (the `raw` workload's `independent` preset).
pub fn raw_transfers(n: usize) -> Result<Workload, WorkloadError> {
    WorkloadSpec::new(WorkloadKind::Raw, Size::Txs(n)).build()
}

const ETH_FUNDS: u128 = 1_000_000_000_000_000_000_000; // 1000 ETH
const TOKEN_FUNDS: u128 = 1_000_000_000_000_000_000_000_000_000_000; // 1e12 tokens
const ONE_TOKEN: u128 = 1_000_000_000_000_000_000;
const MAX_FEE: u128 = 20;
const PRIORITY_FEE: u128 = 2;
/// Initial lending position of every (user, pool): 1000 tokens deposited,
/// 100 borrowed.
const INITIAL_DEPOSIT: u128 = 1000 * ONE_TOKEN;
const INITIAL_DEBT: u128 = 100 * ONE_TOKEN;

#[derive(Clone, Copy, Debug, Default)]
struct Position {
    deposit: U256,
    debt: U256,
}

#[derive(Clone, Debug, Default)]
struct PoolState {
    initial_deposits: U256,
    initial_borrows: U256,
    /// Tokens held now (as the generated transactions run).
    cash: U256,
}

/// The state of the current dependency chain.
#[derive(Clone, Copy, Debug)]
struct Chain {
    kind: WorkloadKind,
    last_recipient: Option<Address>,
    pair: Option<u64>,
    pool: Option<u64>,
}

struct Generator<'a> {
    spec: &'a WorkloadSpec,
    codes: Codes,
    rng: Rng,
    storage: InMemoryStorage,
    txs: Vec<TxEnv>,
    tx_kinds: Vec<WorkloadKind>,
    nonces: FxHashMap<Address, u64>,
    eth_funded: FxHashSet<Address>,
    /// Pre-state token balances, by (token, holder).
    balances: FxHashMap<(Address, Address), U256>,
    /// Unlimited approvals: (token, owner, spender).
    approvals: FxHashSet<(Address, Address, Address)>,
    next_account: u64,
    pairs: FxHashSet<u64>,
    next_pair: u64,
    pools: FxHashMap<u64, PoolState>,
    positions: FxHashMap<(u64, Address), Position>,
    next_pool: u64,
    gas: u64,
}

impl<'a> Generator<'a> {
    fn new(spec: &'a WorkloadSpec, codes: Codes) -> Self {
        Self {
            spec,
            codes,
            rng: Rng::new(spec.seed),
            storage: InMemoryStorage::new(),
            txs: Vec::new(),
            tx_kinds: Vec::new(),
            nonces: FxHashMap::default(),
            eth_funded: FxHashSet::default(),
            balances: FxHashMap::default(),
            approvals: FxHashSet::default(),
            next_account: 0,
            pairs: FxHashSet::default(),
            // Pair 0 and pool 0 are the hot ones.
            next_pair: 1,
            pools: FxHashMap::default(),
            positions: FxHashMap::default(),
            next_pool: 1,
            gas: 0,
        }
    }

    fn done(&self) -> bool {
        match self.spec.size {
            Size::Txs(n) => self.txs.len() >= n,
            Size::Gas(g) => self.gas >= g,
        }
    }

    /// Whether transaction `i` is one of the `ratio` share of hot ones
    /// (spread evenly over the block, exactly `ratio * n` of the first `n`).
    fn is_hot(i: usize, ratio: f64) -> bool {
        ratio > 0.0 && ((i + 1) as f64 * ratio).floor() > (i as f64 * ratio).floor()
    }

    fn pick_kind(&mut self) -> WorkloadKind {
        match self.spec.kind {
            WorkloadKind::Mixed => match self.rng.below(100) {
                0..30 => WorkloadKind::Raw,
                30..65 => WorkloadKind::Erc20,
                65..90 => WorkloadKind::Amm,
                _ => WorkloadKind::Lending,
            },
            kind => kind,
        }
    }

    fn run(mut self) -> Result<Workload, WorkloadError> {
        self.storage
            .insert_contract(TOKEN, U256::ZERO, 1, self.codes.token.clone());
        self.storage
            .insert_contract(TOKEN_A, U256::ZERO, 1, self.codes.token.clone());
        self.storage
            .insert_contract(TOKEN_B, U256::ZERO, 1, self.codes.token.clone());
        self.storage
            .insert_contract(ROUTER, U256::ZERO, 1, self.codes.router.clone());
        if self.spec.hot_recipient > 0.0 {
            // The hot account is an established holder (an exchange's
            // wallet), not one that the block gives its first tokens.
            for token in [TOKEN, TOKEN_A, TOKEN_B] {
                self.fund_token(token, HOT_ACCOUNT);
            }
        }
        let mut chain: Option<Chain> = None;
        let mut in_chain = 0usize;
        while !self.done() {
            let i = self.txs.len();
            if in_chain >= self.spec.chain_len {
                in_chain = 0;
            }
            let current = match chain {
                Some(c) if in_chain > 0 => c,
                _ => Chain {
                    kind: self.pick_kind(),
                    last_recipient: None,
                    pair: None,
                    pool: None,
                },
            };
            let hot_recipient = Self::is_hot(i, self.spec.hot_recipient);
            let hot_pool = Self::is_hot(i, self.spec.hot_pool);
            let next = match current.kind {
                WorkloadKind::Raw | WorkloadKind::Erc20 => self.transfer(current, hot_recipient),
                WorkloadKind::Amm => self.swap(current, hot_recipient, hot_pool),
                WorkloadKind::Lending | WorkloadKind::Mixed => self.lending(current, hot_pool),
            };
            self.gas += current.kind.approx_gas();
            self.tx_kinds.push(current.kind);
            chain = Some(next);
            in_chain += 1;
        }
        self.finish()
    }

    fn fresh_account(&mut self) -> Address {
        match self.spec.accounts {
            None => {
                self.next_account += 1;
                account(self.next_account - 1)
            }
            Some(n) => account(self.rng.below(n as u64)),
        }
    }

    fn fund_eth(&mut self, who: Address) {
        if self.eth_funded.insert(who) {
            self.storage.insert_account(who, U256::from(ETH_FUNDS), 0);
        }
    }

    fn fund_token(&mut self, token: Address, who: Address) {
        self.balances
            .entry((token, who))
            .or_insert(U256::from(TOKEN_FUNDS));
    }

    fn approve(&mut self, token: Address, owner: Address, spender: Address) {
        self.approvals.insert((token, owner, spender));
    }

    fn push_tx(
        &mut self,
        kind: WorkloadKind,
        caller: Address,
        to: Address,
        value: U256,
        data: Bytes,
    ) {
        self.fund_eth(caller);
        let nonce = self.nonces.entry(caller).or_insert(0);
        let tx = TxEnv {
            tx_type: 2,
            caller,
            gas_limit: kind.gas_limit(),
            gas_price: MAX_FEE,
            gas_priority_fee: Some(PRIORITY_FEE),
            kind: TxKind::Call(to),
            value,
            data,
            nonce: *nonce,
            chain_id: Some(1),
            ..Default::default()
        };
        *nonce += 1;
        self.txs.push(tx);
    }

    fn transfer(&mut self, chain: Chain, hot: bool) -> Chain {
        let sender = match chain.last_recipient {
            Some(previous) => previous,
            None => self.fresh_account(),
        };
        let recipient = if hot {
            HOT_ACCOUNT
        } else {
            self.fresh_account()
        };
        if chain.kind == WorkloadKind::Raw {
            let value = U256::from(1_000_000_000u64 + self.rng.below(1_000_000_000));
            self.push_tx(WorkloadKind::Raw, sender, recipient, value, Bytes::new());
        } else {
            self.fund_token(TOKEN, sender);
            let amount = U256::from(1 + self.rng.below(1000)) * U256::from(ONE_TOKEN / 1000);
            let data = contracts::transfer_calldata(recipient, amount);
            self.push_tx(WorkloadKind::Erc20, sender, TOKEN, U256::ZERO, data);
        }
        Chain {
            last_recipient: Some(recipient),
            ..chain
        }
    }

    fn ensure_pair(&mut self, index: u64) -> Address {
        let address = pair(index);
        if self.pairs.insert(index) {
            // Reserves between 1e6 and 1e7 tokens each, at varied prices.
            let reserve0 =
                U256::from(1_000_000 + self.rng.below(9_000_000)) * U256::from(ONE_TOKEN);
            let reserve1 =
                U256::from(1_000_000 + self.rng.below(9_000_000)) * U256::from(ONE_TOKEN);
            self.storage
                .insert_contract(address, U256::ZERO, 1, self.codes.pair.clone());
            let slot = |s: u64| U256::from(s);
            self.storage
                .insert_slot(address, slot(pair_slots::TOKEN0), address_word(TOKEN_A));
            self.storage
                .insert_slot(address, slot(pair_slots::TOKEN1), address_word(TOKEN_B));
            let timestamp = U256::from(1_719_999_000u64);
            let packed = reserve0 | (reserve1 << 112) | (timestamp << 224);
            self.storage
                .insert_slot(address, slot(pair_slots::RESERVES), packed);
            self.storage
                .insert_slot(address, slot(pair_slots::STATUS), U256::from(1));
            self.balances.insert((TOKEN_A, address), reserve0);
            self.balances.insert((TOKEN_B, address), reserve1);
        }
        address
    }

    fn swap(&mut self, chain: Chain, hot_recipient: bool, hot_pool: bool) -> Chain {
        let index = if hot_pool {
            0
        } else if let Some(index) = chain.pair {
            index
        } else {
            self.next_pair += 1;
            self.next_pair - 1
        };
        let pair_address = self.ensure_pair(index);
        let sender = self.fresh_account();
        let to = if hot_recipient { HOT_ACCOUNT } else { sender };
        let token_in = if self.rng.below(2) == 0 {
            TOKEN_A
        } else {
            TOKEN_B
        };
        self.fund_token(token_in, sender);
        self.approve(token_in, sender, ROUTER);
        let amount_in = U256::from(1 + self.rng.below(10_000)) * U256::from(ONE_TOKEN / 1000);
        let data = contracts::swap_calldata(amount_in, pair_address, token_in, to);
        self.push_tx(WorkloadKind::Amm, sender, ROUTER, U256::ZERO, data);
        Chain {
            pair: if hot_pool { chain.pair } else { Some(index) },
            ..chain
        }
    }

    fn lending(&mut self, chain: Chain, hot_pool: bool) -> Chain {
        let index = if hot_pool {
            0
        } else if let Some(index) = chain.pool {
            index
        } else {
            self.next_pool += 1;
            self.next_pool - 1
        };
        let pool = lending_pool(index);
        if !self.pools.contains_key(&index) {
            self.storage
                .insert_contract(pool, U256::ZERO, 1, self.codes.lending_pool.clone());
            self.storage
                .insert_slot(pool, U256::from(pool_slots::TOKEN), address_word(TOKEN));
            self.pools.insert(index, PoolState::default());
        }
        let user = self.fresh_account();
        self.fund_token(TOKEN, user);
        self.approve(TOKEN, user, pool);
        let position = *self.positions.entry((index, user)).or_insert_with(|| {
            let state = self.pools.entry(index).or_default();
            state.initial_deposits += U256::from(INITIAL_DEPOSIT);
            state.initial_borrows += U256::from(INITIAL_DEBT);
            state.cash += U256::from(INITIAL_DEPOSIT - INITIAL_DEBT);
            Position {
                deposit: U256::from(INITIAL_DEPOSIT),
                debt: U256::from(INITIAL_DEBT),
            }
        });
        let cash = self.pools.get(&index).map_or(U256::ZERO, |p| p.cash);
        let amount = U256::from(1 + self.rng.below(10_000)) * U256::from(ONE_TOKEN / 1000);
        let limit = position.deposit * U256::from(7500) / U256::from(10_000);
        let wanted = match self.rng.below(3) {
            0 => LendingOp::Deposit,
            1 => LendingOp::Borrow,
            _ => LendingOp::Repay,
        };
        // Fall back to a deposit, which always succeeds, when the wanted
        // operation would revert in the state left by the block so far.
        let op = match wanted {
            LendingOp::Borrow if position.debt + amount > limit || amount > cash => {
                LendingOp::Deposit
            }
            LendingOp::Repay if amount > position.debt => LendingOp::Deposit,
            op => op,
        };
        let (position, cash) = match op {
            LendingOp::Deposit => (
                Position {
                    deposit: position.deposit + amount,
                    ..position
                },
                cash + amount,
            ),
            LendingOp::Borrow => (
                Position {
                    debt: position.debt + amount,
                    ..position
                },
                cash - amount,
            ),
            LendingOp::Repay => (
                Position {
                    debt: position.debt - amount,
                    ..position
                },
                cash + amount,
            ),
        };
        self.positions.insert((index, user), position);
        if let Some(state) = self.pools.get_mut(&index) {
            state.cash = cash;
        }
        let data = contracts::lending_calldata(op, amount);
        self.push_tx(WorkloadKind::Lending, user, pool, U256::ZERO, data);
        Chain {
            pool: if hot_pool { chain.pool } else { Some(index) },
            ..chain
        }
    }

    fn finish(mut self) -> Result<Workload, WorkloadError> {
        // Lending pools: totals, their token balance, and the initial positions.
        let mut pools: Vec<_> = self.pools.iter().map(|(i, s)| (*i, s.clone())).collect();
        pools.sort_by_key(|(i, _)| *i);
        for (index, state) in pools {
            let pool = lending_pool(index);
            self.storage.insert_slot(
                pool,
                U256::from(pool_slots::TOTAL_DEPOSITS),
                state.initial_deposits,
            );
            self.storage.insert_slot(
                pool,
                U256::from(pool_slots::TOTAL_BORROWS),
                state.initial_borrows,
            );
            *self.balances.entry((TOKEN, pool)).or_default() +=
                state.initial_deposits - state.initial_borrows;
        }
        for &(index, user) in self.positions.keys() {
            let pool = lending_pool(index);
            self.storage.insert_slot(
                pool,
                mapping_slot(user, U256::from(pool_slots::DEPOSITS)),
                U256::from(INITIAL_DEPOSIT),
            );
            self.storage.insert_slot(
                pool,
                mapping_slot(user, U256::from(pool_slots::DEBTS)),
                U256::from(INITIAL_DEBT),
            );
        }
        // Token balances and total supplies.
        let mut supply: FxHashMap<Address, U256> = FxHashMap::default();
        for (&(token, holder), &amount) in &self.balances {
            self.storage
                .insert_slot(token, balance_slot(holder), amount);
            *supply.entry(token).or_default() += amount;
        }
        for (token, total) in supply {
            self.storage
                .insert_slot(token, U256::from(token_slots::TOTAL_SUPPLY), total);
        }
        for &(token, owner, spender) in &self.approvals {
            self.storage
                .insert_slot(token, allowance_slot(owner, spender), U256::MAX);
        }
        Ok(Workload {
            storage: self.storage,
            input: BlockInput {
                spec: SpecId::CANCUN,
                chain_id: 1,
                block: block_env(),
                txs: self.txs,
            },
            tx_kinds: self.tx_kinds,
        })
    }
}

#[cfg(test)]
mod tests;
