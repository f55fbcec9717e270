//! Chain rules: which fork applies to a block, and the chain's id, deposit
//! contract and blob parameters.
//!
//! A [`ChainSpec`] is Ethereum mainnet's ([`ChainSpec::mainnet`], from the
//! activation points `alloy-hardforks` publishes) or a chain described by a
//! geth-style genesis file ([`ChainSpec::from_genesis_json`], parsed with
//! `alloy-genesis`): fork blocks up to London, the merge, fork timestamps
//! from Shanghai on, and the blob schedule with its blob-parameter-only
//! (BPO) forks.
//!
//! Forks that change no EVM rule (the DAO fork, the difficulty-bomb delays
//! Muir Glacier, Arrow Glacier and Gray Glacier, the BPO forks) keep the
//! rules of the fork before them. revm has no Constantinople apart from
//! Petersburg, so a chain whose Constantinople comes before its Petersburg
//! is refused, as is any fork later than revm knows.

use alloy_eips::eip7840::BlobParams;
use alloy_eips::eip7892::BlobScheduleBlobParams;
use alloy_genesis::{ChainConfig, Genesis};
use alloy_hardforks::EthereumHardfork;
use alloy_primitives::{address, Address};
use revm::primitives::hardfork::SpecId;

/// The mainnet deposit contract (EIP-6110 deposit requests come from its logs).
pub const MAINNET_DEPOSIT_CONTRACT: Address = address!("00000000219ab540356cBB839Cbe05303d7705Fa");

/// When a fork activates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// From this block number on.
    Block(u64),
    /// From the first block at or after this timestamp on.
    Time(u64),
}

impl Activation {
    fn reached(self, number: u64, timestamp: u64) -> bool {
        match self {
            Self::Block(block) => number >= block,
            Self::Time(time) => timestamp >= time,
        }
    }
}

/// The forks that change EVM rules, in order, with revm's rules for each.
const RULE_FORKS: [(EthereumHardfork, SpecId); 15] = [
    (EthereumHardfork::Frontier, SpecId::FRONTIER),
    (EthereumHardfork::Homestead, SpecId::HOMESTEAD),
    (EthereumHardfork::Tangerine, SpecId::TANGERINE),
    (EthereumHardfork::SpuriousDragon, SpecId::SPURIOUS_DRAGON),
    (EthereumHardfork::Byzantium, SpecId::BYZANTIUM),
    (EthereumHardfork::Petersburg, SpecId::PETERSBURG),
    (EthereumHardfork::Istanbul, SpecId::ISTANBUL),
    (EthereumHardfork::Berlin, SpecId::BERLIN),
    (EthereumHardfork::London, SpecId::LONDON),
    (EthereumHardfork::Paris, SpecId::MERGE),
    (EthereumHardfork::Shanghai, SpecId::SHANGHAI),
    (EthereumHardfork::Cancun, SpecId::CANCUN),
    (EthereumHardfork::Prague, SpecId::PRAGUE),
    (EthereumHardfork::Osaka, SpecId::OSAKA),
    (EthereumHardfork::Amsterdam, SpecId::AMSTERDAM),
];

/// Why a chain description was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The genesis file is not valid JSON of geth's genesis shape.
    #[error("invalid genesis JSON: {0}")]
    Json(String),
    /// The chain activates a fork parevm cannot execute.
    #[error("config.{field}: {reason}")]
    Unsupported {
        /// The genesis `config` field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A fork activates before the fork it follows.
    #[error("{later} activates before {earlier}")]
    Order {
        /// The earlier fork.
        earlier: &'static str,
        /// The later fork, which activates first.
        later: &'static str,
    },
}

/// The rules of one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSpec {
    /// Chain id (EIP-155).
    pub chain_id: u64,
    /// Where EIP-6110 deposit logs come from.
    pub deposit_contract: Address,
    /// The forks that change EVM rules and are active at some point, in
    /// order, with when they activate.
    forks: Vec<(SpecId, Activation)>,
    /// The blob parameters of Cancun, Prague and Osaka, and the scheduled
    /// changes after Osaka (BPO forks).
    blobs: BlobScheduleBlobParams,
}

impl ChainSpec {
    /// Ethereum mainnet.
    pub fn mainnet() -> Self {
        let forks = RULE_FORKS
            .iter()
            .filter_map(|(fork, spec)| {
                let activation = match fork.mainnet_activation_block() {
                    // Up to the merge by block, from Shanghai on by time.
                    Some(block) if *spec <= SpecId::MERGE => Activation::Block(block),
                    _ => Activation::Time(fork.mainnet_activation_timestamp()?),
                };
                Some((*spec, activation))
            })
            .collect();
        let bpo = [EthereumHardfork::Bpo1, EthereumHardfork::Bpo2];
        let params = [BlobParams::bpo1(), BlobParams::bpo2()];
        let scheduled = bpo
            .iter()
            .zip(params)
            .filter_map(|(fork, params)| Some((fork.mainnet_activation_timestamp()?, params)));
        Self {
            chain_id: 1,
            deposit_contract: MAINNET_DEPOSIT_CONTRACT,
            forks,
            blobs: BlobScheduleBlobParams::mainnet().with_scheduled(scheduled),
        }
    }

    /// The chain a geth-style genesis file describes (its `config`).
    ///
    /// # Errors
    /// [`ChainError`] for JSON that is not a genesis file, a fork parevm
    /// cannot execute, or forks out of order.
    pub fn from_genesis_json(json: &str) -> Result<Self, ChainError> {
        let genesis: Genesis =
            serde_json::from_str(json).map_err(|e| ChainError::Json(e.to_string()))?;
        Self::from_config(&genesis.config)
    }

    /// The chain a genesis `config` describes.
    ///
    /// The merge is at `mergeNetsplitBlock` when given, at genesis when the
    /// terminal total difficulty is zero, and otherwise at the first
    /// timestamp fork (a chain that never ran proof of work past its
    /// genesis, such as a local devnet); without any of these the chain
    /// never merges.
    ///
    /// # Errors
    /// As [`ChainSpec::from_genesis_json`].
    pub fn from_config(config: &ChainConfig) -> Result<Self, ChainError> {
        refuse_unsupported(config)?;
        let block = |b: Option<u64>| b.map(Activation::Block);
        let time = |t: Option<u64>| t.map(Activation::Time);
        let first_time = [
            config.shanghai_time,
            config.cancun_time,
            config.prague_time,
            config.osaka_time,
            config.amsterdam_time,
        ]
        .into_iter()
        .flatten()
        .min();
        let merge = match (
            config.merge_netsplit_block,
            config.terminal_total_difficulty,
        ) {
            (Some(number), _) => Some(Activation::Block(number)),
            (None, Some(ttd)) if ttd.is_zero() => Some(Activation::Block(0)),
            _ => time(first_time),
        };
        let activations = [
            ("frontier", Some(Activation::Block(0))),
            ("homesteadBlock", block(config.homestead_block)),
            ("eip150Block", block(config.eip150_block)),
            ("eip158Block", block(config.eip158_block)),
            ("byzantiumBlock", block(config.byzantium_block)),
            ("petersburgBlock", block(config.petersburg_block)),
            ("istanbulBlock", block(config.istanbul_block)),
            ("berlinBlock", block(config.berlin_block)),
            ("londonBlock", block(config.london_block)),
            ("the merge", merge),
            ("shanghaiTime", time(config.shanghai_time)),
            ("cancunTime", time(config.cancun_time)),
            ("pragueTime", time(config.prague_time)),
            ("osakaTime", time(config.osaka_time)),
            ("amsterdamTime", time(config.amsterdam_time)),
        ];
        check_order(&activations)?;
        let forks = RULE_FORKS
            .iter()
            .zip(activations)
            .filter_map(|((_, spec), (_, activation))| Some((*spec, activation?)))
            .collect();
        Ok(Self {
            chain_id: config.chain_id,
            deposit_contract: config
                .deposit_contract_address
                .unwrap_or(MAINNET_DEPOSIT_CONTRACT),
            forks,
            blobs: config.blob_schedule_blob_params(),
        })
    }

    /// The EVM rules of the block with this number and timestamp.
    pub fn spec_at(&self, number: u64, timestamp: u64) -> SpecId {
        self.forks
            .iter()
            .take_while(|(_, activation)| activation.reached(number, timestamp))
            .last()
            .map_or(SpecId::FRONTIER, |(spec, _)| *spec)
    }

    /// The blob parameters of a block under `spec` at `timestamp` (`None`
    /// before Cancun): the latest scheduled change (a BPO fork) if one is
    /// active, else the fork's own.
    pub fn blob_params_at(&self, spec: SpecId, timestamp: u64) -> Option<BlobParams> {
        if !spec.is_enabled_in(SpecId::CANCUN) {
            return None;
        }
        if spec.is_enabled_in(SpecId::OSAKA) {
            if let Some(params) = self.blobs.active_scheduled_params_at_timestamp(timestamp) {
                return Some(*params);
            }
        }
        Some(if spec.is_enabled_in(SpecId::OSAKA) {
            self.blobs.osaka
        } else if spec.is_enabled_in(SpecId::PRAGUE) {
            self.blobs.prague
        } else {
            self.blobs.cancun
        })
    }
}

/// Refuses the forks revm cannot execute: a Constantinople apart from
/// Petersburg (revm has only Petersburg's rules), and forks after Amsterdam.
fn refuse_unsupported(config: &ChainConfig) -> Result<(), ChainError> {
    if config.constantinople_block.is_some()
        && config.constantinople_block != config.petersburg_block
    {
        return Err(ChainError::Unsupported {
            field: "constantinopleBlock",
            reason:
                "Constantinople must activate with Petersburg: revm has only Petersburg's rules"
                    .into(),
        });
    }
    if config.bogota_time.is_some() {
        return Err(ChainError::Unsupported {
            field: "bogotaTime",
            reason: "a fork after Amsterdam, which this revm does not know".into(),
        });
    }
    Ok(())
}

/// Forks must activate in order: by block up to the merge, and by time
/// from then on (the merge by whichever it has).
fn check_order(activations: &[(&'static str, Option<Activation>)]) -> Result<(), ChainError> {
    let mut last: Option<(&'static str, Activation)> = None;
    for (name, activation) in activations {
        let Some(activation) = *activation else {
            continue;
        };
        if let Some((earlier, before)) = last {
            let out_of_order = match (before, activation) {
                (Activation::Block(a), Activation::Block(b))
                | (Activation::Time(a), Activation::Time(b)) => b < a,
                // A block fork after a time fork: never in geth's order.
                (Activation::Time(_), Activation::Block(_)) => true,
                (Activation::Block(_), Activation::Time(_)) => false,
            };
            if out_of_order {
                return Err(ChainError::Order {
                    earlier,
                    later: name,
                });
            }
        }
        last = Some((name, activation));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published activation points of Ethereum mainnet.
    #[test]
    fn mainnet_fork_boundaries() {
        let mainnet = ChainSpec::mainnet();
        let at = |number, timestamp| mainnet.spec_at(number, timestamp);
        assert_eq!(at(46_147, 0), SpecId::FRONTIER);
        assert_eq!(at(1_149_999, 0), SpecId::FRONTIER);
        assert_eq!(at(1_150_000, 0), SpecId::HOMESTEAD);
        // The DAO fork changes no EVM rule.
        assert_eq!(at(1_920_000, 0), SpecId::HOMESTEAD);
        assert_eq!(at(2_463_000, 0), SpecId::TANGERINE);
        assert_eq!(at(2_675_000, 0), SpecId::SPURIOUS_DRAGON);
        assert_eq!(at(4_370_000, 0), SpecId::BYZANTIUM);
        assert_eq!(at(7_280_000, 0), SpecId::PETERSBURG);
        assert_eq!(at(9_069_000, 0), SpecId::ISTANBUL);
        // Muir Glacier (9,200,000) only delays the bomb.
        assert_eq!(at(9_200_000, 0), SpecId::ISTANBUL);
        assert_eq!(at(12_244_000, 0), SpecId::BERLIN);
        assert_eq!(at(12_965_000, 0), SpecId::LONDON);
        assert_eq!(at(15_537_393, 1_663_224_162), SpecId::LONDON);
        assert_eq!(at(15_537_394, 1_663_224_179), SpecId::MERGE);
        assert_eq!(at(17_034_869, 1_681_338_443), SpecId::MERGE);
        assert_eq!(at(17_034_870, 1_681_338_455), SpecId::SHANGHAI);
        assert_eq!(at(19_426_587, 1_710_338_135), SpecId::CANCUN);
        assert_eq!(at(22_431_084, 1_746_612_311), SpecId::PRAGUE);
        assert_eq!(at(23_935_694, 1_764_798_551), SpecId::OSAKA);
        assert_eq!(mainnet.chain_id, 1);
    }

    /// Mainnet's blob parameters: 3/6 blobs in Cancun, 6/9 in Prague and
    /// Osaka, 10/15 from BPO1 (2025-12-09), 14/21 from BPO2 (2026-01-07).
    #[test]
    fn mainnet_blob_schedule() {
        let mainnet = ChainSpec::mainnet();
        let max = |spec, time| mainnet.blob_params_at(spec, time).map(|p| p.max_blob_count);
        assert_eq!(max(SpecId::SHANGHAI, 1_700_000_000), None);
        assert_eq!(max(SpecId::CANCUN, 1_710_338_135), Some(6));
        assert_eq!(max(SpecId::PRAGUE, 1_746_612_311), Some(9));
        assert_eq!(max(SpecId::OSAKA, 1_764_798_551), Some(9));
        assert_eq!(max(SpecId::OSAKA, 1_765_290_071), Some(15));
        assert_eq!(max(SpecId::OSAKA, 1_767_747_671), Some(21));
    }

    /// A devnet genesis: everything up to London at block 0, merged, then
    /// Shanghai, Cancun and Prague by time, Osaka with a BPO fork.
    #[test]
    fn genesis_config_gives_the_schedule() {
        let json = r#"{
            "config": {
                "chainId": 31337,
                "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0,
                "eip158Block": 0, "byzantiumBlock": 0, "constantinopleBlock": 0,
                "petersburgBlock": 0, "istanbulBlock": 0, "berlinBlock": 0,
                "londonBlock": 0, "terminalTotalDifficulty": 0,
                "shanghaiTime": 0, "cancunTime": 100, "pragueTime": 200,
                "osakaTime": 300, "bpo1Time": 400,
                "blobSchedule": {
                    "cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3338477},
                    "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716},
                    "osaka": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716},
                    "bpo1": {"target": 12, "max": 18, "baseFeeUpdateFraction": 9000000}
                }
            },
            "alloc": {}, "difficulty": "0x0", "gasLimit": "0x1c9c380"
        }"#;
        let chain = ChainSpec::from_genesis_json(json).expect("valid genesis");
        assert_eq!(chain.chain_id, 31337);
        assert_eq!(chain.spec_at(0, 0), SpecId::SHANGHAI);
        assert_eq!(chain.spec_at(5, 99), SpecId::SHANGHAI);
        assert_eq!(chain.spec_at(6, 100), SpecId::CANCUN);
        assert_eq!(chain.spec_at(9, 250), SpecId::PRAGUE);
        assert_eq!(chain.spec_at(12, 400), SpecId::OSAKA);
        let max = |spec, time| chain.blob_params_at(spec, time).map(|p| p.max_blob_count);
        assert_eq!(max(SpecId::OSAKA, 399), Some(9));
        assert_eq!(max(SpecId::OSAKA, 400), Some(18));
        assert_eq!(chain.deposit_contract, MAINNET_DEPOSIT_CONTRACT);
    }

    /// Without a merge block or a zero terminal difficulty, a chain of
    /// block forks never merges; a chain with timestamp forks merges at
    /// the first of them.
    #[test]
    fn the_merge_follows_the_config() {
        let pow = r#"{"config": {"chainId": 5, "homesteadBlock": 10, "londonBlock": 20},
            "alloc": {}}"#;
        let chain = ChainSpec::from_genesis_json(pow).expect("valid");
        assert_eq!(chain.spec_at(9, 0), SpecId::FRONTIER);
        assert_eq!(chain.spec_at(10, 0), SpecId::HOMESTEAD);
        assert_eq!(chain.spec_at(1_000_000, u64::MAX), SpecId::LONDON);
        let split = r#"{"config": {"chainId": 5, "londonBlock": 0,
            "mergeNetsplitBlock": 50, "shanghaiTime": 1000}, "alloc": {}}"#;
        let chain = ChainSpec::from_genesis_json(split).expect("valid");
        assert_eq!(chain.spec_at(49, 900), SpecId::LONDON);
        assert_eq!(chain.spec_at(50, 900), SpecId::MERGE);
        assert_eq!(chain.spec_at(60, 1000), SpecId::SHANGHAI);
    }

    #[test]
    fn bad_configs_are_refused() {
        let early =
            r#"{"config": {"chainId": 5, "londonBlock": 5, "berlinBlock": 9}, "alloc": {}}"#;
        assert_eq!(
            ChainSpec::from_genesis_json(early),
            Err(ChainError::Order {
                earlier: "berlinBlock",
                later: "londonBlock"
            })
        );
        let constantinople = r#"{"config": {"chainId": 5, "constantinopleBlock": 5,
            "petersburgBlock": 9}, "alloc": {}}"#;
        assert!(matches!(
            ChainSpec::from_genesis_json(constantinople),
            Err(ChainError::Unsupported {
                field: "constantinopleBlock",
                ..
            })
        ));
        assert!(matches!(
            ChainSpec::from_genesis_json("{\"config\": 7}"),
            Err(ChainError::Json(_))
        ));
    }
}
