//! The collaborative Block-STM scheduler.
//!
//! The scheduler hands out two kinds of tasks to worker threads: *execute
//! version (i, k)* and *validate version (i, k)*. It knows nothing about the
//! EVM or about memory locations: only transaction indices, incarnations and
//! a few counters.
//!
//! # Ordered task sets
//! Two shared indices walk the block from low to high:
//! `execution_idx` (the next transaction that may need executing) and
//! `validation_idx` (the next one that may need validating). A worker asks
//! for whichever is lower, so validation of low transactions is preferred:
//! the sooner a low transaction is known good, the fewer high ones waste work.
//! Indices only move back (are *decreased*) when a transaction re-executes
//! or is resumed; each decrease bumps `decrease_cnt`, which lets
//! [`Scheduler::check_done`] detect a race with a concurrent decrease.
//!
//! # Per-transaction state machine
//! ```text
//!                 try_incarnate                finish_execution
//!  ReadyToExecute(k) ───────────► Executing(k) ───────────────► Executed(k)
//!        ▲                            │                              │
//!        │                            │ add_dependency               │ try_validation_abort
//!        │ set_ready (k+1)            ▼                              ▼
//!        └──────────────────────── Aborting(k) ◄─────────────────────┘
//! ```
//! A transaction that reads an ESTIMATE written by transaction `j` is parked
//! in `dependents[j]` (state `Aborting`) and the worker moves on to other
//! work; when `j` finishes executing, it sets its dependents back to
//! `ReadyToExecute(k+1)` and lowers `execution_idx` so they are picked up.
//! Nobody spins on a dependency.
//!
//! # No lost wake-ups
//! `add_dependency(i, j)` holds the lock of `dependents[j]` while it checks
//! that `j` is not `Executed`; `finish_execution(j)` marks `j` `Executed`
//! *before* taking the same lock to drain `dependents[j]`. So either the
//! dependent sees `Executed` and re-executes at once, or it is in the list
//! when `j` drains it.
//!
//! # Termination
//! `num_active_tasks` counts tasks handed out and not yet finished. The block
//! is done when both indices are past the end, no task is active, and no
//! index was decreased while this was being checked.
//!
//! # Hints
//! `predecessors[i]`, when given, names an earlier transaction that `i` is
//! known to depend on (the previous transaction of the same sender: nonces
//! form a chain). Executing `i` before its predecessor has executed would
//! only produce an abort, so [`Scheduler::wait_for_predecessor`] parks it
//! on that dependency up front.
//!
//! # Head start
//! A few transactions may be named to execute *first*
//! ([`Scheduler::with_head_start`]): the caller's guess at the long ones
//! late in the block, which in block order would start when the other
//! workers are almost done and then run alone. Before taking anything
//! from the ordered sets, a worker claims the next of them (its first
//! incarnation, if nothing else took it yet). Nothing else changes: it
//! is an execution like any other, validated when `validation_idx`
//! reaches it or, if that index has passed it meanwhile, right after it
//! finishes (as for any execution that finishes behind the index); when
//! `execution_idx` reaches a transaction that already ran, it skips it,
//! as it skips one that is executing. A guess that read something a lower
//! transaction then writes costs one re-execution.

use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{Mutex, MutexGuard};
use crate::types::{Incarnation, TxIdx, Version};

/// A unit of work for a worker thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Task {
    /// Run this incarnation of the transaction.
    Execute(Version),
    /// Check that this incarnation's reads are still current.
    Validate(Version),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    ReadyToExecute,
    Executing,
    Executed,
    Aborting,
}

#[derive(Debug)]
struct TxState {
    incarnation: Incarnation,
    status: Status,
}

/// Locks a mutex, ignoring poisoning: a panicking worker is reported through
/// [`Scheduler::halt`], and the protected data (plain enums and vectors) is
/// never left half-updated by a panic in our own code.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The Block-STM scheduler for one block.
#[derive(Debug)]
pub(crate) struct Scheduler {
    block_size: usize,
    execution_idx: AtomicUsize,
    validation_idx: AtomicUsize,
    decrease_cnt: AtomicUsize,
    num_active_tasks: AtomicUsize,
    done_marker: AtomicBool,
    halted: AtomicBool,
    states: Vec<Mutex<TxState>>,
    dependents: Vec<Mutex<Vec<TxIdx>>>,
    predecessors: Vec<Option<TxIdx>>,
    /// Transactions to execute before the ordered sets (module docs).
    head_start: Vec<TxIdx>,
    /// The next entry of `head_start` to claim.
    head_start_next: AtomicUsize,
}

impl Scheduler {
    /// A scheduler for `block_size` transactions; `predecessors` may be empty
    /// or hold one optional known dependency per transaction (always lower).
    pub(crate) fn new(block_size: usize, predecessors: Vec<Option<TxIdx>>) -> Self {
        let predecessors = if predecessors.len() == block_size {
            predecessors
        } else {
            vec![None; block_size]
        };
        Self {
            block_size,
            execution_idx: AtomicUsize::new(0),
            validation_idx: AtomicUsize::new(0),
            decrease_cnt: AtomicUsize::new(0),
            num_active_tasks: AtomicUsize::new(0),
            done_marker: AtomicBool::new(block_size == 0),
            halted: AtomicBool::new(false),
            states: (0..block_size)
                .map(|_| {
                    Mutex::new(TxState {
                        incarnation: 0,
                        status: Status::ReadyToExecute,
                    })
                })
                .collect(),
            dependents: (0..block_size).map(|_| Mutex::new(Vec::new())).collect(),
            predecessors,
            head_start: Vec::new(),
            head_start_next: AtomicUsize::new(0),
        }
    }

    /// Names transactions to execute first, in this order (module docs);
    /// indices past the block and repeats are ignored.
    pub(crate) fn with_head_start(mut self, txs: Vec<TxIdx>) -> Self {
        let mut head_start: Vec<TxIdx> = Vec::with_capacity(txs.len());
        for tx in txs {
            if tx < self.block_size && !head_start.contains(&tx) {
                head_start.push(tx);
            }
        }
        self.head_start = head_start;
        self
    }

    /// True once every transaction is executed and validated.
    pub(crate) fn done(&self) -> bool {
        self.done_marker.load(Ordering::SeqCst)
    }

    /// Stops all workers (after an unrecoverable error or a panic).
    pub(crate) fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        self.done_marker.store(true, Ordering::SeqCst);
    }

    /// True when [`Scheduler::halt`] was called.
    pub(crate) fn halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    fn decrease_execution_idx(&self, target: TxIdx) {
        self.execution_idx.fetch_min(target, Ordering::SeqCst);
        self.decrease_cnt.fetch_add(1, Ordering::SeqCst);
    }

    fn decrease_validation_idx(&self, target: TxIdx) {
        self.validation_idx.fetch_min(target, Ordering::SeqCst);
        self.decrease_cnt.fetch_add(1, Ordering::SeqCst);
    }

    fn check_done(&self) {
        let observed = self.decrease_cnt.load(Ordering::SeqCst);
        if self
            .execution_idx
            .load(Ordering::SeqCst)
            .min(self.validation_idx.load(Ordering::SeqCst))
            >= self.block_size
            && self.num_active_tasks.load(Ordering::SeqCst) == 0
            && observed == self.decrease_cnt.load(Ordering::SeqCst)
        {
            self.done_marker.store(true, Ordering::SeqCst);
        }
    }

    /// Moves `tx` from `ReadyToExecute` to `Executing` if it is ready.
    fn try_incarnate(&self, tx: TxIdx) -> Option<Version> {
        if tx >= self.block_size {
            return None;
        }
        let mut state = lock(&self.states[tx]);
        if state.status == Status::ReadyToExecute {
            state.status = Status::Executing;
            Some(Version::new(tx, state.incarnation))
        } else {
            None
        }
    }

    fn next_version_to_execute(&self) -> Option<Version> {
        if self.execution_idx.load(Ordering::SeqCst) >= self.block_size {
            self.check_done();
            return None;
        }
        self.num_active_tasks.fetch_add(1, Ordering::SeqCst);
        let tx = self.execution_idx.fetch_add(1, Ordering::SeqCst);
        let version = self.try_incarnate(tx);
        if version.is_none() {
            self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        }
        version
    }

    /// The next head-start transaction, if one is left and still ready.
    fn next_head_start(&self) -> Option<Version> {
        if self.head_start_next.load(Ordering::SeqCst) >= self.head_start.len() {
            return None;
        }
        self.num_active_tasks.fetch_add(1, Ordering::SeqCst);
        let next = self.head_start_next.fetch_add(1, Ordering::SeqCst);
        let version = self
            .head_start
            .get(next)
            .and_then(|&tx| self.try_incarnate(tx));
        if version.is_none() {
            self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        }
        version
    }

    fn next_version_to_validate(&self) -> Option<Version> {
        if self.validation_idx.load(Ordering::SeqCst) >= self.block_size {
            self.check_done();
            return None;
        }
        self.num_active_tasks.fetch_add(1, Ordering::SeqCst);
        let tx = self.validation_idx.fetch_add(1, Ordering::SeqCst);
        if tx < self.block_size {
            let state = lock(&self.states[tx]);
            if state.status == Status::Executed {
                return Some(Version::new(tx, state.incarnation));
            }
        }
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        None
    }

    /// The next task for an idle worker, or `None` if there is nothing to do
    /// right now (the caller should check [`Scheduler::done`] and retry).
    pub(crate) fn next_task(&self) -> Option<Task> {
        if self.halted() {
            return None;
        }
        if let Some(version) = self.next_head_start() {
            return Some(Task::Execute(version));
        }
        if self.validation_idx.load(Ordering::SeqCst) < self.execution_idx.load(Ordering::SeqCst) {
            self.next_version_to_validate().map(Task::Validate)
        } else {
            self.next_version_to_execute().map(Task::Execute)
        }
    }

    /// Records that executing `tx` needs `blocking` (a lower transaction) to
    /// finish first. Returns `false` if `blocking` has already finished, in
    /// which case the caller should simply re-run `tx`; on `true` the
    /// execution task of `tx` is over and `tx` will be resumed later.
    pub(crate) fn add_dependency(&self, tx: TxIdx, blocking: TxIdx) -> bool {
        let mut deps = lock(&self.dependents[blocking]);
        if lock(&self.states[blocking]).status == Status::Executed {
            return false;
        }
        lock(&self.states[tx]).status = Status::Aborting;
        deps.push(tx);
        drop(deps);
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        true
    }

    /// Before executing `version`, parks it on its known predecessor if that
    /// one has not executed yet. Returns `true` if the task was parked.
    pub(crate) fn wait_for_predecessor(&self, version: Version) -> bool {
        match self.predecessors[version.tx] {
            Some(pred) if pred < version.tx => self.add_dependency(version.tx, pred),
            _ => false,
        }
    }

    fn set_ready_status(&self, tx: TxIdx) {
        let mut state = lock(&self.states[tx]);
        state.incarnation += 1;
        state.status = Status::ReadyToExecute;
    }

    /// Marks `version` executed, resumes its dependents, and returns a
    /// follow-up validation task when one is due right away.
    /// `wrote_new_location` says whether this incarnation wrote a location the
    /// previous one did not: then every higher transaction must be
    /// re-validated, not just this one.
    pub(crate) fn finish_execution(
        &self,
        version: Version,
        wrote_new_location: bool,
    ) -> Option<Task> {
        let tx = version.tx;
        lock(&self.states[tx]).status = Status::Executed;
        let resumed = std::mem::take(&mut *lock(&self.dependents[tx]));
        if let Some(&min_dep) = resumed.iter().min() {
            for &dep in &resumed {
                self.set_ready_status(dep);
            }
            self.decrease_execution_idx(min_dep);
        }
        if self.validation_idx.load(Ordering::SeqCst) > tx {
            if wrote_new_location {
                self.decrease_validation_idx(tx);
            } else {
                return Some(Task::Validate(version));
            }
        }
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        None
    }

    /// Claims the right to abort `version` after a failed validation.
    /// Only one validator wins per incarnation.
    pub(crate) fn try_validation_abort(&self, version: Version) -> bool {
        let mut state = lock(&self.states[version.tx]);
        if state.incarnation == version.incarnation && state.status == Status::Executed {
            state.status = Status::Aborting;
            true
        } else {
            false
        }
    }

    /// Ends a validation task; after an abort, returns the re-execution task.
    pub(crate) fn finish_validation(&self, tx: TxIdx, aborted: bool) -> Option<Task> {
        if aborted {
            self.set_ready_status(tx);
            self.decrease_validation_idx(tx + 1);
            if self.execution_idx.load(Ordering::SeqCst) > tx {
                if let Some(version) = self.try_incarnate(tx) {
                    return Some(Task::Execute(version));
                }
            }
        }
        self.num_active_tasks.fetch_sub(1, Ordering::SeqCst);
        None
    }

    /// True when `tx`'s last incarnation finished executing and was not
    /// aborted since.
    pub(crate) fn is_executed(&self, tx: TxIdx) -> bool {
        lock(&self.states[tx]).status == Status::Executed
    }

    /// The incarnation `tx` is at (for reports: re-executions = incarnation).
    pub(crate) fn incarnation(&self, tx: TxIdx) -> Incarnation {
        lock(&self.states[tx]).incarnation
    }
}
