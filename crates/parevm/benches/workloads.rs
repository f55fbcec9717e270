//! Criterion benchmarks of the DeFi workloads: the sequential loop against
//! Block-STM and optimistic chunks on the same block, for finer profiling
//! than `parevm bench`.
//!
//! `cargo bench -p parevm --bench workloads` (add a filter such as `amm` to
//! run one group). Blocks are small so a full run stays short.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parevm::{execute_block, Config, Mode};
use parevm_testkit::workload::{Preset, Size, WorkloadKind, WorkloadSpec};

/// The cases of the `parevm bench` suite, at a tenth of its block sizes.
fn cases() -> Vec<(WorkloadKind, Preset, usize)> {
    vec![
        (WorkloadKind::Raw, Preset::Independent, 2_000),
        (WorkloadKind::Erc20, Preset::Independent, 1_000),
        (WorkloadKind::Amm, Preset::Independent, 400),
        (WorkloadKind::Lending, Preset::Independent, 600),
        (WorkloadKind::Mixed, Preset::Independent, 800),
        (WorkloadKind::Erc20, Preset::HotRecipient, 1_000),
        (WorkloadKind::Amm, Preset::HotPool, 400),
        (WorkloadKind::Erc20, Preset::Chained, 1_000),
    ]
}

fn workloads(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    for (kind, preset, txs) in cases() {
        let workload = WorkloadSpec::preset(kind, preset, Size::Txs(txs))
            .build()
            .expect("the benchmark workloads are valid");
        let mut group = c.benchmark_group(format!("{kind}/{preset}"));
        group.throughput(Throughput::Elements(txs as u64));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(2));
        let configs = [
            ("sequential".to_owned(), Config::sequential()),
            (format!("parallel-{threads}"), Config::block_stm(threads)),
            (
                format!("chunked-{threads}"),
                Config {
                    mode: Mode::Chunked,
                    ..Config::block_stm(threads)
                },
            ),
        ];
        for (name, config) in configs {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_with_large_drop(|| {
                    execute_block(
                        black_box(&workload.storage),
                        black_box(&workload.input),
                        &config,
                    )
                    .expect("the benchmark workloads execute")
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, workloads);
criterion_main!(benches);
