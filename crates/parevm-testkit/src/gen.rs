//! Random conflict-heavy blocks, deterministic from a seed.
//!
//! Used by the differential tests (through proptest) and by `parevm
//! stress`. A block mixes ETH transfers among a few accounts, calls to small
//! hand-assembled contracts that read and write a handful of shared slots,
//! CREATE and CREATE2 (with collisions), SELFDESTRUCT and re-creation,
//! reverts, out-of-gas, value sent to the beneficiary, transactions sent by
//! the beneficiary, BALANCE / EXTCODEHASH probes of accounts written earlier
//! in the block, and now and then an invalid transaction.

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use revm::context::{BlockEnv, TxEnv};
use revm::context_interface::block::BlobExcessGasAndPrice;
use revm::primitives::hardfork::SpecId;
use revm::primitives::TxKind;

use parevm::BlockInput;
use parevm::InMemoryStorage;

/// A small deterministic PRNG (SplitMix64): the generator must not depend
/// on a randomness crate's version to reproduce a seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A random element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A tiny EVM assembler: enough for the test contracts.
#[derive(Default)]
struct Asm(Vec<u8>);

mod op {
    pub(super) const STOP: u8 = 0x00;
    pub(super) const ADD: u8 = 0x01;
    pub(super) const EQ: u8 = 0x14;
    pub(super) const LT: u8 = 0x10;
    pub(super) const ISZERO: u8 = 0x15;
    pub(super) const BALANCE: u8 = 0x31;
    pub(super) const ORIGIN: u8 = 0x32;
    pub(super) const CALLVALUE: u8 = 0x34;
    pub(super) const CALLDATALOAD: u8 = 0x35;
    pub(super) const CALLDATASIZE: u8 = 0x36;
    pub(super) const CODECOPY: u8 = 0x39;
    pub(super) const EXTCODEHASH: u8 = 0x3f;
    pub(super) const POP: u8 = 0x50;
    pub(super) const MSTORE: u8 = 0x52;
    pub(super) const SLOAD: u8 = 0x54;
    pub(super) const SSTORE: u8 = 0x55;
    pub(super) const JUMP: u8 = 0x56;
    pub(super) const JUMPI: u8 = 0x57;
    pub(super) const GAS: u8 = 0x5a;
    pub(super) const JUMPDEST: u8 = 0x5b;
    pub(super) const PUSH1: u8 = 0x60;
    pub(super) const LOG0: u8 = 0xa0;
    pub(super) const LOG1: u8 = 0xa1;
    pub(super) const CREATE: u8 = 0xf0;
    pub(super) const CALL: u8 = 0xf1;
    pub(super) const RETURN: u8 = 0xf3;
    pub(super) const CREATE2: u8 = 0xf5;
    pub(super) const REVERT: u8 = 0xfd;
    pub(super) const SELFDESTRUCT: u8 = 0xff;
}

impl Asm {
    fn op(&mut self, op: u8) -> &mut Self {
        self.0.push(op);
        self
    }
    fn push(&mut self, value: u8) -> &mut Self {
        self.0.extend([op::PUSH1, value]);
        self
    }
    fn arg(&mut self, word: u8) -> &mut Self {
        self.push(word * 32).op(op::CALLDATALOAD)
    }
    fn here(&self) -> u8 {
        u8::try_from(self.0.len()).unwrap_or(u8::MAX)
    }
    fn patch(&mut self, at: usize, value: u8) {
        self.0[at] = value;
    }
    fn bytes(&self) -> Bytes {
        Bytes::from(self.0.clone())
    }
}

/// `mixer(read_slot, write_slot, addend, mode)`: `s[write] = s[read] + addend`,
/// LOG1(write); mode 1 reverts afterwards, mode 2 loops until out of gas,
/// mode 3 adds one to `s[3]` if the new `s[write]` is below 150, mode 4
/// logs the new `s[write]` as data. (Increments, decisions on stored
/// values and values leaving through a log: what delta tracking follows.)
pub fn mixer_code() -> Bytes {
    let mut a = Asm::default();
    a.arg(0)
        .op(op::SLOAD)
        .arg(2)
        .op(op::ADD)
        .arg(1)
        .op(op::SSTORE);
    a.arg(1).push(0).push(0).op(op::LOG1);
    a.arg(3).push(1).op(op::EQ);
    let revert_at = a.0.len() + 1;
    a.push(0).op(op::JUMPI);
    a.arg(3).push(2).op(op::EQ);
    let loop_at = a.0.len() + 1;
    a.push(0).op(op::JUMPI);
    a.arg(3).push(3).op(op::EQ);
    let threshold_at = a.0.len() + 1;
    a.push(0).op(op::JUMPI);
    a.arg(3).push(4).op(op::EQ);
    let log_at = a.0.len() + 1;
    a.push(0).op(op::JUMPI).op(op::STOP);
    let revert = a.here();
    a.op(op::JUMPDEST).push(0).push(0).op(op::REVERT);
    let spin = a.here();
    a.op(op::JUMPDEST).push(spin).op(op::JUMP);
    // if s[write] < 150 { s[3] += 1 }
    let threshold = a.here();
    a.op(op::JUMPDEST).push(150).arg(1).op(op::SLOAD).op(op::LT);
    let bump_at = a.0.len() + 1;
    a.push(0).op(op::JUMPI).op(op::STOP);
    let bump = a.here();
    a.op(op::JUMPDEST)
        .push(1)
        .push(3)
        .op(op::SLOAD)
        .op(op::ADD)
        .push(3)
        .op(op::SSTORE)
        .op(op::STOP);
    // LOG0(s[write])
    let log = a.here();
    a.op(op::JUMPDEST)
        .arg(1)
        .op(op::SLOAD)
        .push(0)
        .op(op::MSTORE)
        .push(32)
        .push(0)
        .op(op::LOG0)
        .op(op::STOP);
    a.patch(revert_at, revert);
    a.patch(loop_at, spin);
    a.patch(threshold_at, threshold);
    a.patch(bump_at, bump);
    a.patch(log_at, log);
    a.bytes()
}

/// `prober(addr)`: `s[0] = BALANCE(addr)`, `s[1] = EXTCODEHASH(addr)`.
pub fn prober_code() -> Bytes {
    let mut a = Asm::default();
    a.arg(0).op(op::BALANCE).push(0).op(op::SSTORE);
    a.arg(0)
        .op(op::EXTCODEHASH)
        .push(1)
        .op(op::SSTORE)
        .op(op::STOP);
    a.bytes()
}

/// Payable, any calldata: `s[0] = BALANCE(ORIGIN)` (a payout to it reads
/// the payer's balance, which the journal already holds).
pub fn origin_prober_code() -> Bytes {
    let mut a = Asm::default();
    a.op(op::ORIGIN)
        .op(op::BALANCE)
        .push(0)
        .op(op::SSTORE)
        .op(op::STOP);
    a.bytes()
}

/// `forwarder(to)` payable: CALL `to` with the call value.
pub fn forwarder_code() -> Bytes {
    let mut a = Asm::default();
    a.push(0)
        .push(0)
        .push(0)
        .push(0)
        .op(op::CALLVALUE)
        .arg(0)
        .op(op::GAS)
        .op(op::CALL)
        .op(op::POP)
        .op(op::STOP);
    a.bytes()
}

/// Runtime of the destructible child: with no calldata increments slot 0;
/// otherwise SELFDESTRUCTs to the address in word 0.
pub fn child_runtime() -> Vec<u8> {
    let mut a = Asm::default();
    a.op(op::CALLDATASIZE);
    let sd_at = a.0.len() + 1;
    a.push(0).op(op::JUMPI);
    a.push(0)
        .op(op::SLOAD)
        .push(1)
        .op(op::ADD)
        .push(0)
        .op(op::SSTORE)
        .op(op::STOP);
    let sd = a.here();
    a.op(op::JUMPDEST).arg(0).op(op::SELFDESTRUCT);
    a.patch(sd_at, sd);
    a.0
}

/// Init code of the child: sets slot 0 to 1, returns the runtime.
pub fn child_init() -> Vec<u8> {
    let runtime = child_runtime();
    let mut a = Asm::default();
    a.push(1).push(0).op(op::SSTORE);
    let len = u8::try_from(runtime.len()).unwrap_or(u8::MAX);
    let off_at = a.0.len() + 3;
    a.push(len)
        .push(0)
        .push(0)
        .op(op::CODECOPY)
        .push(len)
        .push(0)
        .op(op::RETURN);
    let off = a.here();
    a.patch(off_at, off);
    a.0.extend(runtime);
    a.0
}

/// `factory(mode, salt)`: mode 0 CREATEs a child, otherwise CREATE2 with `salt`;
/// stores the new address (zero on failure) in slot 0.
pub fn factory_code() -> Bytes {
    let init = child_init();
    let len = u8::try_from(init.len()).unwrap_or(u8::MAX);
    let mut a = Asm::default();
    let off_at = a.0.len() + 3;
    a.push(len).push(0).push(0).op(op::CODECOPY);
    a.arg(0).op(op::ISZERO);
    let c1_at = a.0.len() + 1;
    a.push(0).op(op::JUMPI);
    a.arg(1)
        .push(len)
        .push(0)
        .push(0)
        .op(op::CREATE2)
        .push(0)
        .op(op::SSTORE)
        .op(op::STOP);
    let c1 = a.here();
    a.op(op::JUMPDEST)
        .push(len)
        .push(0)
        .push(0)
        .op(op::CREATE)
        .push(0)
        .op(op::SSTORE)
        .op(op::STOP);
    let off = a.here();
    a.patch(off_at, off);
    a.patch(c1_at, c1);
    a.0.extend(init);
    a.bytes()
}

fn word(value: U256) -> [u8; 32] {
    value.to_be_bytes()
}

fn calldata(words: &[U256]) -> Bytes {
    words
        .iter()
        .flat_map(|w| word(*w))
        .collect::<Vec<u8>>()
        .into()
}

fn addr_word(address: Address) -> U256 {
    U256::from_be_slice(address.as_slice())
}

/// Knobs of the random block generator.
#[derive(Clone, Debug)]
pub struct GenParams {
    /// Number of transactions.
    pub txs: usize,
    /// Number of externally owned accounts (2..=20 in the tests).
    pub accounts: usize,
    /// Percent chance that the block contains one invalid transaction.
    pub invalid_percent: u64,
    /// Percent chance that the block is mostly payouts: plain transfers
    /// from one account (the beneficiary in half the blocks) to accounts,
    /// fresh addresses and contracts, some of which run code (a forwarder,
    /// a contract that reads the payer's balance), and in a third of them
    /// a payer that holds only about what 21,000 gas per payout costs.
    /// Other blocks come out as without it.
    pub payout_percent: u64,
}

impl Default for GenParams {
    fn default() -> Self {
        Self {
            txs: 100,
            accounts: 8,
            invalid_percent: 5,
            payout_percent: 0,
        }
    }
}

const FORKS: [SpecId; 9] = [
    SpecId::FRONTIER,
    SpecId::HOMESTEAD,
    SpecId::SPURIOUS_DRAGON,
    SpecId::BYZANTIUM,
    SpecId::PETERSBURG,
    SpecId::BERLIN,
    SpecId::LONDON,
    SpecId::SHANGHAI,
    SpecId::CANCUN,
];

/// A random block and its pre-state, from a seed.
pub fn random_block(seed: u64, params: &GenParams) -> (InMemoryStorage, BlockInput) {
    let mut rng = Rng::new(seed);
    let spec = if rng.chance(40) {
        SpecId::PRAGUE
    } else {
        *rng.pick(&FORKS)
    };
    // Drawn apart, so that blocks without payouts stay what they were.
    let mut payouts = Rng::new(seed ^ 0x9a7_0075);
    let payout_block = payouts.chance(params.payout_percent);
    let mut world = World::build(&mut rng, params);
    let block = block_env(&mut rng, spec, world.beneficiary, seed);
    let london = spec.is_enabled_in(SpecId::LONDON);
    // Free gas before London: the beneficiary may get zero credits.
    let free_gas = !london && rng.chance(15);
    let mut nonces = vec![0u64; world.accounts.len()];
    let mut txs = Vec::with_capacity(params.txs);
    let invalid_at = rng
        .chance(params.invalid_percent)
        .then(|| rng.below(params.txs.max(1) as u64) as usize);
    for i in 0..params.txs {
        let from = rng.below(world.accounts.len() as u64) as usize;
        let small_value = U256::from(rng.below(1_000_000));
        let mut drawn = world.draw_call(&mut rng, small_value);
        let payout = payout_block && payouts.chance(80);
        // The payer sends only payouts (a call would end its prediction).
        let from = match (payout, payout_block) {
            (true, _) => 0,
            (false, true) => 1 + from % (world.accounts.len() - 1),
            (false, false) => from,
        };
        if payout {
            drawn = world.draw_payout(&mut payouts);
        }
        let (kind, data, mut value, gas_limit) = drawn;
        let mut nonce = nonces[from];
        if invalid_at == Some(i) {
            if rng.chance(50) {
                nonce += 1 + rng.below(2);
            } else {
                value = world.rich * U256::from(2);
            }
        } else {
            nonces[from] += 1;
        }
        let (tx_type, gas_price, gas_priority_fee) = fees(&mut rng, london, free_gas);
        txs.push(TxEnv {
            tx_type,
            caller: world.accounts[from],
            gas_limit,
            gas_price,
            kind,
            value,
            data,
            nonce,
            chain_id: Some(1),
            gas_priority_fee,
            ..Default::default()
        });
    }
    if payout_block && payouts.chance(33) {
        world.fund_payer_short(&mut payouts, &txs, block.basefee);
    }
    let input = BlockInput {
        spec,
        chain_id: 1,
        block,
        txs,
    };
    (world.storage, input)
}

/// A call drawn for a random block: (target, calldata, value, gas limit).
type Drawn = (TxKind, Bytes, U256, u64);

/// The pre-block state of a random block and the addresses its
/// transactions pick from.
struct World {
    storage: InMemoryStorage,
    /// The senders (each holds [`World::rich`]).
    accounts: Vec<Address>,
    rich: U256,
    mixer: Address,
    prober: Address,
    forwarder: Address,
    factory: Address,
    origin_prober: Address,
    /// The factory's CREATE2 children.
    children: Vec<Address>,
    beneficiary: Address,
    /// Every address a call may go to.
    targets: Vec<Address>,
}

impl World {
    /// The senders, the contracts (some with storage, sometimes a child
    /// that already exists) and the beneficiary.
    fn build(rng: &mut Rng, params: &GenParams) -> Self {
        let mut storage = InMemoryStorage::new();
        let rich = U256::from(10).pow(U256::from(21));
        let accounts: Vec<Address> = (0..params.accounts.max(2))
            .map(|i| Address::left_padding_from(&(0x1000 + i as u64).to_be_bytes()))
            .collect();
        for a in &accounts {
            storage.insert_account(*a, rich, 0);
        }
        let mixer = Address::with_last_byte(0xa1);
        let prober = Address::with_last_byte(0xa2);
        let forwarder = Address::with_last_byte(0xa3);
        let factory = Address::with_last_byte(0xa4);
        storage.insert_contract(mixer, U256::ZERO, 1, mixer_code());
        storage.insert_contract(prober, U256::from(7), 1, prober_code());
        storage.insert_contract(forwarder, U256::ZERO, 1, forwarder_code());
        storage.insert_contract(factory, U256::ZERO, 1, factory_code());
        let origin_prober = Address::with_last_byte(0xa5);
        storage.insert_contract(origin_prober, U256::ZERO, 1, origin_prober_code());
        for slot in 0..4u64 {
            if rng.chance(50) {
                storage.insert_slot(mixer, U256::from(slot), U256::from(rng.below(1000)));
            }
        }
        let init_hash = keccak256(child_init());
        let children: Vec<Address> = (0..4u64)
            .map(|salt| factory.create2(B256::from(U256::from(salt)), init_hash))
            .collect();
        // Sometimes a child already exists before the block (with storage).
        if rng.chance(30) {
            let child = children[0];
            storage.insert_contract(child, U256::from(5), 1, child_runtime().into());
            storage.insert_slot(child, U256::ZERO, U256::from(9));
        }
        let fresh = Address::with_last_byte(0xee);
        // The beneficiary: a sender, a fresh address, or a contract.
        let beneficiary = match rng.below(4) {
            0 | 1 => accounts[0],
            2 => Address::with_last_byte(0xcb),
            _ => mixer,
        };
        let targets: Vec<Address> = accounts
            .iter()
            .copied()
            .chain([beneficiary, fresh, mixer, prober, forwarder, factory])
            .chain(children.iter().copied())
            .collect();
        Self {
            storage,
            accounts,
            rich,
            mixer,
            prober,
            forwarder,
            factory,
            origin_prober,
            children,
            beneficiary,
            targets,
        }
    }

    /// One call: a transfer, a mixer call, a probe, a forward, a factory
    /// call, a call to a child, or a create.
    fn draw_call(&self, rng: &mut Rng, small_value: U256) -> Drawn {
        match rng.below(100) {
            0..=24 => (
                TxKind::Call(*rng.pick(&self.targets)),
                Bytes::new(),
                small_value,
                21_000 + rng.below(2) * 30_000,
            ),
            25..=49 => {
                let mode = match rng.below(100) {
                    0..=5 => 1u64,
                    6..=10 => 2,
                    11..=25 => 3,
                    26..=35 => 4,
                    _ => 0,
                };
                let words = [
                    U256::from(rng.below(4)),
                    U256::from(rng.below(4)),
                    U256::from(rng.below(100)),
                    U256::from(mode),
                ];
                (
                    TxKind::Call(self.mixer),
                    calldata(&words),
                    U256::ZERO,
                    120_000,
                )
            }
            50..=59 => {
                let target = *rng.pick(&self.targets);
                (
                    TxKind::Call(self.prober),
                    calldata(&[addr_word(target)]),
                    U256::ZERO,
                    120_000,
                )
            }
            60..=67 => {
                let target = *rng.pick(&self.targets);
                (
                    TxKind::Call(self.forwarder),
                    calldata(&[addr_word(target)]),
                    small_value,
                    120_000,
                )
            }
            68..=77 => {
                let words = [U256::from(rng.below(2)), U256::from(rng.below(4))];
                (
                    TxKind::Call(self.factory),
                    calldata(&words),
                    U256::ZERO,
                    300_000,
                )
            }
            78..=92 => {
                let child = *rng.pick(&self.children);
                let data = if rng.chance(50) {
                    Bytes::new()
                } else {
                    calldata(&[addr_word(*rng.pick(&self.targets))])
                };
                (TxKind::Call(child), data, U256::ZERO, 100_000)
            }
            _ => (
                TxKind::Create,
                Bytes::from(child_init()),
                small_value,
                200_000,
            ),
        }
    }

    /// A payout of the payer: a plain transfer, rarely to the balance
    /// reader (which ends the chunk's shifts).
    fn draw_payout(&self, payouts: &mut Rng) -> Drawn {
        let to = if payouts.chance(3) {
            self.origin_prober
        } else {
            *payouts.pick(&self.targets)
        };
        let gas_limit = *payouts.pick(&[21_000, 21_000, 60_000, 100_000]);
        (
            TxKind::Call(to),
            Bytes::new(),
            U256::from(payouts.below(1_000_000)),
            gas_limit,
        )
    }

    /// The payer holds about what its transactions cost at 21,000 gas each
    /// (payouts that revert keep their value, others use more gas): late
    /// payouts may be short.
    fn fund_payer_short(&mut self, payouts: &mut Rng, txs: &[TxEnv], basefee: u64) {
        use revm::context_interface::Transaction as _;
        let payer = self.accounts[0];
        let price = |tx: &TxEnv| U256::from(tx.effective_gas_price(u128::from(basefee)));
        let needed: U256 = txs
            .iter()
            .filter(|tx| tx.caller == payer)
            .map(|tx| tx.value + price(tx) * U256::from(21_000))
            .sum();
        let cut = needed * U256::from(payouts.below(40)) / U256::from(100);
        self.storage.insert_account(payer, needed - cut, 0);
    }
}

/// The block environment: pre- or post-merge, with a base fee from London.
fn block_env(rng: &mut Rng, spec: SpecId, beneficiary: Address, seed: u64) -> BlockEnv {
    let post_merge = spec.is_enabled_in(SpecId::MERGE);
    let london = spec.is_enabled_in(SpecId::LONDON);
    BlockEnv {
        number: U256::from(1000 + rng.below(1000)),
        beneficiary,
        timestamp: U256::from(1_700_000_000u64),
        gas_limit: 1_000_000_000,
        basefee: if london { 7 } else { 0 },
        difficulty: if post_merge {
            U256::ZERO
        } else {
            U256::from(131_072)
        },
        prevrandao: Some(B256::from(U256::from(seed))),
        blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new(0, 3_338_477)),
        ..Default::default()
    }
}

/// A transaction's type, gas price and priority fee: EIP-1559 from London,
/// legacy (sometimes free) before.
fn fees(rng: &mut Rng, london: bool, free_gas: bool) -> (u8, u128, Option<u128>) {
    if london {
        (
            2,
            7 + u128::from(rng.below(20)),
            Some(u128::from(rng.below(5))),
        )
    } else {
        (
            0,
            if free_gas {
                0
            } else {
                1 + u128::from(rng.below(20))
            },
            None,
        )
    }
}
