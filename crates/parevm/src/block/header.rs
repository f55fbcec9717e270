//! Header rules: the checks of a header against its parent, and the blob
//! parameters a fork starts with.

use alloy_consensus::Header;
use alloy_eips::eip1559::BaseFeeParams;
use alloy_eips::eip7840::BlobParams;
use alloy_primitives::B256;
use revm::primitives::hardfork::SpecId;

use super::{BlockError, FullBlock};

/// The blob parameters a fork starts with (Cancun: 3/6 blobs; Prague:
/// 6/9; Osaka: 6/9, at most 6 per transaction, EIP-7918 reserve price),
/// `None` before Cancun. Blob-parameter-only forks (BPO1...) keep Osaka's
/// EVM rules and change only these; pass them explicitly.
pub fn default_blob_params(spec: SpecId) -> Option<BlobParams> {
    if spec.is_enabled_in(SpecId::OSAKA) {
        Some(BlobParams::osaka())
    } else if spec.is_enabled_in(SpecId::PRAGUE) {
        Some(BlobParams::prague())
    } else if spec.is_enabled_in(SpecId::CANCUN) {
        Some(BlobParams::cancun())
    } else {
        None
    }
}

/// Checks a header against its parent (known by `parent_hash`, which is
/// the hash of `parent` on every chain but one whose genesis header is not
/// the standard one): hash link, number, timestamp, gas
/// limit bounds, gas used, extra data, EIP-1559 base fee, post-merge
/// constants, EIP-4844 excess blob gas, and which optional fields a fork
/// requires. Proof-of-work difficulty and seal are not checked.
///
/// # Errors
/// [`BlockError::Invalid`] naming the first rule broken.
pub fn validate_header(
    block: &FullBlock,
    parent: &Header,
    parent_hash: B256,
    parent_spec: SpecId,
) -> Result<(), BlockError> {
    let h = &block.header;
    let spec = block.spec;
    let fail = |m: String| Err(BlockError::Invalid(m));
    if h.parent_hash != parent_hash {
        return fail(format!("parent hash {} is not the parent's", h.parent_hash));
    }
    if h.number != parent.number + 1 {
        return fail(format!("number {} after {}", h.number, parent.number));
    }
    if h.timestamp <= parent.timestamp {
        return fail(format!(
            "timestamp {} not after the parent's {}",
            h.timestamp, parent.timestamp
        ));
    }
    if h.extra_data.len() > 32 {
        return fail(format!("extra data of {} bytes", h.extra_data.len()));
    }
    if h.gas_used > h.gas_limit {
        return fail(format!(
            "gas used {} above gas limit {}",
            h.gas_used, h.gas_limit
        ));
    }
    let london = spec.is_enabled_in(SpecId::LONDON);
    let parent_london = parent_spec.is_enabled_in(SpecId::LONDON);
    // At the London transition the parent's limit is doubled (elasticity).
    let parent_limit = if london && !parent_london {
        parent.gas_limit.saturating_mul(2)
    } else {
        parent.gas_limit
    };
    let bound = parent_limit / 1024;
    if h.gas_limit.abs_diff(parent_limit) >= bound || h.gas_limit < 5000 {
        return fail(format!(
            "gas limit {} out of bounds for parent {}",
            h.gas_limit, parent_limit
        ));
    }
    if london {
        let expected = if parent_london {
            parent
                .next_block_base_fee(BaseFeeParams::ethereum())
                .ok_or_else(|| BlockError::Invalid("parent without base fee".into()))?
        } else {
            1_000_000_000
        };
        if h.base_fee_per_gas != Some(expected) {
            return fail(format!(
                "base fee {:?}, expected {expected}",
                h.base_fee_per_gas
            ));
        }
    } else if h.base_fee_per_gas.is_some() {
        return fail("base fee before London".into());
    }
    if spec.is_enabled_in(SpecId::MERGE) {
        if !h.difficulty.is_zero() || h.nonce != alloy_primitives::B64::ZERO {
            return fail("non-zero difficulty or nonce after the merge".into());
        }
        if h.ommers_hash != alloy_consensus::EMPTY_OMMER_ROOT_HASH {
            return fail("uncles after the merge".into());
        }
    }
    let require = |present: bool, enabled: bool, field: &str| {
        if present != enabled {
            Err(BlockError::Invalid(format!(
                "{field} {} in a {spec:?} header",
                if present { "present" } else { "missing" }
            )))
        } else {
            Ok(())
        }
    };
    require(
        h.withdrawals_root.is_some(),
        spec.is_enabled_in(SpecId::SHANGHAI),
        "withdrawals root",
    )?;
    let cancun = spec.is_enabled_in(SpecId::CANCUN);
    require(h.blob_gas_used.is_some(), cancun, "blob gas used")?;
    require(h.excess_blob_gas.is_some(), cancun, "excess blob gas")?;
    require(
        h.parent_beacon_block_root.is_some(),
        cancun,
        "parent beacon block root",
    )?;
    require(
        h.requests_hash.is_some(),
        spec.is_enabled_in(SpecId::PRAGUE),
        "requests hash",
    )?;
    if let Some(params) = &block.blob_params {
        let expected = if parent_spec.is_enabled_in(SpecId::CANCUN) {
            params.next_block_excess_blob_gas_osaka(
                parent.excess_blob_gas.unwrap_or_default(),
                parent.blob_gas_used.unwrap_or_default(),
                parent.base_fee_per_gas.unwrap_or_default(),
            )
        } else {
            0
        };
        if h.excess_blob_gas != Some(expected) {
            return fail(format!(
                "excess blob gas {:?}, expected {expected}",
                h.excess_blob_gas
            ));
        }
    }
    Ok(())
}
