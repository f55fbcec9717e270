//! Deterministic synthetic workloads for benchmarks (work in progress).
