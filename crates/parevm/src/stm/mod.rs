//! The Block-STM core, generic over the virtual machine: the collaborative
//! [`scheduler`], the multi-version memory ([`mv_memory`]) and the worker
//! loop ([`executor`]) that drives a `VmTask` with both. Nothing here knows
//! about the EVM: `evm::task` implements `VmTask` for revm, the tests for a
//! mock transaction type; `block_stm` is the path that runs it on a block.

pub(crate) mod executor;
pub(crate) mod mv_memory;
pub(crate) mod scheduler;
