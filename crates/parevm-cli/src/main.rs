//! `parevm`: run, check and measure the parallel EVM executor.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod report;
mod util;

/// mimalloc: the engine allocates small objects on many threads at once
/// (read sets, write sets, per-transaction state); glibc's allocator was a
/// fifth of the parallel path's time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (its index in mimalloc 3's option table;
/// a test checks it still names that option).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps memory freed after one block for the next instead of returning it
/// to the OS a second later. Every block allocates its multi-version memory
/// and results afresh; given back, each page faults in (and is zeroed)
/// again: 22,000 page faults and a tenth of the CPU time of a short bench
/// run, mostly on the parallel path, which allocates more. A node that
/// executes block after block wants the same.
fn keep_freed_memory() {
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table;
    // it takes no pointers and may be called at any time from any thread.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// parevm — a parallel EVM block executor (Block-STM on revm).
///
/// Every command compares the parallel path with the sequential path in the
/// same process; results must be identical bit for bit.
#[derive(Parser, Debug)]
#[command(name = "parevm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Benchmark parallel against sequential execution on synthetic workloads
    /// and mainnet fixture blocks.
    Bench(commands::bench::Args),
    /// Execute random conflict-heavy blocks in parallel (rotating Block-STM,
    /// optimistic chunks and `auto`) and sequentially until time runs out;
    /// report any divergence with the seed that reproduces it.
    Stress(commands::stress::Args),
    /// Execute blocks (block folders, or a node's blocks over its state with
    /// --rpc) sequentially and in parallel, and check them against their
    /// headers and each other.
    Run(commands::run::Args),
    /// Fetch blocks of a node with their exact pre-state (debug API,
    /// prestateTracer) into block folders that `run` reads; resumable.
    Fetch(commands::fetch::Args),
    /// Export blocks of a node as an RLP file (geth export's format) for
    /// `import`, encoded from the node's JSON and checked against its hashes.
    Export(commands::export::Args),
    /// Run Ethereum execution-spec state tests through the parallel path.
    Statetest(commands::statetest::Args),
    /// Import blockchain tests block by block through the parallel path.
    Blocktest(commands::blocktest::Args),
    /// Import a chain into a state database: a genesis file, then RLP
    /// blocks, each executed in parallel, checked against its header (state
    /// root included) and committed.
    Import(commands::import::Args),
    /// Read a state database back: its head, an account, a slot.
    State(commands::state::Args),
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => commands::bench::run(args),
        Command::Stress(args) => commands::stress::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Fetch(args) => commands::fetch::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Statetest(args) => commands::statetest::run(args),
        Command::Blocktest(args) => commands::blocktest::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::State(args) => commands::state::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_we_set() {
        // SAFETY: `mi_option_get` reads an integer from mimalloc's table.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        // mimalloc 3's default purge delay is one second; another option at
        // this index would have another default.
        assert_eq!(
            get(),
            1000,
            "index {MI_OPTION_PURGE_DELAY} is not purge_delay"
        );
        keep_freed_memory();
        assert_eq!(get(), -1);
    }
}
