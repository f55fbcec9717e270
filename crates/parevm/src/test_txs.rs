//! Hand-made transactions for the unit tests of the passes that read
//! transactions alone (the path choice, the head start).

use alloy_primitives::{Address, Bytes, U256};
use revm::context::TxEnv;
use revm::primitives::TxKind;

/// The address made of byte `i`.
pub(crate) fn addr(i: u8) -> Address {
    Address::repeat_byte(i)
}

/// A plain transfer of 1 wei.
pub(crate) fn transfer(from: u8, to: u8) -> TxEnv {
    TxEnv {
        caller: addr(from),
        kind: TxKind::Call(addr(to)),
        value: U256::from(1),
        ..Default::default()
    }
}

/// `token.transfer(to, amount)` from `from`.
pub(crate) fn token_transfer(from: u8, to: u8, amount: u64) -> TxEnv {
    let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
    data.extend_from_slice(&[0; 12]);
    data.extend_from_slice(addr(to).as_slice());
    data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
    TxEnv {
        caller: addr(from),
        kind: TxKind::Call(addr(0xee)),
        data: Bytes::from(data),
        ..Default::default()
    }
}
