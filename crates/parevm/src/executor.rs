//! The worker loop: drives a [`VmTask`] with the [`Scheduler`] over a
//! [`MvMemory`], on a scoped pool of threads.
//!
//! This is the seam between Block-STM and the virtual machine. The loop
//! knows how to execute, validate, abort and record; what a transaction
//! *does* is behind [`VmTask`]. The EVM implements it in `tx_task`; tests
//! implement it with a mock transaction type to check the scheduler and
//! mv-memory against a sequential baseline, and to inject panics.

use std::collections::HashMap;
use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

use crate::mv_memory::MvMemory;
use crate::scheduler::{Scheduler, Task};
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

/// A persistent pool per thread count. Workers that live across blocks
/// keep their allocator heaps and stacks warm; spawning threads for every
/// block cost a fresh set of page faults each time (a fifth of the workers'
/// time in profiles).
///
/// Several blocks may share a pool at once (e.g. tests running in
/// parallel): a block's workers then queue behind another block's, which is
/// safe because any one worker can finish a block on its own.
fn worker_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>, String> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(pool) = pools.get(&threads) {
        return Ok(Arc::clone(pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("parevm-worker-{i}"))
        .build()
        .map_err(|e| format!("cannot start {threads} worker threads: {e}"))?;
    let pool = Arc::new(pool);
    pools.insert(threads, Arc::clone(&pool));
    Ok(pool)
}

/// The last recorded result of each transaction.
struct Record<T: VmTask> {
    reads: T::Reads,
    output: T::Output,
}

/// Runs a whole block; returns each transaction's last output in order.
///
/// # Errors
/// A message when a worker panicked (the panic payload, if it is a string)
/// or when the engine ended with a transaction that has no output.
pub(crate) fn run_block<T: VmTask>(
    task: &T,
    block_size: usize,
    threads: usize,
    predecessors: Vec<Option<TxIdx>>,
) -> Result<(Vec<T::Output>, Vec<usize>), String> {
    let scheduler = Scheduler::new(block_size, predecessors);
    let mv = MvMemory::new(block_size);
    let records: Vec<Mutex<Option<Record<T>>>> =
        (0..block_size).map(|_| Mutex::new(None)).collect();
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let threads = threads.clamp(1, block_size.max(1));

    worker_pool(threads)?.scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|_| {
                let result = catch_unwind(AssertUnwindSafe(|| {
                    worker_loop(task, &scheduler, &mv, &records);
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
            });
        }
    });

    // Freeing every version of every location is pure overhead on the
    // block's critical path: hand it to a short-lived thread.
    std::thread::spawn(move || drop(mv));
    if let Some(message) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(message);
    }
    let incarnations = (0..block_size)
        .map(|tx| scheduler.incarnation(tx))
        .collect();
    let mut outputs = Vec::with_capacity(block_size);
    for (tx, record) in records.into_iter().enumerate() {
        match record.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(record) => outputs.push(record.output),
            None => return Err(format!("transaction {tx} finished without an output")),
        }
    }
    Ok((outputs, incarnations))
}

fn worker_loop<T: VmTask>(
    task: &T,
    scheduler: &Scheduler,
    mv: &MvMemory<T::Key, T::Value>,
    records: &[Mutex<Option<Record<T>>>],
) {
    let mut worker = task.worker(mv);
    let mut next: Option<Task> = None;
    let mut idle_rounds = 0u32;
    loop {
        if scheduler.halted() {
            return;
        }
        next = match next {
            Some(Task::Execute(version)) => {
                try_execute(task, &mut worker, scheduler, mv, records, version)
            }
            Some(Task::Validate(version)) => try_validate(task, scheduler, mv, records, version),
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
    }
}

fn try_execute<T: VmTask>(
    task: &T,
    worker: &mut T::Worker<'_>,
    scheduler: &Scheduler,
    mv: &MvMemory<T::Key, T::Value>,
    records: &[Mutex<Option<Record<T>>>],
    version: Version,
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
        mv.convert_writes_to_estimates(version.tx);
    }
    scheduler.finish_validation(version.tx, aborted)
}

#[cfg(test)]
#[path = "executor_tests.rs"]
mod tests;
