//! Chain rules: which fork applies to a mainnet block.

use revm::primitives::hardfork::SpecId;

/// Block numbers and timestamps at which Ethereum mainnet changed rules.
mod mainnet {
    pub(super) const HOMESTEAD: u64 = 1_150_000;
    pub(super) const TANGERINE: u64 = 2_463_000;
    pub(super) const SPURIOUS_DRAGON: u64 = 2_675_000;
    pub(super) const BYZANTIUM: u64 = 4_370_000;
    /// Constantinople and Petersburg activated together on mainnet.
    pub(super) const PETERSBURG: u64 = 7_280_000;
    pub(super) const ISTANBUL: u64 = 9_069_000;
    pub(super) const BERLIN: u64 = 12_244_000;
    pub(super) const LONDON: u64 = 12_965_000;
    /// The merge (Paris): first proof-of-stake block.
    pub(super) const MERGE: u64 = 15_537_394;
    pub(super) const SHANGHAI_TIME: u64 = 1_681_338_455;
    pub(super) const CANCUN_TIME: u64 = 1_710_338_135;
    pub(super) const PRAGUE_TIME: u64 = 1_746_612_311;
    pub(super) const OSAKA_TIME: u64 = 1_764_798_551;
}

/// Block number of the DAO fork's irregular state change on mainnet.
pub const DAO_FORK_BLOCK: u64 = 1_920_000;

/// The revm fork rules for an Ethereum mainnet block. The difficulty-bomb
/// delays (Muir Glacier, Arrow Glacier, Gray Glacier) change no EVM rule and
/// map to the fork before them.
pub fn spec_id_for_mainnet(number: u64, timestamp: u64) -> SpecId {
    use mainnet::*;
    if number >= MERGE {
        return match timestamp {
            t if t >= OSAKA_TIME => SpecId::OSAKA,
            t if t >= PRAGUE_TIME => SpecId::PRAGUE,
            t if t >= CANCUN_TIME => SpecId::CANCUN,
            t if t >= SHANGHAI_TIME => SpecId::SHANGHAI,
            _ => SpecId::MERGE,
        };
    }
    match number {
        n if n >= LONDON => SpecId::LONDON,
        n if n >= BERLIN => SpecId::BERLIN,
        n if n >= ISTANBUL => SpecId::ISTANBUL,
        n if n >= PETERSBURG => SpecId::PETERSBURG,
        n if n >= BYZANTIUM => SpecId::BYZANTIUM,
        n if n >= SPURIOUS_DRAGON => SpecId::SPURIOUS_DRAGON,
        n if n >= TANGERINE => SpecId::TANGERINE,
        n if n >= HOMESTEAD => SpecId::HOMESTEAD,
        _ => SpecId::FRONTIER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_fork_boundaries() {
        // Published activation points of Ethereum mainnet.
        assert_eq!(spec_id_for_mainnet(46_147, 0), SpecId::FRONTIER);
        assert_eq!(spec_id_for_mainnet(1_149_999, 0), SpecId::FRONTIER);
        assert_eq!(spec_id_for_mainnet(1_150_000, 0), SpecId::HOMESTEAD);
        assert_eq!(spec_id_for_mainnet(2_463_000, 0), SpecId::TANGERINE);
        assert_eq!(spec_id_for_mainnet(2_675_000, 0), SpecId::SPURIOUS_DRAGON);
        assert_eq!(spec_id_for_mainnet(4_370_000, 0), SpecId::BYZANTIUM);
        assert_eq!(spec_id_for_mainnet(7_280_000, 0), SpecId::PETERSBURG);
        assert_eq!(spec_id_for_mainnet(9_069_000, 0), SpecId::ISTANBUL);
        assert_eq!(spec_id_for_mainnet(12_244_000, 0), SpecId::BERLIN);
        assert_eq!(spec_id_for_mainnet(12_965_000, 0), SpecId::LONDON);
        assert_eq!(
            spec_id_for_mainnet(15_537_393, 1_663_224_162),
            SpecId::LONDON
        );
        assert_eq!(
            spec_id_for_mainnet(15_537_394, 1_663_224_179),
            SpecId::MERGE
        );
        assert_eq!(
            spec_id_for_mainnet(17_034_870, 1_681_338_455),
            SpecId::SHANGHAI
        );
        assert_eq!(
            spec_id_for_mainnet(19_426_587, 1_710_338_135),
            SpecId::CANCUN
        );
        assert_eq!(
            spec_id_for_mainnet(22_431_084, 1_746_612_311),
            SpecId::PRAGUE
        );
        assert_eq!(
            spec_id_for_mainnet(23_935_694, 1_764_798_551),
            SpecId::OSAKA
        );
    }
}
