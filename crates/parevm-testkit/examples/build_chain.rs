//! Writes a chain built on parevm (`parevm_testkit::chain`) for trying
//! `parevm import`: `cargo run --release -p parevm-testkit --example
//! build_chain -- OUT_DIR [BLOCKS] [TXS_PER_BLOCK]` writes
//! `OUT_DIR/genesis.json` and `OUT_DIR/chain.rlp`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: build_chain OUT_DIR [BLOCKS] [TXS_PER_BLOCK]");
        return ExitCode::from(2);
    };
    let number = |arg: Option<String>, default: u64| match arg {
        None => Some(default),
        Some(text) => text.parse().ok(),
    };
    let (Some(blocks), Some(txs)) = (number(args.next(), 1_000), number(args.next(), 100)) else {
        eprintln!("BLOCKS and TXS_PER_BLOCK are numbers");
        return ExitCode::from(2);
    };
    let chain = match parevm_testkit::chain::build_chain(blocks, txs as usize, 1) {
        Ok(chain) => chain,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("genesis.json"), &chain.genesis_json))
        .and_then(|()| std::fs::write(dir.join("chain.rlp"), &chain.rlp));
    if let Err(e) = written {
        eprintln!("error: {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    println!(
        "{} blocks to {}; head {} state root {}",
        chain.head_number,
        dir.display(),
        chain.head_hash,
        chain.state_root
    );
    ExitCode::SUCCESS
}
