//! The worker loop: drives a [`VmTask`] with the [`Scheduler`] over a
//! [`MvMemory`], on a scoped pool of threads.
//!
//! This is the seam between Block-STM and the virtual machine. The loop
//! knows how to execute, validate, abort and record; what a transaction
//! *does* is behind [`VmTask`]. The EVM implements it in `evm::task`; tests
//! implement it with a mock transaction type to check the scheduler and
//! mv-memory against a sequential baseline, and to inject panics.

use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::mv_memory::MvMemory;
use super::scheduler::{Scheduler, Task};
#[cfg(test)]
use crate::pool::join2;
use crate::pool::{drop_later, fan_out};
use crate::types::{TxIdx, Version};

/// What one execution of a transaction produced.
pub(crate) enum ExecOutcome<T: VmTask + ?Sized> {
    /// The incarnation ran to the end (which may be a revert or an invalid
    /// transaction: that is an output too, and is validated like any other).
    Done {
        /// What it read, in whatever form `validate` needs.
        reads: T::Reads,
        /// Every location it wrote, with the value.
        writes: Vec<(T::Key, T::Value)>,
        /// The transaction's result.
        output: T::Output,
    },
    /// It read an ESTIMATE of the given lower transaction and must wait for it.
    Blocked(TxIdx),
}

/// A transaction type the parallel executor can run.
pub(crate) trait VmTask: Sync {
    /// Location type in mv-memory.
    type Key: Eq + Hash + Clone + Send + Sync + 'static;
    /// Value type in mv-memory.
    type Value: Clone + Send + Sync + 'static;
    /// The read set of one incarnation.
    type Reads: Send;
    /// The result of one transaction.
    type Output: Send;
    /// Per-worker scratch state (e.g. a reusable EVM), built once per thread.
    type Worker<'a>
    where
        Self: 'a;

    /// Builds the per-thread scratch state.
    fn worker<'a>(&'a self, mv: &'a MvMemory<Self::Key, Self::Value>) -> Self::Worker<'a>;

    /// A key that nearly every transaction writes, if there is one; mv-memory
    /// stores it densely (one slot per transaction, no shared lock).
    fn dense_key(&self) -> Option<Self::Key> {
        None
    }

    /// Executes one incarnation, reading through `mv`.
    fn execute(&self, worker: &mut Self::Worker<'_>, version: Version) -> ExecOutcome<Self>;

    /// True when every read in `reads` still returns what it returned.
    fn validate(
        &self,
        mv: &MvMemory<Self::Key, Self::Value>,
        tx: TxIdx,
        reads: &Self::Reads,
    ) -> bool;
}

/// The last recorded result of each transaction.
struct Record<T: VmTask> {
    reads: T::Reads,
    output: T::Output,
}

/// When a run may give up on parallelism: once at least `min_executions`
/// executions ran to the end and more than one in `1 / max_waste` of them
/// was wasted (aborted by validation), the block is too serial for
/// Block-STM to win, and the caller finishes it sequentially from the
/// longest prefix that is already final.
///
/// Executions stopped on an ESTIMATE count neither way: they end at the
/// read that met it, usually early, and a block that wins from Block-STM
/// can have many of them (a quarter of all executions on some mainnet
/// blocks), as many as a block that loses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GiveUp {
    pub(crate) min_executions: usize,
    pub(crate) max_waste: f64,
}

/// Execution and waste counts, shared by the workers of one block. Workers
/// count locally and publish in batches, so an independent block does not
/// pay for a contended counter per transaction.
struct Waste {
    policy: Option<GiveUp>,
    executions: AtomicUsize,
    wasted: AtomicUsize,
}

/// One worker's unpublished counts.
#[derive(Default)]
struct LocalWaste {
    executions: usize,
    wasted: usize,
}

impl Waste {
    /// Publishes `local` and decides; true when the run should stop.
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn publish(&self, local: &mut LocalWaste) -> bool {
        let Some(policy) = self.policy else {
            return false;
        };
        let executions = self
            .executions
            .fetch_add(local.executions, Ordering::Relaxed)
            + local.executions;
        let wasted = self.wasted.fetch_add(local.wasted, Ordering::Relaxed) + local.wasted;
        *local = LocalWaste::default();
        executions >= policy.min_executions && wasted as f64 > executions as f64 * policy.max_waste
    }
}

/// What a block run produced.
pub(crate) struct BlockRun<T: VmTask> {
    /// The last output of each transaction of the final prefix: the whole
    /// block, unless the run gave up (see [`GiveUp`]).
    pub(crate) outputs: Vec<T::Output>,
    /// The incarnation each transaction reached (its re-executions).
    pub(crate) incarnations: Vec<usize>,
    /// After a give-up: for the transactions above the final prefix, the
    /// last finished execution of each that has one (its reads and
    /// output), in block order. Not proven final; the caller may check
    /// them by value.
    pub(crate) leftovers: Vec<(TxIdx, T::Reads, T::Output)>,
}

/// Runs a whole block; returns each transaction's last output in order.
/// With a [`GiveUp`] policy the run may stop early and return only the
/// prefix of transactions whose outputs are final.
///
/// # Errors
/// A message when a worker panicked (the panic payload, if it is a string)
/// or when the engine ended with a transaction that has no output.
pub(crate) fn run_block<T: VmTask>(
    task: &T,
    block_size: usize,
    threads: usize,
    predecessors: Vec<Option<TxIdx>>,
    head_start: Vec<TxIdx>,
    give_up: Option<GiveUp>,
) -> Result<BlockRun<T>, String> {
    let scheduler = Scheduler::new(block_size, predecessors).with_head_start(head_start);
    let mv = MvMemory::with_dense_key(block_size, task.dense_key());
    let records: Vec<Mutex<Option<Record<T>>>> =
        (0..block_size).map(|_| Mutex::new(None)).collect();
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let waste = Waste {
        policy: give_up,
        executions: AtomicUsize::new(0),
        wasted: AtomicUsize::new(0),
    };
    let threads = threads.clamp(1, block_size.max(1));

    let work = || {
        let result = catch_unwind(AssertUnwindSafe(|| {
            worker_loop(task, &scheduler, &mv, &records, &waste);
        }));
        if let Err(payload) = result {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_string());
            failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(format!("worker thread panicked: {message}"));
            scheduler.halt();
        }
    };
    // The calling thread is one of the workers: only `threads - 1` pool
    // threads are woken, and the caller's caches already hold the block.
    // `work` catches its own panics, so `fan_out` cannot fail on one.
    fan_out(threads, |_| work())?;

    if let Some(message) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        drop_later(mv);
        return Err(message);
    }
    // Without a panic, only the give-up policy halts the scheduler.
    let final_prefix = if scheduler.halted() {
        // The workers are gone, so mv-memory is still. Walking up from the
        // bottom, a transaction whose last execution finished and whose
        // reads still hold against the (final) writes below it is final.
        (0..block_size)
            .find(|&tx| {
                !scheduler.is_executed(tx)
                    || !records[tx]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                        .is_some_and(|record| task.validate(&mv, tx, &record.reads))
            })
            .unwrap_or(block_size)
    } else {
        block_size
    };
    // Freeing every version of every location is pure overhead on the
    // block's critical path.
    drop_later(mv);
    let incarnations = (0..block_size)
        .map(|tx| scheduler.incarnation(tx))
        .collect();
    let mut outputs = Vec::with_capacity(final_prefix);
    let mut leftovers = Vec::new();
    for (tx, record) in records.into_iter().enumerate() {
        match (
            record.into_inner().unwrap_or_else(|p| p.into_inner()),
            tx < final_prefix,
        ) {
            (Some(record), true) => outputs.push(record.output),
            (None, true) => return Err(format!("transaction {tx} finished without an output")),
            (Some(record), false) => leftovers.push((tx, record.reads, record.output)),
            (None, false) => {}
        }
    }
    Ok(BlockRun {
        outputs,
        incarnations,
        leftovers,
    })
}

/// Executions a worker counts before publishing them.
const PUBLISH_EVERY: usize = 32;

fn worker_loop<T: VmTask>(
    task: &T,
    scheduler: &Scheduler,
    mv: &MvMemory<T::Key, T::Value>,
    records: &[Mutex<Option<Record<T>>>],
    waste: &Waste,
) {
    let mut worker = task.worker(mv);
    let mut next: Option<Task> = None;
    let mut idle_rounds = 0u32;
    let mut local = LocalWaste::default();
    loop {
        if scheduler.halted() {
            return;
        }
        next = match next {
            Some(Task::Execute(version)) => try_execute(
                task,
                &mut worker,
                scheduler,
                mv,
                records,
                version,
                &mut local,
            ),
            Some(Task::Validate(version)) => {
                try_validate(task, scheduler, mv, records, version, &mut local)
            }
            None => {
                if scheduler.done() {
                    return;
                }
                let t = scheduler.next_task();
                if t.is_none() {
                    // Nothing to hand out right now: other workers hold the
                    // remaining tasks. Back off politely instead of hammering
                    // the shared indices.
                    idle_rounds = idle_rounds.saturating_add(1);
                    if idle_rounds < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                } else {
                    idle_rounds = 0;
                }
                t
            }
        };
        if (local.wasted > 0 || local.executions >= PUBLISH_EVERY) && waste.publish(&mut local) {
            // Too many aborts: stop handing out work. Tasks already taken
            // by other workers finish; the caller takes over from there.
            scheduler.halt();
            return;
        }
    }
}

fn try_execute<T: VmTask>(
    task: &T,
    worker: &mut T::Worker<'_>,
    scheduler: &Scheduler,
    mv: &MvMemory<T::Key, T::Value>,
    records: &[Mutex<Option<Record<T>>>],
    version: Version,
    local: &mut LocalWaste,
) -> Option<Task> {
    if scheduler.wait_for_predecessor(version) {
        return None;
    }
    loop {
        match task.execute(worker, version) {
            ExecOutcome::Blocked(blocking) => {
                if scheduler.add_dependency(version.tx, blocking) {
                    return None;
                }
                // The blocker finished meanwhile: run again right away.
            }
            ExecOutcome::Done {
                reads,
                writes,
                output,
            } => {
                local.executions += 1;
                *records[version.tx]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(Record { reads, output });
                let wrote_new = mv.record(version, writes);
                return scheduler.finish_execution(version, wrote_new);
            }
        }
    }
}

fn try_validate<T: VmTask>(
    task: &T,
    scheduler: &Scheduler,
    mv: &MvMemory<T::Key, T::Value>,
    records: &[Mutex<Option<Record<T>>>],
    version: Version,
    local: &mut LocalWaste,
) -> Option<Task> {
    let valid = {
        let record = records[version.tx]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match record.as_ref() {
            Some(record) => task.validate(mv, version.tx, &record.reads),
            None => false,
        }
    };
    let aborted = !valid && scheduler.try_validation_abort(version);
    if aborted {
        local.wasted += 1;
        mv.convert_writes_to_estimates(version.tx);
    }
    scheduler.finish_validation(version.tx, aborted)
}

#[cfg(test)]
#[path = "executor_tests.rs"]
mod tests;
