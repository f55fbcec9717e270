//! [`LayeredStorage`]: a state seen through a diff, for the system calls
//! that run before a block's transactions.

use std::collections::HashMap;

use alloy_primitives::{Address, B256, U256};
use revm::bytecode::Bytecode;

use super::{AccountBasic, Storage};
use crate::error::StorageError;
use crate::output::StateDiff;

/// A [`Storage`] seen through a [`StateDiff`]: the base state with the
/// diff's accounts, slots, deletions and code applied on top.
#[derive(Clone, Debug)]
pub struct LayeredStorage<S> {
    base: S,
    overlay: StateDiff,
    codes: HashMap<B256, Bytecode>,
}

impl<S: Storage> LayeredStorage<S> {
    /// `base` with `overlay` applied.
    pub fn new(base: S, overlay: StateDiff) -> Self {
        let codes = overlay
            .values()
            .filter_map(|c| c.info.as_ref())
            .filter_map(|i| i.code.clone().map(|code| (i.code_hash, code)))
            .collect();
        Self {
            base,
            overlay,
            codes,
        }
    }

    /// The overlay.
    pub fn overlay(&self) -> &StateDiff {
        &self.overlay
    }
}

impl<S: Storage> Storage for LayeredStorage<S> {
    /// A slot the overlay sets to non-zero counts; otherwise the base's
    /// storage counts unless the overlay cleared or deleted the account.
    /// (An overlay that zeroes every base slot one by one is not seen.)
    fn has_storage(&self, address: &Address) -> Result<bool, StorageError> {
        match self.overlay.get(address) {
            Some(change) if change.info.is_none() => Ok(false),
            Some(change) if change.storage.values().any(|v| !v.is_zero()) => Ok(true),
            Some(change) if change.storage_cleared => Ok(false),
            _ => self.base.has_storage(address),
        }
    }

    fn account(&self, address: &Address) -> Result<Option<AccountBasic>, StorageError> {
        match self.overlay.get(address) {
            Some(change) => Ok(change.info.as_ref().map(|i| AccountBasic {
                balance: i.balance,
                nonce: i.nonce,
                code_hash: i.code_hash,
            })),
            None => self.base.account(address),
        }
    }

    fn code_by_hash(&self, code_hash: &B256) -> Result<Bytecode, StorageError> {
        match self.codes.get(code_hash) {
            Some(code) => Ok(code.clone()),
            None => self.base.code_by_hash(code_hash),
        }
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        match self.overlay.get(address) {
            Some(change) => match change.storage.get(slot) {
                Some(value) => Ok(*value),
                None if change.storage_cleared || change.info.is_none() => Ok(U256::ZERO),
                None => self.base.storage(address, slot),
            },
            None => self.base.storage(address, slot),
        }
    }

    fn block_hash(&self, number: u64) -> Result<B256, StorageError> {
        self.base.block_hash(number)
    }
}
