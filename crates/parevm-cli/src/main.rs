//! `parevm`: run, check and measure the parallel EVM executor.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod plot;
mod report;
mod util;

/// mimalloc: the engine allocates small objects on many threads at once
/// (read sets, write sets, per-transaction state); glibc's allocator was a
/// fifth of the parallel path's time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Benchmark parallel against sequential execution on synthetic workloads.
    Bench(commands::bench::Args),
    /// Execute random conflict-heavy blocks in parallel and sequentially until
    /// time runs out; report any divergence with the seed that reproduces it.
    Stress(commands::stress::Args),
    /// Execute mainnet fixture blocks (block.json + prestate.json) and check
    /// them against their headers, sequential and parallel.
    Run(commands::run::Args),
    /// Run Ethereum execution-spec state tests through the parallel path.
    Statetest(commands::statetest::Args),
    /// Import blockchain tests block by block through the parallel path.
    Blocktest(commands::blocktest::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => commands::bench::run(args),
        Command::Stress(args) => commands::stress::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Statetest(args) => commands::statetest::run(args),
        Command::Blocktest(args) => commands::blocktest::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
