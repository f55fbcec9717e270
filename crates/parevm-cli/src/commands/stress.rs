//! `parevm stress`: random blocks, parallel vs sequential, until time runs out.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use parevm::{execute_block, Config, Mode};
use parevm_testkit::gen::{random_block, GenParams, Rng};

use crate::util::parse_threads;

/// Arguments of `parevm stress`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Thread counts to check each block at (comma-separated).
    #[arg(long, default_value = "1,2,4,8,16")]
    threads: String,
    /// First seed; each block uses the next seed of a sequence derived from it.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Maximum transactions per block (each block draws 1..=max).
    #[arg(long, default_value_t = 500)]
    max_txs: usize,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threads = parse_threads(&args.threads).map_err(anyhow::Error::msg)?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut seeds = Rng::new(args.seed);
    let (mut blocks, mut txs, mut divergences, mut errors_agreed) = (0u64, 0u64, 0u64, 0u64);
    let mut last_report = Instant::now();
    while Instant::now() < deadline {
        let seed = seeds.next_u64();
        let mut shape = Rng::new(seed ^ 0x5eed);
        let params = GenParams {
            txs: 1 + shape.below(args.max_txs.max(1) as u64) as usize,
            accounts: 2 + shape.below(19) as usize,
            invalid_percent: 5,
            payout_percent: 25,
        };
        let (storage, input) = random_block(seed, &params);
        let sequential = execute_block(&storage, &input, &Config::sequential());
        // Blocks rotate through the parallel modes: Block-STM to the end,
        // optimistic chunks with and without delta tracking, and `auto`
        // (which may leave either half-way and finish sequentially).
        let mode = match seed % 4 {
            0 => Mode::BlockStm,
            1 => Mode::Chunked,
            2 => Mode::ChunkedDeltas,
            _ => Mode::Auto,
        };
        for &t in &threads {
            let config = Config {
                mode,
                ..Config::block_stm(t)
            };
            let parallel = execute_block(&storage, &input, &config);
            let divergence = match (&sequential, &parallel) {
                (Ok(s), Ok(p)) => s.first_difference(p),
                (Err(s), Err(p)) if s == p => None,
                (s, p) => Some(format!(
                    "sequential {:?} vs parallel {:?}",
                    s.as_ref().err(),
                    p.as_ref().err()
                )),
            };
            if let Some(diff) = divergence {
                divergences += 1;
                println!(
                    "DIVERGENCE seed={seed} txs={} accounts={} threads={t} mode={mode:?}: {diff}",
                    params.txs, params.accounts
                );
            }
        }
        if sequential.is_err() {
            errors_agreed += 1;
        }
        blocks += 1;
        txs += params.txs as u64;
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("... {blocks} blocks, {txs} txs, {divergences} divergences");
            last_report = Instant::now();
        }
    }
    println!(
        "checked {blocks} blocks ({txs} txs, {errors_agreed} ending in an invalid tx) at threads {:?}: {divergences} divergences",
        threads
    );
    Ok(if divergences == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
