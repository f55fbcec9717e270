//! Work around a block's transactions: system calls (EIP-4788, EIP-2935,
//! EIP-7002, EIP-7251), balance credits (withdrawals, rewards), and the
//! EIP-6110 deposit log layout.

use std::collections::BTreeMap;

use alloy_primitives::{Address, Bytes, U256};
use revm::context::{BlockEnv, CfgEnv};
use revm::primitives::hardfork::SpecId;
use revm::primitives::KECCAK_EMPTY;

use super::{BlockError, SYSTEM_ADDRESS};
use crate::evm::machine::{system_call, Source};
use crate::output::merge::merge_into;
use crate::output::{AccountChange, AccountState, StateDiff};
use crate::sequential::OverlayDb;
use crate::storage::Storage;

/// The proof-of-work block reward of a fork.
pub(super) fn block_reward(spec: SpecId) -> U256 {
    let ether = U256::from(10u64).pow(U256::from(18));
    if spec.is_enabled_in(SpecId::PETERSBURG) {
        ether * U256::from(2)
    } else if spec.is_enabled_in(SpecId::BYZANTIUM) {
        ether * U256::from(3)
    } else {
        ether * U256::from(5)
    }
}

/// Decodes one `DepositEvent` log's data into the 192-byte EIP-6110 request
/// (pubkey, withdrawal credentials, amount, signature, index), enforcing the
/// exact ABI layout the deposit contract emits.
pub(super) fn parse_deposit(data: &[u8]) -> Result<Vec<u8>, BlockError> {
    // Five dynamic `bytes` fields: offsets, then (length, padded data) each.
    const FIELDS: [(usize, usize); 5] = [(160, 48), (256, 32), (320, 8), (384, 96), (512, 8)];
    let bad = |what: String| BlockError::Invalid(format!("invalid deposit log: {what}"));
    if data.len() != 576 {
        return Err(bad(format!("data length {} != 576", data.len())));
    }
    let word = |at: usize| -> Result<usize, BlockError> {
        let w = U256::from_be_slice(&data[at..at + 32]);
        usize::try_from(w).map_err(|_| bad(format!("word at {at} too large")))
    };
    let mut out = Vec::with_capacity(192);
    for (i, (offset, size)) in FIELDS.into_iter().enumerate() {
        if word(i * 32)? != offset {
            return Err(bad(format!("field {i} offset")));
        }
        if word(offset)? != size {
            return Err(bad(format!("field {i} size")));
        }
        out.extend_from_slice(&data[offset + 32..offset + 32 + size]);
    }
    Ok(out)
}

/// Sequential EVM for system calls and balance credits around the block's
/// transactions, recording their changes.
pub(super) struct SystemCaller<'a, S: Storage> {
    pub(super) db: OverlayDb<'a, S>,
    block: BlockEnv,
    cfg: CfgEnv,
    spec: SpecId,
    pub(super) diff: StateDiff,
}

impl<'a, S: Storage> SystemCaller<'a, S> {
    pub(super) fn new(storage: &'a S, block: BlockEnv, cfg: CfgEnv, spec: SpecId) -> Self {
        Self {
            db: OverlayDb::new(storage),
            block,
            cfg,
            spec,
            diff: StateDiff::new(),
        }
    }

    fn record<'c, C: ?Sized>(&mut self, changes: &'c C)
    where
        &'c C: IntoIterator<Item = (&'c Address, &'c AccountChange)>,
    {
        self.db.commit(changes);
        merge_into(&mut self.diff, changes);
    }

    /// Calls a system contract. Without code there, an optional call does
    /// nothing and a mandatory one fails; a mandatory call must succeed.
    pub(super) fn call(
        &mut self,
        contract: Address,
        data: Bytes,
        mandatory: bool,
    ) -> Result<Bytes, BlockError> {
        let has_code = self
            .db
            .basic(contract)?
            .is_some_and(|info| info.code_hash != KECCAK_EMPTY);
        if !has_code {
            if mandatory {
                return Err(BlockError::SystemCall {
                    contract,
                    reason: "no code at the system contract".into(),
                });
            }
            return Ok(Bytes::new());
        }
        let (output, changes) = system_call(
            &mut self.db,
            self.block.clone(),
            self.cfg.clone(),
            contract,
            data,
            SYSTEM_ADDRESS,
            self.spec,
        )
        .map_err(|reason| BlockError::SystemCall { contract, reason })?;
        let output = match output {
            Ok(output) => output,
            Err(reason) if mandatory => return Err(BlockError::SystemCall { contract, reason }),
            Err(_) => Bytes::new(),
        };
        self.record(&changes);
        Ok(output)
    }

    /// Adds wei to an account outside any transaction (withdrawal, reward),
    /// with EIP-161 touch semantics: an account left empty is removed.
    pub(super) fn credit(&mut self, address: Address, amount: U256) -> Result<(), BlockError> {
        let before = self.db.basic(address)?;
        let (balance, nonce, code_hash) = match &before {
            Some(info) => (
                info.balance.saturating_add(amount),
                info.nonce,
                info.code_hash,
            ),
            None => (amount, 0, KECCAK_EMPTY),
        };
        let empty = balance.is_zero() && nonce == 0 && code_hash == KECCAK_EMPTY;
        let change = if empty && self.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) {
            if before.is_none() {
                return Ok(());
            }
            AccountChange {
                info: None,
                storage_cleared: true,
                storage: BTreeMap::new(),
            }
        } else {
            AccountChange {
                info: Some(AccountState {
                    balance,
                    nonce,
                    code_hash,
                    code: None,
                }),
                storage_cleared: false,
                storage: BTreeMap::new(),
            }
        };
        self.record(&StateDiff::from([(address, change)]));
        Ok(())
    }
}
