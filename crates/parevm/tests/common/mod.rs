//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use alloy_primitives::{Address, Bytes, U256};
use parevm::revm::context::{BlockEnv, TxEnv};
use parevm::revm::primitives::hardfork::SpecId;
use parevm::revm::primitives::TxKind;
use parevm::{execute_block, BlockInput, BlockResult, Config, ExecError, Mode, Storage};

/// Thread counts every differential check runs at.
pub const THREADS: [usize; 5] = [1, 2, 4, 8, 16];

/// An address from a small number (offset past the precompiles).
pub fn addr(n: u64) -> Address {
    Address::left_padding_from(&(0x10_0000 + n).to_be_bytes())
}

/// A block environment for `spec` with `beneficiary`.
pub fn block_env(spec: SpecId, beneficiary: Address) -> BlockEnv {
    BlockEnv {
        number: U256::from(100),
        beneficiary,
        timestamp: U256::from(1_700_000_000u64),
        gas_limit: 30_000_000,
        basefee: if spec.is_enabled_in(SpecId::LONDON) {
            10
        } else {
            0
        },
        difficulty: U256::from(1),
        prevrandao: Some(Default::default()),
        blob_excess_gas_and_price: Some(
            parevm::revm::context_interface::block::BlobExcessGasAndPrice::new(0, 3_338_477),
        ),
        ..Default::default()
    }
}

/// A legacy-priced transaction (works on every fork).
pub fn tx(
    from: Address,
    to: Option<Address>,
    value: u64,
    nonce: u64,
    data: &[u8],
    gas_limit: u64,
) -> TxEnv {
    TxEnv {
        tx_type: 0,
        caller: from,
        gas_limit,
        gas_price: 20,
        kind: to.map_or(TxKind::Create, TxKind::Call),
        value: U256::from(value),
        data: Bytes::copy_from_slice(data),
        nonce,
        chain_id: Some(1),
        ..Default::default()
    }
}

/// A block input.
pub fn input(spec: SpecId, beneficiary: Address, txs: Vec<TxEnv>) -> BlockInput {
    BlockInput {
        spec,
        chain_id: 1,
        block: block_env(spec, beneficiary),
        txs,
    }
}

/// Executes sequentially, and with Block-STM and optimistic chunks (with
/// and without delta tracking) at every thread count; asserts the results (or errors) are identical and returns
/// the sequential one.
pub fn check<S: Storage>(storage: &S, input: &BlockInput) -> Result<BlockResult, ExecError> {
    let sequential = execute_block(storage, input, &Config::sequential());
    let configs = THREADS.into_iter().flat_map(|threads| {
        [Mode::BlockStm, Mode::Chunked, Mode::ChunkedDeltas].map(|mode| Config {
            mode,
            ..Config::block_stm(threads)
        })
    });
    for config in configs {
        let threads = config.threads;
        let parallel = execute_block(storage, input, &config);
        match (&sequential, &parallel) {
            (Ok(s), Ok(p)) => {
                if let Some(diff) = s.first_difference(p) {
                    panic!(
                        "{:?} {:?} at {threads} threads: {diff}",
                        input.spec, config.mode
                    );
                }
            }
            (Err(s), Err(p)) => assert_eq!(s, p, "{:?} threads {threads}", config.mode),
            (s, p) => panic!(
                "{:?} threads {threads}: sequential {s:?} vs parallel {p:?}",
                config.mode
            ),
        }
    }
    sequential
}
