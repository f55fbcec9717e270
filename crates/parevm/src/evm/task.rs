//! The revm glue: one transaction incarnation on a per-thread EVM whose
//! database is the [`VersionedView`].
//!
//! Each worker thread builds one mainnet EVM for the block and reuses it for
//! every task; between tasks only the view is re-pointed. The handler is
//! revm's mainnet handler with one change: just before the fee credit to
//! the beneficiary, the view is told so, and if the beneficiary was not read
//! earlier in the transaction, revm gets a zero-balance stand-in. What revm
//! credits to the stand-in is then the fee, stored as a commutative
//! [`EvmValue::FeeCredit`] instead of an absolute balance: transactions
//! paying the same beneficiary do not conflict.

use std::marker::PhantomData;

use alloy_primitives::{Address, U256};
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::context_interface::result::{EVMError, ExecutionResult, HaltReason};
use revm::context_interface::ContextSetters;
use revm::handler::{post_execution, EvmTr, FrameResult, Handler};
use revm::inspector::{Inspector, InspectorHandler};
use revm::interpreter::interpreter::EthInterpreter;
use revm::primitives::hardfork::SpecId;
use revm::state::EvmState;
use revm::ExecuteEvm;

use super::changes::changes_of;
use crate::error::{ExecError, StorageError};
use crate::evm::journal::{mainnet_evm, Eip7610Context, Eip7610Evm, LazyBeneficiary, StorageProbe};
use crate::evm::view::{AccountValue, EvmMemory, EvmValue, ReadSet, VersionedView, ViewError};
use crate::output::{TxChanges, TxOutcome, TxReceipt};
use crate::stm::executor::{ExecOutcome, VmTask};
use crate::storage::Storage;
use crate::types::{Location, TxIdx, Version};

/// The EVM type a worker reuses.
pub(crate) type ParEvm<'a, S> = Eip7610Evm<VersionedView<'a, S>>;

/// Mainnet handler that defers the beneficiary credit (see module docs).
pub(crate) struct LazyBeneficiaryHandler<E>(PhantomData<E>);

impl<E> LazyBeneficiaryHandler<E> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<DB, I> Handler for LazyBeneficiaryHandler<Eip7610Evm<DB, I>>
where
    DB: revm::Database + StorageProbe + LazyBeneficiary,
{
    type Evm = Eip7610Evm<DB, I>;
    type Error = EVMError<DB::Error>;
    type HaltReason = HaltReason;

    fn reward_beneficiary(
        &self,
        evm: &mut Self::Evm,
        exec_result: &mut FrameResult,
    ) -> Result<(), Self::Error> {
        evm.ctx().journaled_state.database().entering_reward();
        post_execution::reward_beneficiary(evm.ctx(), exec_result.gas()).map_err(From::from)
    }
}

impl<DB, I> InspectorHandler for LazyBeneficiaryHandler<Eip7610Evm<DB, I>>
where
    DB: revm::Database + StorageProbe + LazyBeneficiary,
    I: Inspector<Eip7610Context<DB>, EthInterpreter>,
{
    type IT = EthInterpreter;
}

/// Why a transaction has no receipt; becomes an [`ExecError`] for the block
/// if it survives validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TxFailure {
    Invalid(String),
    Header(String),
    Storage(StorageError),
    Evm(String),
}

impl TxFailure {
    pub(crate) fn into_error(self, index: TxIdx) -> ExecError {
        match self {
            Self::Invalid(reason) => ExecError::InvalidTransaction { index, reason },
            Self::Header(reason) => ExecError::InvalidHeader(reason),
            Self::Storage(source) => ExecError::Storage { index, source },
            Self::Evm(message) => ExecError::Evm { index, message },
        }
    }

    pub(crate) fn from_evm<E: std::fmt::Display>(
        error: EVMError<E>,
        storage: impl FnOnce(E) -> Self,
    ) -> Self {
        match error {
            EVMError::Transaction(e) => Self::Invalid(e.to_string()),
            EVMError::Header(e) => Self::Header(e.to_string()),
            EVMError::Database(e) => storage(e),
            EVMError::Custom(e) => Self::Evm(e),
            EVMError::CustomAny(e) => Self::Evm(e.to_string()),
        }
    }
}

/// A transaction's result before block-level post-processing.
#[derive(Clone, Debug)]
pub(crate) struct TxOutput {
    /// Receipt (its `cumulative_gas_used` is filled in at commit).
    pub(crate) receipt: TxReceipt,
    /// Changes, without the beneficiary when its credit was lazy.
    pub(crate) changes: TxChanges,
    /// The lazy beneficiary credit, if any.
    pub(crate) lazy_credit: Option<U256>,
    /// `changes` holds the beneficiary (it was read, so its credit was not
    /// lazy): the commit pass then reads its new state from there.
    pub(crate) beneficiary_written: bool,
}

/// Builds the receipt fields from revm's result.
pub(crate) fn receipt_of(result: ExecutionResult) -> TxReceipt {
    let gas_used = result.tx_gas_used();
    let created_address = result.created_address();
    let (outcome, logs, output) = match result {
        ExecutionResult::Success { logs, output, .. } => {
            (TxOutcome::Success, logs, output.into_data())
        }
        ExecutionResult::Revert { output, .. } => (TxOutcome::Revert, Vec::new(), output),
        ExecutionResult::Halt { reason, .. } => (
            TxOutcome::Halt(format!("{reason:?}")),
            Vec::new(),
            Default::default(),
        ),
    };
    TxReceipt {
        outcome,
        gas_used,
        cumulative_gas_used: 0,
        logs,
        created_address,
        output,
    }
}

/// A successful transaction's output. With a lazy credit, the beneficiary
/// stand-in leaves `state` and its balance becomes the delta.
pub(crate) fn output_of(
    state: &mut EvmState,
    result: ExecutionResult,
    lazy_beneficiary: bool,
    beneficiary: Address,
    spec: SpecId,
) -> TxOutput {
    let lazy_credit = if lazy_beneficiary {
        state.remove(&beneficiary).map(|a| a.info.balance)
    } else {
        None
    };
    let changes = changes_of(state, spec);
    TxOutput {
        receipt: receipt_of(result),
        beneficiary_written: changes.get(&beneficiary).is_some(),
        changes,
        lazy_credit,
    }
}

/// The EVM as a [`VmTask`].
pub(crate) struct EvmTask<'a, S> {
    pub(crate) storage: &'a S,
    pub(crate) spec: SpecId,
    pub(crate) cfg: CfgEnv,
    pub(crate) block: BlockEnv,
    pub(crate) txs: &'a [TxEnv],
}

impl<'s, S: Storage> VmTask for EvmTask<'s, S> {
    type Key = Location;
    type Value = EvmValue;
    type Reads = ReadSet;
    type Output = Result<TxOutput, TxFailure>;
    type Worker<'a>
        = ParEvm<'a, S>
    where
        Self: 'a;

    fn dense_key(&self) -> Option<Location> {
        // Every transaction pays the beneficiary (a lazy fee credit).
        Some(Location::Account(self.block.beneficiary))
    }

    fn worker<'a>(&'a self, mv: &'a EvmMemory) -> ParEvm<'a, S> {
        let view = VersionedView::new(mv, self.storage, self.spec, self.block.beneficiary);
        mainnet_evm(view, self.block.clone(), self.cfg.clone())
    }

    fn execute(&self, evm: &mut ParEvm<'_, S>, version: Version) -> ExecOutcome<Self> {
        evm.ctx.journaled_state.database().reset(version.tx);
        evm.ctx.set_tx(self.txs[version.tx].clone());
        let result = LazyBeneficiaryHandler::new().run(evm);
        let mut state = evm.finalize();
        let view = evm.ctx.journaled_state.database();
        let reads = std::mem::take(&mut view.reads);
        let result = match view.deferred.take() {
            Some(error) => Err(EVMError::Database(error)),
            None => result,
        };
        let result = match result {
            Ok(result) => result,
            Err(EVMError::Database(ViewError::Blocked(blocking))) => {
                return ExecOutcome::Blocked(blocking)
            }
            Err(error) => {
                let failure = TxFailure::from_evm(error, |e| match e {
                    ViewError::Storage(e) => TxFailure::Storage(e),
                    other => TxFailure::Evm(other.to_string()),
                });
                return ExecOutcome::Done {
                    reads,
                    writes: Vec::new(),
                    output: Err(failure),
                };
            }
        };
        let output = output_of(
            &mut state,
            result,
            view.lazy_beneficiary,
            self.block.beneficiary,
            self.spec,
        );
        let writes = writes_of(
            &state,
            &output.changes,
            &reads,
            output.lazy_credit,
            self.block.beneficiary,
        );
        ExecOutcome::Done {
            reads,
            writes,
            output: Ok(output),
        }
    }

    fn validate(&self, mv: &EvmMemory, tx: TxIdx, reads: &ReadSet) -> bool {
        reads.still_valid(mv, self.storage, tx, self.spec)
    }
}

/// The mv-memory writes of one incarnation.
fn writes_of(
    state: &EvmState,
    changes: &TxChanges,
    reads: &ReadSet,
    lazy_credit: Option<U256>,
    beneficiary: Address,
) -> Vec<(Location, EvmValue)> {
    let mut writes = Vec::new();
    for (address, change) in changes {
        let value = change.info.as_ref().and_then(|_| {
            state.get(address).map(|account| AccountValue {
                balance: account.info.balance,
                nonce: account.info.nonce,
                code_hash: account.info.code_hash,
                code: account.info.code.clone(),
            })
        });
        if reads.account(address) != Some(&value) {
            writes.push((Location::Account(*address), EvmValue::Account(value)));
        }
        if change.storage_cleared {
            writes.push((Location::StorageWipe(*address), EvmValue::Wipe));
        }
        for (slot, value) in &change.storage {
            writes.push((Location::Storage(*address, *slot), EvmValue::Slot(*value)));
        }
    }
    if let Some(delta) = lazy_credit {
        writes.push((Location::Account(beneficiary), EvmValue::FeeCredit(delta)));
    }
    writes
}
