//! A chain's genesis from a geth-style genesis file: the state its `alloc`
//! describes, and the genesis header geth builds from it (so that a chain's
//! first block links to it by hash).

use alloy_consensus::constants::EMPTY_OMMER_ROOT_HASH;
use alloy_consensus::Header;
use alloy_eips::eip1559::INITIAL_BASE_FEE;
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_genesis::Genesis;
use std::collections::BTreeMap;

use alloy_primitives::{keccak256, Bytes, B256, B64, U256};
use alloy_trie::EMPTY_ROOT_HASH;
use revm::primitives::hardfork::SpecId;
use revm::primitives::KECCAK_EMPTY;

use crate::chain::ChainSpec;
use crate::output::{AccountChange, AccountState, StateDiff};
use crate::storage::bytecode_from_bytes;

/// geth's gas limit for a genesis that names none.
const DEFAULT_GAS_LIMIT: u64 = 4_712_388;

/// The genesis state: every `alloc` account with its code and storage, as
/// a diff over the empty state.
pub fn genesis_alloc(genesis: &Genesis) -> StateDiff {
    genesis
        .alloc
        .iter()
        .map(|(address, account)| {
            let storage = account
                .storage
                .iter()
                .flatten()
                .map(|(slot, value)| (U256::from_be_bytes(slot.0), U256::from_be_bytes(value.0)))
                .collect();
            let code = account.code.clone().unwrap_or_default();
            let change = new_account(
                account.balance,
                account.nonce.unwrap_or_default(),
                code,
                storage,
            );
            (*address, change)
        })
        .collect()
}

/// The change that creates an account with this balance, nonce, code
/// (empty: none) and storage over the empty state.
pub fn new_account(
    balance: U256,
    nonce: u64,
    code: Bytes,
    storage: BTreeMap<U256, U256>,
) -> AccountChange {
    let (code_hash, code) = if code.is_empty() {
        (KECCAK_EMPTY, None)
    } else {
        (keccak256(&code), Some(bytecode_from_bytes(code)))
    };
    AccountChange {
        info: Some(AccountState {
            balance,
            nonce,
            code_hash,
            code,
        }),
        storage_cleared: false,
        storage,
    }
}

/// The genesis header with `state_root`, with the fields each fork active
/// at genesis adds (base fee from London, withdrawals root from Shanghai,
/// blob gas and the beacon root from Cancun, requests hash from Prague), as
/// geth builds it.
pub fn genesis_header(genesis: &Genesis, chain: &ChainSpec, state_root: B256) -> Header {
    let number = genesis.number.unwrap_or_default();
    let spec = chain.spec_at(number, genesis.timestamp);
    let from = |fork: SpecId| spec.is_enabled_in(fork);
    Header {
        parent_hash: genesis.parent_hash.unwrap_or_default(),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: genesis.coinbase,
        state_root,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        difficulty: genesis.difficulty,
        number,
        gas_limit: if genesis.gas_limit == 0 {
            DEFAULT_GAS_LIMIT
        } else {
            genesis.gas_limit
        },
        timestamp: genesis.timestamp,
        extra_data: genesis.extra_data.clone(),
        mix_hash: genesis.mix_hash,
        nonce: B64::from(genesis.nonce),
        base_fee_per_gas: from(SpecId::LONDON).then(|| {
            genesis.base_fee_per_gas.map_or(INITIAL_BASE_FEE, |fee| {
                u64::try_from(fee).unwrap_or(u64::MAX)
            })
        }),
        withdrawals_root: from(SpecId::SHANGHAI).then_some(EMPTY_ROOT_HASH),
        blob_gas_used: from(SpecId::CANCUN).then(|| genesis.blob_gas_used.unwrap_or_default()),
        excess_blob_gas: from(SpecId::CANCUN).then(|| genesis.excess_blob_gas.unwrap_or_default()),
        parent_beacon_block_root: from(SpecId::CANCUN).then_some(B256::ZERO),
        requests_hash: from(SpecId::PRAGUE).then_some(EMPTY_REQUESTS_HASH),
        ..Header::default()
    }
}
