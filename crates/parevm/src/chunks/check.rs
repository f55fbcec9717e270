//! The check: each chunk's logged pre-block reads against what the chunks
//! before it changed. The first stale read ends the chunk's exact part;
//! tracked slots and predicted accounts are left to the shifts.

use super::db::BaseRead;
use super::execute::ChunkRun;
use crate::pool::fan_out;
use crate::storage::Storage;

/// Below this many logged pre-block reads in all, the chunks are checked
/// on one thread.
const PARALLEL_CHECK_MIN_READS: usize = 4_096;

/// What the check found, chunk by chunk.
pub(super) struct Conflicts {
    /// Each chunk's first transaction with a stale read, if any.
    pub(super) first: Vec<Option<usize>>,
    /// Each chunk's tracked slots that an earlier chunk holds.
    pub(super) shared: Vec<Vec<usize>>,
    /// Threads the check ran on (the shifts use as many).
    pub(super) parts: usize,
}

/// The first conflicting read of each chunk against the chunks before it,
/// checked on all threads at once (chunks dealt out round-robin), and the
/// tracked slots of each chunk that an earlier chunk holds (only those can
/// have moved). Returns them with the number of threads the check used.
pub(super) fn find_conflicts<S: Storage + Sync>(
    runs: &[ChunkRun<'_, S>],
    threads: usize,
) -> Result<Conflicts, String> {
    // A small block's check takes a few microseconds, less than waking a
    // thread for it.
    let logged: usize = runs.iter().map(|run| run.db.reads.len()).sum();
    let parts = if logged < PARALLEL_CHECK_MIN_READS {
        1
    } else {
        threads.clamp(1, runs.len().max(1))
    };
    let checked = fan_out(parts, |part| {
        (part..runs.len())
            .step_by(parts)
            .map(|c| {
                let conflict = runs[c]
                    .db
                    .reads
                    .iter()
                    .find(|(read, _)| match read {
                        // Resolved below, in block order.
                        // (Tracked slots only: a read that failed before
                        // it became a variable is checked as usual.)
                        BaseRead::Slot(address, slot)
                            if runs[c].db.deltas.tracks(*address, *slot) =>
                        {
                            false
                        }
                        // Resolved below, in block order (`account_shifts`).
                        BaseRead::Predicted(_) => false,
                        _ => runs[..c].iter().any(|earlier| earlier.db.changed(read)),
                    })
                    .map(|(_, tx)| *tx);
                // Tracked slots an earlier chunk holds: only those can
                // have moved.
                let earlier = &runs[..c];
                let shared: Vec<usize> = runs[c]
                    .db
                    .deltas
                    .vars()
                    .iter()
                    .enumerate()
                    .filter(|(_, var)| {
                        earlier.iter().any(|e| {
                            e.db.overlay.wiped.contains(&var.address)
                                || e.db.overlay.slots.contains_key(&(var.address, var.slot))
                        })
                    })
                    .map(|(i, _)| i)
                    .collect();
                (c, conflict, shared)
            })
            .collect::<Vec<_>>()
    })?;
    let mut conflicts = vec![None; runs.len()];
    let mut shared = vec![Vec::new(); runs.len()];
    for (c, conflict, vars) in checked.into_iter().flatten() {
        conflicts[c] = conflict;
        shared[c] = vars;
    }
    Ok(Conflicts {
        first: conflicts,
        shared,
        parts,
    })
}
