//! Synchronisation primitives of the scheduler, swappable for a model
//! checker: `tests/scheduler_model.rs` compiles the scheduler against
//! shuttle's versions instead.

pub(crate) use std::sync::{atomic, Mutex, MutexGuard};
