//! The worker pool every path runs on: persistent rayon pools, one per
//! helper count, so that workers keep warm allocator heaps and stacks
//! across blocks. The calling thread is always one of the workers
//! ([`fan_out`] and [`join2`] wake only the helpers they need), and a panic
//! in a job becomes an error instead of unwinding through the caller.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

/// A persistent pool per helper count (a block on `n` threads uses `n - 1`
/// pool threads and the calling thread). Workers that live across blocks
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

/// Frees `value` on a long-lived background thread: freeing every version
/// of every location of a block is pure overhead on its critical path. A
/// thread spawned per block for it cost a thread start (tens of
/// microseconds, a sizeable part of a small block) and a cold allocator
/// heap each time. Drops inline if the thread cannot be started.
pub(crate) fn drop_later<T: Send + 'static>(value: T) {
    type Garbage = Box<dyn Send>;
    static DROPPER: OnceLock<Option<Mutex<std::sync::mpsc::Sender<Garbage>>>> = OnceLock::new();
    let sender = DROPPER.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<Garbage>();
        std::thread::Builder::new()
            .name("parevm-dropper".into())
            .spawn(move || receiver.into_iter().for_each(drop))
            .ok()
            .map(|_| Mutex::new(sender))
    });
    let value: Garbage = Box::new(value);
    let rejected = match sender {
        Some(sender) => sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(value)
            .err()
            .map(|e| e.0),
        None => Some(value),
    };
    drop(rejected);
}

/// Runs `first` on the calling thread and `second` on a pool thread at
/// once, and returns both results (two different jobs, where [`fan_out`]
/// runs one job on several parts).
///
/// # Errors
/// A message if either panicked (a bug).
pub(crate) fn join2<A: Send, B: Send>(
    first: impl FnOnce() -> A + Send,
    second: impl FnOnce() -> B + Send,
) -> Result<(A, B), String> {
    let mut b = None;
    let mut a = None;
    worker_pool(1)?.in_place_scope(|scope| {
        let b = &mut b;
        scope.spawn(move |_| *b = Some(catch_unwind(AssertUnwindSafe(second))));
        a = Some(catch_unwind(AssertUnwindSafe(first)));
    });
    match (a, b) {
        (Some(Ok(a)), Some(Ok(b))) => Ok((a, b)),
        (Some(Err(_)), _) => Err("the first job panicked".into()),
        (_, Some(Err(_))) => Err("the second job panicked".into()),
        _ => Err("a job did not run".into()),
    }
}

/// Runs `job(0)`, ..., `job(parts - 1)` at once: part 0 on the calling
/// thread, the others on the worker pool, and returns their results in
/// order. Runs the Block-STM workers and the post-processing of a block.
///
/// # Errors
/// A message if a part panicked (a bug).
pub(crate) fn fan_out<R: Send>(
    parts: usize,
    job: impl Fn(usize) -> R + Sync,
) -> Result<Vec<R>, String> {
    let slots: Vec<Mutex<Option<std::thread::Result<R>>>> =
        (0..parts).map(|_| Mutex::new(None)).collect();
    let run = |part: usize| {
        let result = catch_unwind(AssertUnwindSafe(|| job(part)));
        *slots[part].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
    };
    if parts <= 1 {
        (0..parts).for_each(run);
    } else {
        worker_pool(parts - 1)?.in_place_scope(|scope| {
            for part in 1..parts {
                scope.spawn(move |_| run(part));
            }
            run(0);
        });
    }
    slots
        .into_iter()
        .enumerate()
        .map(
            |(part, slot)| match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
                Some(Ok(result)) => Ok(result),
                Some(Err(_)) => Err(format!("part {part} panicked")),
                None => Err(format!("part {part} did not run")),
            },
        )
        .collect()
}
