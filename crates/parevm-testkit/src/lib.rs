//! # parevm-testkit — what parevm's tests, benchmarks and CLI are fed with
//!
//! Not part of the engine: an embedding node needs none of this. The
//! engine crate (`parevm`) executes blocks; this crate makes and reads them:
//!
//! - [`gen`]: random conflict-heavy blocks, deterministic from a seed (the
//!   differential tests and `parevm stress`);
//! - [`workload`]: benchmark workloads over the repository's contracts
//!   (ERC-20, AMM, lending; independent, hot or chained);
//! - [`fixtures`]: readers of third-party test data: mainnet blocks with
//!   their pre-state, execution-spec state tests and blockchain tests, and
//!   geth's `prestateTracer` JSON.

pub mod anvil;
pub mod chain;
pub mod fixtures;
pub mod gen;
pub mod traffic;
pub mod workload;

/// The engine this kit feeds, for the engine's own unit tests (which see
/// the kit's blocks as the engine's types through it).
#[doc(hidden)]
pub use parevm;
