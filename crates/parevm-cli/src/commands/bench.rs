//! `parevm bench`: sequential vs parallel on synthetic workloads, in one
//! process, alternating runs, medians.

use std::process::ExitCode;

use alloy_primitives::{Address, U256};
use parevm::revm::context::{BlockEnv, TxEnv};
use parevm::revm::primitives::hardfork::SpecId;
use parevm::revm::primitives::TxKind;
use parevm::{execute_block, BlockInput, Config, InMemoryStorage};
use serde_json::json;

use crate::util::{median, parse_threads, timed};

/// Arguments of `parevm bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Workload to run: `raw` (independent ETH transfers).
    #[arg(long, default_value = "raw")]
    workload: String,
    /// Transactions per block.
    #[arg(long, default_value_t = 10_000)]
    txs: usize,
    /// Thread counts for the parallel path (comma-separated, or `max`).
    #[arg(long, default_value = "max")]
    threads: String,
    /// Timed repetitions of each path (at least 5).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Print one JSON object per (workload, threads) instead of a table.
    #[arg(long)]
    json: bool,
}

/// `n` independent transfers: distinct senders, distinct fresh recipients.
pub(crate) fn raw_transfers(n: usize) -> (InMemoryStorage, BlockInput) {
    let mut storage = InMemoryStorage::new();
    let txs = (0..n)
        .map(|i| {
            let sender = Address::left_padding_from(&(0x1_0000_0000u64 + i as u64).to_be_bytes());
            let recipient =
                Address::left_padding_from(&(0x2_0000_0000u64 + i as u64).to_be_bytes());
            storage.insert_account(sender, U256::from(10).pow(U256::from(20)), 0);
            TxEnv {
                tx_type: 2,
                caller: sender,
                gas_limit: 21_000,
                gas_price: 20,
                gas_priority_fee: Some(2),
                kind: TxKind::Call(recipient),
                value: U256::from(1_000 + i),
                nonce: 0,
                chain_id: Some(1),
                ..Default::default()
            }
        })
        .collect();
    let block = BlockEnv {
        number: U256::from(20_000_000),
        beneficiary: Address::with_last_byte(0xcb),
        timestamp: U256::from(1_720_000_000u64),
        gas_limit: u64::MAX / 2,
        basefee: 10,
        prevrandao: Some(Default::default()),
        ..Default::default()
    };
    (
        storage,
        BlockInput {
            spec: SpecId::CANCUN,
            chain_id: 1,
            block,
            txs,
        },
    )
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threads = parse_threads(&args.threads).map_err(anyhow::Error::msg)?;
    let reps = args.reps.max(5);
    let (storage, input) = match args.workload.as_str() {
        "raw" => raw_transfers(args.txs),
        other => anyhow::bail!("unknown workload {other:?} (available: raw)"),
    };
    if !args.json {
        println!(
            "{:<10} {:>7} {:>12} {:>7} {:>12} {:>12} {:>8} {:>9}",
            "workload", "txs", "gas", "threads", "seq ms", "par ms", "speedup", "identical"
        );
    }
    let mut all_identical = true;
    for &t in &threads {
        let seq_cfg = Config::sequential();
        let par_cfg = Config::parallel(t);
        // Warm-up, and the identity check on the warm-up results.
        let seq = execute_block(&storage, &input, &seq_cfg)?;
        let par = execute_block(&storage, &input, &par_cfg)?;
        let identical = seq.first_difference(&par).is_none();
        all_identical &= identical;
        let (mut seq_ms, mut par_ms) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let (r, ms) = timed(|| execute_block(&storage, &input, &seq_cfg));
            r?;
            seq_ms.push(ms);
            let (r, ms) = timed(|| execute_block(&storage, &input, &par_cfg));
            r?;
            par_ms.push(ms);
        }
        let (s, p) = (median(&seq_ms), median(&par_ms));
        let speedup = if p > 0.0 { s / p } else { 0.0 };
        if args.json {
            println!(
                "{}",
                json!({
                    "workload": args.workload, "txs": input.txs.len(), "gas": seq.gas_used(),
                    "threads": t, "sequential_ms": s, "parallel_ms": p, "speedup": speedup,
                    "reexecutions": par.stats.reexecutions, "identical": identical,
                })
            );
        } else {
            println!(
                "{:<10} {:>7} {:>12} {:>7} {:>12.2} {:>12.2} {:>7.2}x {:>9}",
                args.workload,
                input.txs.len(),
                seq.gas_used(),
                t,
                s,
                p,
                speedup,
                identical
            );
        }
    }
    Ok(if all_identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
