//! Helpers shared by the subcommands: thread lists, timing, medians.

use std::time::Instant;

/// Parses a thread list such as `1,2,4` (or `max` for available parallelism).
pub(crate) fn parse_threads(list: &str) -> Result<Vec<usize>, String> {
    list.split(',')
        .map(|item| match item.trim() {
            "max" => Ok(default_threads()),
            s => match s.parse::<usize>() {
                Ok(0) | Err(_) => Err(format!(
                    "invalid thread count {s:?} (expected positive integers or `max`)"
                )),
                Ok(n) => Ok(n),
            },
        })
        .collect()
}

/// The machine's available parallelism.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f` and returns its result and the elapsed milliseconds.
pub(crate) fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64() * 1e3)
}

/// Median of a non-empty sample (0 for an empty one).
pub(crate) fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// How much more work `threads` threads get through than one thread, on a
/// kernel that shares nothing (a chain of Keccak hashes per thread): how
/// much of its cores the host gives this VM at this moment. On a quiet
/// machine with `threads` real cores it is close to `threads`; shared
/// cores, SMT siblings and noisy neighbours pull it down. It is not a
/// strict ceiling for EVM work: hashing keeps a core's arithmetic units
/// busy, which a sibling or neighbour contends for most, while EVM
/// execution waits on memory much of the time (in one session's run it
/// read 1.31-1.36x while EVM blocks reached 1.53-1.66x). The median of
/// three interleaved measurements.
pub(crate) fn host_ceiling(threads: usize) -> f64 {
    const ROUNDS: usize = 100_000;
    if threads <= 1 {
        return 1.0;
    }
    let kernel = || {
        let mut hash = alloy_primitives::B256::ZERO;
        for _ in 0..ROUNDS {
            hash = alloy_primitives::keccak256(hash);
        }
        std::hint::black_box(hash);
    };
    let ratios: Vec<f64> = (0..3)
        .map(|_| {
            let ((), one) = timed(kernel);
            let ((), many) = timed(|| {
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(kernel);
                    }
                });
            });
            threads as f64 * one / many.max(f64::MIN_POSITIVE)
        })
        .collect();
    median(&ratios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ceiling_is_one_for_one_thread_and_positive_for_more() {
        assert_eq!(host_ceiling(1), 1.0);
        let two = host_ceiling(2);
        assert!(two.is_finite() && two > 0.0, "ceiling {two}");
    }

    #[test]
    fn thread_lists() {
        assert_eq!(parse_threads("1,2, 4").expect("valid"), vec![1, 2, 4]);
        assert!(parse_threads("0").is_err());
        assert!(parse_threads("x").is_err());
        assert_eq!(
            parse_threads("max").expect("valid"),
            vec![default_threads()]
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}

/// The chain named by `--chain`: `mainnet`, or a geth-style genesis file
/// (`.json`) whose `config` gives the fork schedule, chain id and blob
/// schedule.
///
/// # Errors
/// A message naming the file when it cannot be read or is not a genesis
/// file parevm can execute.
pub(crate) fn load_chain(name: &str) -> anyhow::Result<parevm::ChainSpec> {
    let file = parevm_rpc::ChainFile::load(name).map_err(|e| anyhow::anyhow!("--chain {e}"))?;
    Ok(file.spec()?)
}

/// Parses `N` or `N..M` (both ends included) into a block range.
pub(crate) fn parse_block_range(text: &str) -> Result<std::ops::RangeInclusive<u64>, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("{s:?} is not a block number"))
    };
    let (first, last) = match text.split_once("..") {
        Some((a, b)) => (number(a)?, number(b.strip_prefix('=').unwrap_or(b))?),
        None => {
            let n = number(text)?;
            (n, n)
        }
    };
    if first > last {
        return Err(format!("the range {first}..{last} is empty"));
    }
    Ok(first..=last)
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[test]
    fn block_ranges_parse() {
        assert_eq!(parse_block_range("7"), Ok(7..=7));
        assert_eq!(parse_block_range("3..5"), Ok(3..=5));
        assert_eq!(parse_block_range("3..=5"), Ok(3..=5));
        assert!(parse_block_range("5..3").is_err());
        assert!(parse_block_range("x").is_err());
        assert!(parse_block_range("1..").is_err());
    }

    #[test]
    fn chain_names_mainnet_or_a_genesis_file() {
        assert_eq!(load_chain("mainnet").expect("built in").chain_id, 1);
        let missing = load_chain("/nonexistent/genesis.json").expect_err("no such file");
        assert!(
            format!("{missing:#}").contains("/nonexistent/genesis.json"),
            "{missing:#}"
        );
        let dir = std::env::temp_dir().join(format!("parevm-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("genesis.json");
        std::fs::write(
            &path,
            r#"{"config": {"chainId": 31337, "londonBlock": 0, "shanghaiTime": 0}, "alloc": {}}"#,
        )
        .expect("write");
        let chain = load_chain(path.to_str().expect("utf-8")).expect("a genesis file");
        assert_eq!(chain.chain_id, 31337);
        std::fs::write(&path, r#"{"config": {"chainId": "x"}}"#).expect("write");
        let bad = load_chain(path.to_str().expect("utf-8")).expect_err("not a genesis");
        assert!(format!("{bad:#}").contains("genesis.json"), "{bad:#}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
