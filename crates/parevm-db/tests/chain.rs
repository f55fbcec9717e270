//! The pipelined chain import (`parevm_db::chain`) against the plain one
//! block at a time: the same head and state root; blocks already held are
//! skipped; a block whose state root differs stops the import at the block
//! before it.

use alloy_consensus::{Block, TxEnvelope};
use alloy_genesis::Genesis;
use alloy_rlp::Decodable as _;
use parevm::block::genesis::{genesis_alloc, genesis_header};
use parevm::{ChainSpec, Config};
use parevm_db::chain::import_chain;
use parevm_db::import::{init_genesis, ImportError};
use parevm_db::StateDb;
use parevm_testkit::chain::{build_chain, BuiltChain};

/// A database holding `built`'s genesis; returns it with the genesis hash.
fn with_genesis(built: &BuiltChain) -> (StateDb, ChainSpec, alloy_primitives::B256) {
    let genesis: Genesis = serde_json::from_str(&built.genesis_json).expect("genesis");
    let chain = ChainSpec::from_genesis_json(&built.genesis_json).expect("chain");
    let db = StateDb::in_memory().expect("db");
    let alloc = genesis_alloc(&genesis);
    let root = db.root_with(&alloc).expect("root");
    let header = genesis_header(&genesis, &chain, root);
    let hash = header.hash_slow();
    init_genesis(&db, &alloc, hash, &alloy_rlp::encode(&header), Some(root)).expect("genesis");
    (db, chain, hash)
}

fn blocks(built: &BuiltChain) -> Vec<Block<TxEnvelope>> {
    let mut rest = built.rlp.as_slice();
    let mut out = Vec::new();
    while !rest.is_empty() {
        out.push(Block::decode(&mut rest).expect("a block"));
    }
    out
}

#[test]
fn the_pipeline_ends_where_the_chain_does_and_resumes() {
    let built = build_chain(24, 30, 5).expect("a chain");
    let all = blocks(&built);
    for threads in [1, 2, 4] {
        let (db, chain, genesis) = with_genesis(&built);
        let config = Config::block_stm(threads);
        let (stats, stop) =
            import_chain(&db, &chain, &config, genesis, all[..10].to_vec(), &|_| {});
        assert!(stop.is_none(), "{stop:?}");
        assert_eq!(stats.imported, 10);
        // Again with the whole chain: the first ten are held and skipped.
        let (stats, stop) = import_chain(&db, &chain, &config, genesis, all.clone(), &|_| {});
        assert!(stop.is_none(), "{stop:?}");
        assert_eq!((stats.skipped, stats.imported), (10, 14));
        let head = db.head().expect("head").expect("a head");
        assert_eq!(head.number, built.head_number);
        assert_eq!(head.hash, built.head_hash);
        assert_eq!(head.state_root, built.state_root, "at {threads} threads");
    }
}

#[test]
fn a_wrong_state_root_stops_at_the_block_before() {
    let built = build_chain(12, 20, 9).expect("a chain");
    let mut all = blocks(&built);
    // Block 7 claims another root; block 8 then names a parent that is not
    // the (tampered) block 7, but the import must stop at 7 first.
    all[6].header.state_root = alloy_primitives::B256::repeat_byte(7);
    let (db, chain, genesis) = with_genesis(&built);
    let (stats, stop) = import_chain(&db, &chain, &Config::block_stm(2), genesis, all, &|_| {});
    let stop = stop.expect("a stop");
    assert_eq!(stop.number, 7);
    assert!(
        matches!(stop.error, ImportError::Root(_)),
        "{:?}",
        stop.error
    );
    let (block, diff) = *stop.executed.expect("the executed block comes back");
    assert_eq!(block.header.number, 7);
    assert!(!diff.is_empty());
    assert_eq!(stats.imported, 6);
    assert_eq!(db.head().expect("head").expect("a head").number, 6);
}

#[test]
fn a_chain_that_does_not_start_at_the_head_is_refused() {
    let built = build_chain(6, 5, 2).expect("a chain");
    let all = blocks(&built);
    let (db, chain, genesis) = with_genesis(&built);
    let (stats, stop) = import_chain(
        &db,
        &chain,
        &Config::block_stm(2),
        genesis,
        all[2..].to_vec(),
        &|_| {},
    );
    let stop = stop.expect("a stop");
    assert_eq!(stop.number, 3, "{:?}", stop.error);
    assert_eq!(stats.imported, 0);
    assert_eq!(db.head().expect("head").expect("a head").number, 0);
}
