//! `chain.json`: which chain a fetched block belongs to.
//!
//! A block alone does not say which rules it runs under: mainnet's forks
//! by number would give a block 5 of a local devnet Frontier's rules. So
//! [`fetch`](crate::fetch) writes the chain next to each block, and `run`
//! reads it back. The file holds the chain id and either the name of a
//! built-in chain (`mainnet`) or a geth-style genesis `config`:
//!
//! ```json
//! { "chainId": 31337, "config": { "chainId": 31337, "londonBlock": 0, ... },
//!   "source": "anvil_nodeInfo: Prague" }
//! ```

use std::path::Path;

use alloy_genesis::{ChainConfig, Genesis};
use parevm::chain::ChainError;
use parevm::ChainSpec;
use serde::{Deserialize, Serialize};

use crate::error::RpcError;
use crate::node::Node;

/// The file name next to `block.json`.
pub const CHAIN_FILE: &str = "chain.json";

/// A chain, as written next to fetched blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainFile {
    /// Chain id.
    pub chain_id: u64,
    /// A built-in chain (`mainnet`), when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The fork schedule, for any other chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ChainConfig>,
    /// Where the description came from (a file, the node).
    #[serde(default)]
    pub source: String,
}

/// The forks parevm names an anvil hardfork after, in order; a chain on
/// one of them runs every earlier one from genesis.
const ANVIL_FORKS: [&str; 9] = [
    "london",
    "arrowglacier",
    "grayglacier",
    "paris",
    "merge",
    "shanghai",
    "cancun",
    "prague",
    "osaka",
];

impl ChainFile {
    /// Ethereum mainnet.
    pub fn mainnet() -> Self {
        Self {
            chain_id: 1,
            name: Some("mainnet".into()),
            config: None,
            source: "built in".into(),
        }
    }

    /// `mainnet`, or the `config` of a geth-style genesis file at `name`.
    ///
    /// # Errors
    /// [`RpcError::Io`] naming the file when it cannot be read or is not a
    /// genesis file.
    pub fn load(name: &str) -> Result<Self, RpcError> {
        if name == "mainnet" {
            return Ok(Self::mainnet());
        }
        let json = std::fs::read_to_string(name).map_err(|e| {
            RpcError::io(
                name,
                format!("neither `mainnet` nor a readable genesis file: {e}"),
            )
        })?;
        let genesis: Genesis = serde_json::from_str(&json)
            .map_err(|e| RpcError::io(name, format!("not a genesis file: {e}")))?;
        let file = Self {
            chain_id: genesis.config.chain_id,
            name: None,
            config: Some(genesis.config),
            source: name.to_string(),
        };
        file.spec().map_err(|e| RpcError::io(name, e))?;
        Ok(file)
    }

    /// The chain of an anvil node on `hardfork` from genesis (anvil runs one
    /// fork from block 0); `None` for a fork this does not map.
    pub fn anvil(chain_id: u64, hardfork: &str) -> Option<Self> {
        let name = hardfork.to_ascii_lowercase();
        // The BPO forks change blob parameters only: Osaka's rules.
        let name = if name.starts_with("bpo") {
            "osaka".to_string()
        } else {
            name
        };
        let level = ANVIL_FORKS.iter().position(|f| *f == name)?;
        let mut config = serde_json::json!({
            "chainId": chain_id,
            "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0, "eip158Block": 0,
            "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0,
            "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0,
        });
        let merged = level >= 3;
        if merged {
            config["terminalTotalDifficulty"] = 0.into();
        }
        for (fork, key) in [
            ("shanghai", "shanghaiTime"),
            ("cancun", "cancunTime"),
            ("prague", "pragueTime"),
            ("osaka", "osakaTime"),
        ] {
            let at = ANVIL_FORKS.iter().position(|f| *f == fork)?;
            if level >= at {
                config[key] = 0.into();
            }
        }
        let config: ChainConfig = serde_json::from_value(config).ok()?;
        Some(Self {
            chain_id,
            name: None,
            config: Some(config),
            source: format!("anvil_nodeInfo: {hardfork}"),
        })
    }

    /// The chain's rules.
    ///
    /// # Errors
    /// [`ChainError`] for a schedule parevm cannot execute.
    pub fn spec(&self) -> Result<ChainSpec, ChainError> {
        match (&self.name, &self.config) {
            (_, Some(config)) => ChainSpec::from_config(config),
            (Some(name), None) if name == "mainnet" => Ok(ChainSpec::mainnet()),
            _ => Err(ChainError::Json(format!(
                "chain {} has neither a known name nor a config",
                self.chain_id
            ))),
        }
    }

    /// The chain file in a block folder, if there is one.
    ///
    /// # Errors
    /// [`RpcError::Io`] naming the file when it exists but does not parse.
    pub fn read(dir: &Path) -> Result<Option<Self>, RpcError> {
        let path = dir.join(CHAIN_FILE);
        let json = match std::fs::read_to_string(&path) {
            Ok(json) => json,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RpcError::io(path, e)),
        };
        let file: Self = serde_json::from_str(&json).map_err(|e| RpcError::io(&path, e))?;
        Ok(Some(file))
    }

    /// Which chain `node` serves: `given` when there is one (checked against
    /// the node's chain id), else mainnet for chain id 1, else the fork an
    /// anvil node reports.
    ///
    /// # Errors
    /// As [`Node::request`]; [`RpcError::ChainMismatch`] when `given` is
    /// another chain; [`RpcError::UnknownChain`] when the chain cannot be
    /// told.
    pub fn detect(node: &Node, given: Option<Self>) -> Result<Self, RpcError> {
        let chain_id = node.chain_id()?;
        if let Some(given) = given {
            if given.chain_id != chain_id {
                return Err(RpcError::ChainMismatch {
                    source_name: given.source,
                    given: given.chain_id,
                    url: node.url().to_string(),
                    served: chain_id,
                });
            }
            return Ok(given);
        }
        if chain_id == 1 {
            return Ok(Self::mainnet());
        }
        if let Some(file) = node
            .anvil_hardfork()
            .and_then(|fork| Self::anvil(chain_id, &fork))
        {
            return Ok(file);
        }
        Err(RpcError::UnknownChain {
            url: node.url().to_string(),
            chain_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parevm::revm::primitives::hardfork::SpecId;

    #[test]
    fn anvil_forks_run_from_genesis() {
        let prague = ChainFile::anvil(31337, "Prague").expect("known fork");
        let spec = prague.spec().expect("a chain");
        assert_eq!(spec.chain_id, 31337);
        assert_eq!(spec.spec_at(1, 1), SpecId::PRAGUE);
        assert_eq!(spec.spec_at(0, 0), SpecId::PRAGUE);
        let osaka = ChainFile::anvil(1, "Bpo1").expect("a BPO fork is Osaka's rules");
        assert_eq!(osaka.spec().expect("a chain").spec_at(5, 5), SpecId::OSAKA);
        let london = ChainFile::anvil(1, "london").expect("known fork");
        assert_eq!(
            london.spec().expect("a chain").spec_at(5, 5),
            SpecId::LONDON
        );
        assert!(ChainFile::anvil(1, "Frontier").is_none());
    }

    #[test]
    fn chain_files_round_trip_and_may_be_absent() {
        let dir = std::env::temp_dir().join(format!("parevm-chain-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        assert_eq!(ChainFile::read(&dir).expect("absent is fine"), None);
        let file = ChainFile::anvil(1337, "cancun").expect("known fork");
        std::fs::write(
            dir.join(CHAIN_FILE),
            serde_json::to_string(&file).expect("json"),
        )
        .expect("write");
        assert_eq!(ChainFile::read(&dir).expect("parses"), Some(file));
        std::fs::write(dir.join(CHAIN_FILE), "{").expect("write");
        let error = ChainFile::read(&dir).expect_err("malformed");
        assert!(error.to_string().contains(CHAIN_FILE), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            ChainFile::load("mainnet")
                .expect("built in")
                .spec()
                .expect("mainnet")
                .chain_id,
            1
        );
        let missing = ChainFile::load("/nonexistent/genesis.json").expect_err("no file");
        assert!(
            missing.to_string().contains("/nonexistent/genesis.json"),
            "{missing}"
        );
    }
}
