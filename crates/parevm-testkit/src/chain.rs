//! Chains of valid blocks built on parevm itself, for import and crash
//! tests: a genesis file (Cancun from genesis) with funded keys and a small
//! storage contract, then blocks of signed transfers and contract calls,
//! each executed to fill in its header (gas used, receipts root, bloom,
//! state root) and sealed.

use alloy_consensus::constants::EMPTY_OMMER_ROOT_HASH;
use alloy_consensus::{Block, BlockBody, Header, SignableTransaction as _, TxEip1559, TxEnvelope};
use alloy_eips::eip1559::BaseFeeParams;
use alloy_genesis::Genesis;
use alloy_primitives::{keccak256, Address, Bytes, Signature, TxKind, B256, U256};
use k256::ecdsa::SigningKey;
use parevm::block::genesis::{genesis_alloc, genesis_header};
use parevm::block::{from_consensus, process_block};
use parevm::{ChainSpec, Config};
use parevm_db::StateDb;

use crate::gen::Rng;

/// Stores its second calldata word at the slot its first word names.
const STORE_CODE: &str = "0x6020356000355500";

/// The contract every built chain calls.
pub const STORE: Address = Address::new([0x5a; 20]);

/// A built chain: its genesis file, its blocks as `geth export` writes them
/// (RLP blocks one after another), and its last block.
pub struct BuiltChain {
    /// The genesis file (geth's format).
    pub genesis_json: String,
    /// The blocks, RLP-encoded one after another.
    pub rlp: Vec<u8>,
    /// The last block's number.
    pub head_number: u64,
    /// The last block's hash.
    pub head_hash: B256,
    /// The state root after the last block.
    pub state_root: B256,
}

fn keys(seed: u64, count: usize) -> Vec<SigningKey> {
    (0..count as u64)
        .filter_map(|i| {
            let secret = keccak256([seed.to_be_bytes(), i.to_be_bytes()].concat());
            SigningKey::from_slice(secret.as_slice()).ok()
        })
        .collect()
}

fn genesis_json(addresses: &[Address]) -> String {
    let mut alloc = serde_json::Map::new();
    for address in addresses {
        alloc.insert(
            format!("{address:#x}"),
            serde_json::json!({ "balance": "0xd3c21bcecceda1000000" }),
        );
    }
    alloc.insert(
        format!("{STORE:#x}"),
        serde_json::json!({ "balance": "0x0", "code": STORE_CODE }),
    );
    serde_json::json!({
        "config": {
            "chainId": 1337, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0,
            "eip158Block": 0, "byzantiumBlock": 0, "constantinopleBlock": 0,
            "petersburgBlock": 0, "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0,
            "terminalTotalDifficulty": 0, "shanghaiTime": 0, "cancunTime": 0
        },
        "alloc": alloc,
        "gasLimit": "0x1c9c380",
        "difficulty": "0x0",
        "baseFeePerGas": "0x3b9aca00",
        "timestamp": "0x0"
    })
    .to_string()
}

/// Builds a chain of `blocks` blocks of about `txs` transactions each.
///
/// # Errors
/// A message if a block cannot be built (a bug of the builder).
pub fn build_chain(blocks: u64, txs: usize, seed: u64) -> Result<BuiltChain, String> {
    let keys = keys(seed, 16);
    let addresses: Vec<Address> = keys.iter().map(Address::from_private_key).collect();
    let genesis_json = genesis_json(&addresses);
    let genesis: Genesis = serde_json::from_str(&genesis_json).map_err(|e| e.to_string())?;
    let chain = ChainSpec::from_genesis_json(&genesis_json).map_err(|e| e.to_string())?;
    let db = StateDb::in_memory().map_err(|e| e.to_string())?;
    let alloc = genesis_alloc(&genesis);
    let root = db.root_with(&alloc).map_err(|e| e.to_string())?;
    let mut parent = genesis_header(&genesis, &chain, root);
    db.commit_block(
        0,
        parent.hash_slow(),
        &alloy_rlp::encode(&parent),
        &alloc,
        Some(root),
    )
    .map_err(|e| e.to_string())?;
    let mut nonces = vec![0u64; keys.len()];
    let mut rng = Rng::new(seed);
    let mut rlp = Vec::new();
    for number in 1..=blocks {
        let base_fee = parent
            .next_block_base_fee(BaseFeeParams::ethereum())
            .ok_or("no base fee")?;
        let mut body = Vec::with_capacity(txs);
        for _ in 0..txs {
            let from = rng.below(keys.len() as u64) as usize;
            let call = rng.chance(50);
            let tx = TxEip1559 {
                chain_id: chain.chain_id,
                nonce: nonces[from],
                gas_limit: if call { 60_000 } else { 21_000 },
                max_fee_per_gas: u128::from(base_fee) * 2 + 2,
                max_priority_fee_per_gas: 1 + u128::from(rng.below(3)),
                to: TxKind::Call(if call {
                    STORE
                } else {
                    addresses[rng.below(addresses.len() as u64) as usize]
                }),
                value: U256::from(rng.below(1_000_000)),
                access_list: Default::default(),
                input: if call {
                    let mut data = U256::from(rng.below(32)).to_be_bytes::<32>().to_vec();
                    data.extend_from_slice(&U256::from(rng.below(1_000)).to_be_bytes::<32>());
                    Bytes::from(data)
                } else {
                    Bytes::new()
                },
            };
            let (signature, recovery) = keys[from]
                .sign_prehash_recoverable(tx.signature_hash().as_slice())
                .map_err(|e| e.to_string())?;
            nonces[from] += 1;
            body.push(TxEnvelope::Eip1559(
                tx.into_signed(Signature::from((signature, recovery))),
            ));
        }
        let mut header = Header {
            parent_hash: parent.hash_slow(),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: Address::with_last_byte(0xcb),
            transactions_root: alloy_consensus::proofs::calculate_transaction_root(&body),
            withdrawals_root: Some(parevm::trie::EMPTY_ROOT_HASH),
            number,
            gas_limit: parent.gas_limit,
            timestamp: parent.timestamp + 12,
            mix_hash: B256::from(U256::from(number)),
            base_fee_per_gas: Some(base_fee),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            ..Header::default()
        };
        let draft = Block {
            header: header.clone(),
            body: BlockBody {
                transactions: body.clone(),
                ommers: Vec::new(),
                withdrawals: Some(Default::default()),
            },
        };
        let full = from_consensus(&chain, draft, 1).map_err(|e| e.to_string())?;
        let snapshot = db.snapshot().map_err(|e| e.to_string())?;
        let processed =
            process_block(&snapshot, &full, &Config::sequential()).map_err(|e| e.to_string())?;
        drop(snapshot);
        header.gas_used = processed.gas_used;
        header.receipts_root = processed.receipts_root.ok_or("no receipts root")?;
        header.logs_bloom = processed.logs_bloom;
        header.state_root = db.root_with(&processed.state).map_err(|e| e.to_string())?;
        let hash = header.hash_slow();
        db.commit_block(
            number,
            hash,
            &alloy_rlp::encode(&header),
            &processed.state,
            Some(header.state_root),
        )
        .map_err(|e| e.to_string())?;
        let block = Block {
            header: header.clone(),
            body: BlockBody {
                transactions: body,
                ommers: Vec::new(),
                withdrawals: Some(Default::default()),
            },
        };
        alloy_rlp::Encodable::encode(&block, &mut rlp);
        parent = header;
    }
    Ok(BuiltChain {
        genesis_json,
        rlp,
        head_number: parent.number,
        head_hash: parent.hash_slow(),
        state_root: parent.state_root,
    })
}
