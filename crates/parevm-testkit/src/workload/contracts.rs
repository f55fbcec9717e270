//! The benchmark contracts of `contracts/`: their runtime code, the fixed
//! addresses the workloads put them at, their storage layout and calldata.

use alloy_primitives::{keccak256, Address, Bytes, U256};
use alloy_sol_types::SolCall;

use super::WorkloadError;

/// The ERC-20 token of the `erc20` workload, also the asset of the lending pools.
pub const TOKEN: Address = Address::new([
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xde, 0, 0x01,
]);
/// token0 of every AMM pair.
pub const TOKEN_A: Address = Address::new([
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xde, 0, 0x02,
]);
/// token1 of every AMM pair.
pub const TOKEN_B: Address = Address::new([
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xde, 0, 0x03,
]);
/// The (stateless) AMM router every swap goes through.
pub const ROUTER: Address = Address::new([
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xde, 0, 0x04,
]);
/// The hot account: the recipient of "hot" transfers.
pub const HOT_ACCOUNT: Address = Address::new([
    0x07, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07,
]);
/// The block's fee recipient.
pub const BENEFICIARY: Address = Address::new([
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xcb,
]);

/// Externally owned account number `i`.
pub fn account(i: u64) -> Address {
    numbered(0xacc0, i)
}

/// AMM pair number `i` (pair 0 is the hot pool).
pub fn pair(i: u64) -> Address {
    numbered(0xa11a, i)
}

/// Lending pool number `i` (pool 0 is the hot pool).
pub fn lending_pool(i: u64) -> Address {
    numbered(0xb22b, i)
}

/// `prefix`, zeros, then `i`: its high bytes are set like those of a real
/// (hash-derived) address, so that in calldata it is told apart from an
/// amount (see `parevm::choose::look::address_arguments`).
fn numbered(prefix: u16, i: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[..2].copy_from_slice(&prefix.to_be_bytes());
    bytes[12..].copy_from_slice(&i.to_be_bytes());
    Address::new(bytes)
}

/// Storage slots of `Token` (and of the LP share of `Pair`).
pub mod token_slots {
    /// `totalSupply`.
    pub const TOTAL_SUPPLY: u64 = 0;
    /// `balanceOf` mapping.
    pub const BALANCE_OF: u64 = 1;
    /// `allowance` mapping of mappings.
    pub const ALLOWANCE: u64 = 2;
}

/// Storage slots of `Pair`.
pub mod pair_slots {
    /// `token0`.
    pub const TOKEN0: u64 = 3;
    /// `token1`.
    pub const TOKEN1: u64 = 4;
    /// `reserve0 | reserve1 << 112 | blockTimestampLast << 224`.
    pub const RESERVES: u64 = 5;
    /// Reentrancy status (1 = unlocked).
    pub const STATUS: u64 = 6;
}

/// Storage slots of `LendingPool`.
pub mod pool_slots {
    /// `token`.
    pub const TOKEN: u64 = 0;
    /// `totalDeposits`.
    pub const TOTAL_DEPOSITS: u64 = 1;
    /// `totalBorrows`.
    pub const TOTAL_BORROWS: u64 = 2;
    /// `deposits` mapping.
    pub const DEPOSITS: u64 = 3;
    /// `debts` mapping.
    pub const DEBTS: u64 = 4;
}

/// The slot of `mapping[key]` for a mapping declared at slot `index`:
/// `keccak256(pad32(key) ++ pad32(index))`.
pub fn mapping_slot(key: Address, index: U256) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[12..32].copy_from_slice(key.as_slice());
    preimage[32..].copy_from_slice(&index.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(preimage).0)
}

/// The slot of `balanceOf[holder]` in a token.
pub fn balance_slot(holder: Address) -> U256 {
    mapping_slot(holder, U256::from(token_slots::BALANCE_OF))
}

/// The slot of `allowance[owner][spender]` in a token.
pub fn allowance_slot(owner: Address, spender: Address) -> U256 {
    mapping_slot(
        spender,
        mapping_slot(owner, U256::from(token_slots::ALLOWANCE)),
    )
}

/// An address as a storage word.
pub fn address_word(address: Address) -> U256 {
    U256::from_be_slice(address.as_slice())
}

/// The contracts' functions that the workloads and the signed traffic
/// (`crate::traffic`) call.
#[allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]
pub(crate) mod abi {
    alloy_sol_types::sol! {
        interface IToken {
            function transfer(address to, uint256 amount) external returns (bool);
            function mint(address to, uint256 amount) external;
            function approve(address spender, uint256 amount) external returns (bool);
        }
        interface IRouter {
            function swapExactTokensForTokens(
                uint256 amountIn,
                uint256 amountOutMin,
                address pair,
                address tokenIn,
                address to
            ) external returns (uint256 amountOut);
            function addLiquidity(address pair, uint256 amount0Desired, uint256 amount1Desired, address to)
                external returns (uint256 liquidity);
        }
        interface ILendingPool {
            function deposit(uint256 amount) external;
            function borrow(uint256 amount) external;
            function repay(uint256 amount) external;
        }
    }
}

/// Calldata of `Token.transfer(to, amount)`.
pub fn transfer_calldata(to: Address, amount: U256) -> Bytes {
    abi::IToken::transferCall { to, amount }.abi_encode().into()
}

/// Calldata of `Router.swapExactTokensForTokens(amount_in, 0, pair, token_in, to)`.
pub fn swap_calldata(amount_in: U256, pair: Address, token_in: Address, to: Address) -> Bytes {
    abi::IRouter::swapExactTokensForTokensCall {
        amountIn: amount_in,
        amountOutMin: U256::ZERO,
        pair,
        tokenIn: token_in,
        to,
    }
    .abi_encode()
    .into()
}

/// A lending pool operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LendingOp {
    /// `deposit(amount)`.
    Deposit,
    /// `borrow(amount)`.
    Borrow,
    /// `repay(amount)`.
    Repay,
}

/// Calldata of a lending pool operation.
pub fn lending_calldata(op: LendingOp, amount: U256) -> Bytes {
    match op {
        LendingOp::Deposit => abi::ILendingPool::depositCall { amount }
            .abi_encode()
            .into(),
        LendingOp::Borrow => abi::ILendingPool::borrowCall { amount }.abi_encode().into(),
        LendingOp::Repay => abi::ILendingPool::repayCall { amount }.abi_encode().into(),
    }
}

/// Runtime code of the four deployable contracts.
#[derive(Clone, Debug)]
pub struct Codes {
    /// `Token`.
    pub token: Bytes,
    /// `Pair`.
    pub pair: Bytes,
    /// `Router`.
    pub router: Bytes,
    /// `LendingPool`.
    pub lending_pool: Bytes,
}

#[derive(serde::Deserialize)]
struct Artifact {
    #[serde(rename = "deployedBytecode")]
    deployed_bytecode: Bytes,
}

fn deployed(name: &'static str, json: &str) -> Result<Bytes, WorkloadError> {
    let artifact: Artifact = serde_json::from_str(json).map_err(|e| WorkloadError::Artifact {
        name,
        reason: e.to_string(),
    })?;
    if artifact.deployed_bytecode.is_empty() {
        return Err(WorkloadError::Artifact {
            name,
            reason: "empty deployedBytecode".into(),
        });
    }
    Ok(artifact.deployed_bytecode)
}

impl Codes {
    /// Reads the committed artifacts `contracts/out/*.json` (compiled into
    /// the library).
    ///
    /// # Errors
    /// [`WorkloadError::Artifact`] if an artifact is malformed.
    pub fn load() -> Result<Self, WorkloadError> {
        Ok(Self {
            token: deployed(
                "Token",
                include_str!("../../../../contracts/out/Token.json"),
            )?,
            pair: deployed("Pair", include_str!("../../../../contracts/out/Pair.json"))?,
            router: deployed(
                "Router",
                include_str!("../../../../contracts/out/Router.json"),
            )?,
            lending_pool: deployed(
                "LendingPool",
                include_str!("../../../../contracts/out/LendingPool.json"),
            )?,
        })
    }
}
