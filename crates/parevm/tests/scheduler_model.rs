//! Model checking of the scheduler's atomics and locks with `shuttle`.
//!
//! The scheduler source is compiled a second time here with shuttle's
//! `Mutex` and atomics in place of std's (through the `sync` module the
//! scheduler imports), and driven by a minimal Block-STM worker loop over a
//! tiny versioned store. Shuttle explores thread interleavings (random and
//! PCT schedules); each must terminate (no deadlock, no lost wake-up, no
//! livelock within the step bound) with the sequential result.

#![allow(missing_docs, unreachable_pub)]

mod sync {
    pub(crate) use shuttle::sync::{atomic, Mutex, MutexGuard};
}

#[allow(dead_code)]
#[path = "../src/types.rs"]
mod types;

#[allow(dead_code)]
#[path = "../src/stm/scheduler.rs"]
mod scheduler;

use std::sync::Arc;

use scheduler::{Scheduler, Task};
use shuttle::sync::Mutex;
use types::{TxIdx, Version};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    Empty,
    Estimate,
    Data(u64),
}

/// Transaction `i` reads the slot of `deps[i]` (if any) and writes
/// `1 + what it read` to its own slot: a dependency graph with a known
/// sequential answer.
struct Model {
    deps: Vec<Option<TxIdx>>,
    slots: Mutex<Vec<Slot>>,
    reads: Mutex<Vec<Option<u64>>>,
}

enum Outcome {
    /// Finished; `true` if it wrote its slot for the first time.
    Done(bool),
    Blocked(TxIdx),
}

impl Model {
    fn execute(&self, tx: TxIdx) -> Outcome {
        let read = match self.deps[tx] {
            None => 0,
            Some(dep) => match self.slots.lock().expect("no poison")[dep] {
                Slot::Empty => 0,
                Slot::Estimate => return Outcome::Blocked(dep),
                Slot::Data(v) => v,
            },
        };
        self.reads.lock().expect("no poison")[tx] = Some(read);
        let mut slots = self.slots.lock().expect("no poison");
        let first = slots[tx] == Slot::Empty;
        slots[tx] = Slot::Data(read + 1);
        Outcome::Done(first)
    }

    fn validate(&self, tx: TxIdx) -> bool {
        let Some(seen) = self.reads.lock().expect("no poison")[tx] else {
            return false;
        };
        let now = match self.deps[tx] {
            None => 0,
            Some(dep) => match self.slots.lock().expect("no poison")[dep] {
                Slot::Empty => 0,
                Slot::Estimate => return false,
                Slot::Data(v) => v,
            },
        };
        now == seen
    }

    fn expected(&self) -> Vec<Slot> {
        let mut out: Vec<u64> = Vec::new();
        for dep in &self.deps {
            out.push(dep.map_or(0, |d| out[d]) + 1);
        }
        out.into_iter().map(Slot::Data).collect()
    }
}

fn worker(scheduler: &Scheduler, model: &Model) {
    let mut task: Option<Task> = None;
    loop {
        task = match task {
            Some(Task::Execute(version)) => execute(scheduler, model, version),
            Some(Task::Validate(version)) => {
                let valid = model.validate(version.tx);
                let aborted = !valid && scheduler.try_validation_abort(version);
                if aborted {
                    model.slots.lock().expect("no poison")[version.tx] = Slot::Estimate;
                }
                scheduler.finish_validation(version.tx, aborted)
            }
            None => {
                if scheduler.done() {
                    return;
                }
                let next = scheduler.next_task();
                if next.is_none() {
                    shuttle::thread::yield_now();
                }
                next
            }
        };
    }
}

fn execute(scheduler: &Scheduler, model: &Model, version: Version) -> Option<Task> {
    if scheduler.wait_for_predecessor(version) {
        return None;
    }
    loop {
        match model.execute(version.tx) {
            Outcome::Blocked(dep) => {
                if scheduler.add_dependency(version.tx, dep) {
                    return None;
                }
            }
            Outcome::Done(first) => return scheduler.finish_execution(version, first),
        }
    }
}

fn run_model(deps: Vec<Option<TxIdx>>, predecessors: Vec<Option<TxIdx>>, threads: usize) {
    run_model_with_head_start(deps, predecessors, vec![], threads);
}

fn run_model_with_head_start(
    deps: Vec<Option<TxIdx>>,
    predecessors: Vec<Option<TxIdx>>,
    head_start: Vec<TxIdx>,
    threads: usize,
) {
    let n = deps.len();
    let model = Arc::new(Model {
        deps,
        slots: Mutex::new(vec![Slot::Empty; n]),
        reads: Mutex::new(vec![None; n]),
    });
    let scheduler = Arc::new(Scheduler::new(n, predecessors).with_head_start(head_start));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (s, m) = (Arc::clone(&scheduler), Arc::clone(&model));
            shuttle::thread::spawn(move || worker(&s, &m))
        })
        .collect();
    for h in handles {
        h.join().expect("worker finished");
    }
    assert!(scheduler.done());
    let slots = model.slots.lock().expect("no poison").clone();
    assert_eq!(slots, model.expected());
}

#[test]
fn chain_of_dependencies_random_schedules() {
    shuttle::check_random(
        || run_model(vec![None, Some(0), Some(1), Some(2)], vec![], 3),
        300,
    );
}

#[test]
fn mixed_dependencies_pct_schedules() {
    shuttle::check_pct(
        || run_model(vec![None, None, Some(0), Some(1), Some(2)], vec![], 2),
        300,
        3,
    );
}

#[test]
fn predecessor_hints_random_schedules() {
    // Transaction 2 is hinted to follow 0 (same sender) and reads 1.
    shuttle::check_random(
        || run_model(vec![None, Some(0), Some(1)], vec![None, None, Some(0)], 3),
        300,
    );
}

#[test]
fn independent_transactions_pct_schedules() {
    shuttle::check_pct(|| run_model(vec![None; 4], vec![], 3), 200, 2);
}

#[test]
fn head_start_random_schedules() {
    // The last transaction ends a chain and runs first: it must be
    // re-executed once the chain is in place. Transaction 2 starts early
    // too, and it depends on 0 through its hint.
    shuttle::check_random(
        || {
            run_model_with_head_start(
                vec![None, Some(0), Some(1), Some(2)],
                vec![None, None, Some(0), None],
                vec![3, 2, 9],
                3,
            )
        },
        300,
    );
}

#[test]
fn head_start_pct_schedules() {
    shuttle::check_pct(
        || {
            run_model_with_head_start(
                vec![None, None, Some(0), Some(1), None],
                vec![],
                vec![4, 3],
                2,
            )
        },
        300,
        3,
    );
}
