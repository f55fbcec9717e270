//! How the sequential loop, the chunks and the block's system calls run
//! transactions without touching revm: they implement [`Source`] (what
//! their database answers) and run transactions on a [`Machine`], which
//! wraps the source in revm's `Database` and owns the EVM.
//!
//! A machine is built once per run of transactions (the whole block for
//! the loop, one chunk for a chunk) and reused for each transaction, as a
//! hand-written revm loop does.

use alloy_primitives::{Address, Bytes, B256, U256};
use revm::bytecode::Bytecode;
use revm::context::result::ExecutionResult;
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::context_interface::result::EVMError;
use revm::context_interface::ContextSetters;
use revm::database_interface::Database;
use revm::handler::{Handler, MainBuilder, MainContext, SystemCallEvm};
use revm::inspector::InspectorHandler;
use revm::primitives::hardfork::SpecId;
use revm::state::AccountInfo;
use revm::ExecuteEvm;

use super::changes::changes_of;
use super::deltas::{DeltaTracker, SlotVars, TracksSlots};
use super::journal::{mainnet_evm, mainnet_evm_with, Eip7610Evm, LazyBeneficiary, StorageProbe};
use super::task::{output_of, receipt_of, LazyBeneficiaryHandler, TxFailure, TxOutput};
use crate::error::StorageError;
use crate::output::{TxChanges, TxReceipt};

/// A path's database, as revm asks it: the four reads of revm's
/// `Database`, the EIP-7610 probe, and the failure the probe could not
/// return.
pub(crate) trait Source: StorageProbe {
    /// An account's balance, nonce and code hash (and code, if at hand).
    ///
    /// # Errors
    /// A failure of the storage below.
    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StorageError>;

    /// Code by hash.
    ///
    /// # Errors
    /// A failure of the storage below, including an unknown hash.
    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StorageError>;

    /// A storage slot.
    ///
    /// # Errors
    /// A failure of the storage below.
    fn storage(&mut self, address: Address, index: U256) -> Result<U256, StorageError>;

    /// The hash of an earlier block.
    ///
    /// # Errors
    /// A failure of the storage below.
    fn block_hash(&mut self, number: u64) -> Result<B256, StorageError>;

    /// The failure an EIP-7610 probe met during the last transaction, if
    /// any (the probe itself cannot return one).
    fn take_deferred(&mut self) -> Option<StorageError>;
}

/// A [`Source`] as revm's `Database`.
pub(crate) struct Db<T>(T);

impl<T: Source> Database for Db<T> {
    type Error = StorageError;

    #[inline]
    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StorageError> {
        self.0.basic(address)
    }

    #[inline]
    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StorageError> {
        self.0.code_by_hash(code_hash)
    }

    #[inline]
    fn storage(&mut self, address: Address, index: U256) -> Result<U256, StorageError> {
        self.0.storage(address, index)
    }

    #[inline]
    fn block_hash(&mut self, number: u64) -> Result<B256, StorageError> {
        self.0.block_hash(number)
    }
}

impl<T: StorageProbe> StorageProbe for Db<T> {
    #[inline]
    fn has_storage(&mut self, address: Address) -> bool {
        self.0.has_storage(address)
    }
}

impl<T: LazyBeneficiary> LazyBeneficiary for Db<T> {
    #[inline]
    fn entering_reward(&mut self) {
        self.0.entering_reward();
    }
}

impl<T: TracksSlots> TracksSlots for Db<T> {
    #[inline]
    fn slot_vars(&mut self) -> &mut SlotVars {
        self.0.slot_vars()
    }
}

/// One EVM over a [`Source`], reused for a run of transactions.
pub(crate) struct Machine<T: Source, I = ()> {
    evm: Eip7610Evm<Db<T>, I>,
}

impl<T: Source> Machine<T> {
    /// A machine over `source` for a block.
    pub(crate) fn new(source: T, block: BlockEnv, cfg: CfgEnv) -> Self {
        Self {
            evm: mainnet_evm(Db(source), block, cfg),
        }
    }

    /// Executes `tx` with revm's mainnet handler (the fee credit paid in
    /// full) and returns its receipt (without cumulative gas) and changes.
    /// The caller commits the changes to its source.
    ///
    /// # Errors
    /// The transaction is invalid, or a read failed.
    pub(crate) fn transact(
        &mut self,
        tx: &TxEnv,
        spec: SpecId,
    ) -> Result<(TxReceipt, TxChanges), TxFailure> {
        let outcome = self.evm.transact(tx.clone());
        if let Some(source) = self.source().take_deferred() {
            return Err(TxFailure::Storage(source));
        }
        let outcome = outcome.map_err(|e| TxFailure::from_evm(e, TxFailure::Storage))?;
        let changes = changes_of(&outcome.state, spec);
        Ok((receipt_of(outcome.result), changes))
    }
}

impl<T: Source, I> Machine<T, I> {
    /// The source the machine reads.
    pub(crate) fn source(&mut self) -> &mut T {
        &mut self.evm.ctx.journaled_state.database().0
    }

    /// The inspector.
    pub(crate) fn inspector(&mut self) -> &mut I {
        &mut self.evm.inspector
    }
}

/// A transaction a chunk ran (see [`Machine::execute_lazy`]).
pub(crate) struct Executed {
    /// Its output, with the fee credit lazy where it was the beneficiary's
    /// only use.
    pub(crate) output: TxOutput,
    /// It succeeded.
    pub(crate) success: bool,
    /// The gas it used.
    pub(crate) gas_used: u64,
}

/// A source whose fee credit may be lazy (see `task`): it tells whether the
/// last transaction's credit went to a stand-in.
pub(crate) trait LazySource: Source + LazyBeneficiary + TracksSlots {
    /// The last transaction's fee credit went to the stand-in.
    fn credit_was_lazy(&self) -> bool;
}

impl<T: LazySource> Machine<T, DeltaTracker> {
    /// A machine over `source` with the delta inspector `tracker`.
    pub(crate) fn with_tracker(
        source: T,
        block: BlockEnv,
        cfg: CfgEnv,
        tracker: DeltaTracker,
    ) -> Self {
        Self {
            evm: mainnet_evm_with(Db(source), block, cfg, tracker),
        }
    }

    /// Executes `tx` with the lazy fee credit, under the inspector when
    /// `inspect` (which starts a new transaction for it first).
    ///
    /// # Errors
    /// The transaction is invalid, or a read failed.
    pub(crate) fn execute_lazy(
        &mut self,
        tx: &TxEnv,
        inspect: bool,
        beneficiary: Address,
        spec: SpecId,
    ) -> Result<Executed, TxFailure> {
        self.evm.ctx.set_tx(tx.clone());
        let result = if inspect {
            self.evm.inspector.start_tx();
            LazyBeneficiaryHandler::new().inspect_run(&mut self.evm)
        } else {
            LazyBeneficiaryHandler::new().run(&mut self.evm)
        };
        let mut state = self.evm.finalize();
        let result = match self.source().take_deferred() {
            Some(error) => Err(EVMError::Database(error)),
            None => result,
        };
        let result = result.map_err(|e| TxFailure::from_evm(e, TxFailure::Storage))?;
        let (success, gas_used) = (result.is_success(), result.tx_gas_used());
        let lazy = self.source().credit_was_lazy();
        Ok(Executed {
            output: output_of(&mut state, result, lazy, beneficiary, spec),
            success,
            gas_used,
        })
    }
}

/// What a system call did: its output, or how it reverted or halted
/// (revm's outcome, for the message), and its changes (the system
/// caller's own account left out), recorded in either case.
pub(crate) type SystemCall = (Result<Bytes, String>, TxChanges);

/// Runs a system call to `contract` with `data` over `source` (EIP-4788,
/// EIP-2935, EIP-7002, EIP-7251), as revm's system-call EVM does.
///
/// # Errors
/// A message when revm rejects the call.
pub(crate) fn system_call<T: Source>(
    source: &mut T,
    block: BlockEnv,
    cfg: CfgEnv,
    contract: Address,
    data: Bytes,
    system_address: Address,
    spec: SpecId,
) -> Result<SystemCall, String> {
    let mut db = Db(source);
    let mut evm = Context::mainnet()
        .with_db(&mut db)
        .with_block(block)
        .with_cfg(cfg)
        .build_mainnet();
    let outcome = evm.system_call(contract, data);
    drop(evm);
    let outcome = outcome.map_err(|e| e.to_string())?;
    let output = match outcome.result {
        ExecutionResult::Success { output, .. } => Ok(output.into_data()),
        other => Err(format!("{other:?}")),
    };
    let mut changes = changes_of(&outcome.state, spec);
    changes.remove(&system_address);
    Ok((output, changes))
}

impl<T: Source> Source for &mut T {
    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StorageError> {
        (**self).basic(address)
    }
    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StorageError> {
        (**self).code_by_hash(code_hash)
    }
    fn storage(&mut self, address: Address, index: U256) -> Result<U256, StorageError> {
        (**self).storage(address, index)
    }
    fn block_hash(&mut self, number: u64) -> Result<B256, StorageError> {
        (**self).block_hash(number)
    }
    fn take_deferred(&mut self) -> Option<StorageError> {
        (**self).take_deferred()
    }
}

impl<T: StorageProbe> StorageProbe for &mut T {
    fn has_storage(&mut self, address: Address) -> bool {
        (**self).has_storage(address)
    }
}
