//! revm's journal with one rule added: EIP-7610.
//!
//! A contract may not be created at an address that already has code or a
//! nonce (revm checks both) **or non-empty storage** (EIP-7610, which is
//! retroactive to every fork). revm's `Database` cannot be asked "does this
//! account have storage?", so revm leaves the third condition out. Mainnet
//! never meets it; test suites do (a pre-state account with storage but no
//! code and no nonce).
//!
//! [`Eip7610Journal`] wraps revm's [`Journal`] and delegates every method to
//! it, except that `create_account_checkpoint` first asks the database
//! ([`StorageProbe`]) and reports a collision when the target has storage.
//! Both execution paths build their EVM with [`mainnet_evm`], so they agree
//! by construction.

use alloy_primitives::{Address, Log, B256, U256};
use revm::bytecode::Bytecode;
use revm::context::{BlockEnv, CfgEnv, Context, Journal, JournalEntry, TxEnv};
use revm::context_interface::context::{SStoreResult, SelfDestructResult, StateLoad};
use revm::context_interface::journaled_state::account::JournaledAccount;
use revm::context_interface::journaled_state::{
    AccountInfoLoad, AccountLoad, JournalCheckpoint, JournalLoadError, JournalTr, TransferError,
};
use revm::database_interface::Database;
use revm::handler::{MainBuilder, MainnetEvm};
use revm::inspector::JournalExt;
use revm::primitives::hardfork::SpecId;
use revm::primitives::{AddressMap, AddressSet, HashSet, StorageKey, StorageValue, KECCAK_EMPTY};
use revm::state::{Account, EvmState};

/// A database that can hand revm a stand-in for the beneficiary when the
/// fee credit is the beneficiary's only use in a transaction.
pub(crate) trait LazyBeneficiary {
    /// Called just before revm credits the fee to the beneficiary.
    fn entering_reward(&mut self);
}

/// What the EIP-7610 check needs from a database besides revm's `Database`.
pub(crate) trait StorageProbe {
    /// True when `address` has non-empty storage as the executing
    /// transaction sees it (pre-block storage not wiped earlier in the
    /// block). A failure is kept by the database and surfaced after the
    /// transaction; the probe then answers `true`, which only ends a
    /// create that the failure invalidates anyway.
    fn has_storage(&mut self, address: Address) -> bool;
}

/// revm's mainnet context over `DB`, with the EIP-7610 journal.
pub(crate) type Eip7610Context<DB> = Context<BlockEnv, TxEnv, CfgEnv, DB, Eip7610Journal<DB>, ()>;

/// revm's mainnet EVM over `DB`, with the EIP-7610 journal (and an
/// inspector, used only by the runs that ask for it).
pub(crate) type Eip7610Evm<DB, I = ()> = MainnetEvm<Eip7610Context<DB>, I>;

/// Builds the EVM both execution paths run transactions on.
pub(crate) fn mainnet_evm<DB: Database + StorageProbe>(
    db: DB,
    block: BlockEnv,
    cfg: CfgEnv,
) -> Eip7610Evm<DB> {
    Context::<BlockEnv, TxEnv, CfgEnv, DB, Eip7610Journal<DB>, ()>::new(db, SpecId::default())
        .with_block(block)
        .with_cfg(cfg)
        .build_mainnet()
}

/// [`mainnet_evm`] with an inspector, which sees the instructions of the
/// transactions run through `InspectorHandler::inspect_run`.
pub(crate) fn mainnet_evm_with<DB: Database + StorageProbe, I>(
    db: DB,
    block: BlockEnv,
    cfg: CfgEnv,
    inspector: I,
) -> Eip7610Evm<DB, I> {
    Eip7610Context::<DB>::new(db, SpecId::default())
        .with_block(block)
        .with_cfg(cfg)
        .build_mainnet_with_inspector(inspector)
}

impl<DB: Database + StorageProbe> JournalExt for Eip7610Journal<DB> {
    fn journal(&self) -> &[JournalEntry] {
        &self.0.journal
    }
}

/// revm's [`Journal`] plus the EIP-7610 storage check (see module docs).
#[derive(Debug)]
pub(crate) struct Eip7610Journal<DB: Database>(pub(crate) Journal<DB>);

impl<DB: Database> Eip7610Journal<DB> {
    /// The database.
    pub(crate) fn database(&mut self) -> &mut DB {
        &mut self.0.database
    }
}

impl<DB: Database + StorageProbe> JournalTr for Eip7610Journal<DB> {
    type Database = DB;
    type State = EvmState;
    type JournaledAccount<'a>
        = JournaledAccount<'a, DB, JournalEntry>
    where
        DB: 'a;

    fn new(database: DB) -> Self {
        Self(Journal::new(database))
    }

    fn db_and_state(&self) -> (&DB, &EvmState) {
        self.0.db_and_state()
    }

    fn db_and_state_mut(&mut self) -> (&mut DB, &mut EvmState) {
        self.0.db_and_state_mut()
    }

    fn sload(
        &mut self,
        address: Address,
        key: StorageKey,
    ) -> Result<StateLoad<StorageValue>, DB::Error> {
        self.0.sload(address, key)
    }

    fn sstore(
        &mut self,
        address: Address,
        key: StorageKey,
        value: StorageValue,
    ) -> Result<StateLoad<SStoreResult>, DB::Error> {
        self.0.sstore(address, key, value)
    }

    fn tload(&mut self, address: Address, key: StorageKey) -> StorageValue {
        self.0.tload(address, key)
    }

    fn tstore(&mut self, address: Address, key: StorageKey, value: StorageValue) {
        self.0.tstore(address, key, value)
    }

    fn log(&mut self, log: Log) {
        self.0.log(log)
    }

    fn logs(&self) -> &[Log] {
        self.0.logs()
    }

    fn take_logs(&mut self) -> Vec<Log> {
        self.0.take_logs()
    }

    fn selfdestruct(
        &mut self,
        address: Address,
        target: Address,
        skip_cold_load: bool,
    ) -> Result<StateLoad<SelfDestructResult>, JournalLoadError<DB::Error>> {
        self.0.selfdestruct(address, target, skip_cold_load)
    }

    fn warm_access_list(&mut self, access_list: AddressMap<HashSet<StorageKey>>) {
        self.0.warm_access_list(access_list)
    }

    fn warm_coinbase_account(&mut self, address: Address) {
        self.0.warm_coinbase_account(address)
    }

    fn warm_precompiles(&mut self, addresses: &AddressSet) {
        self.0.warm_precompiles(addresses)
    }

    fn precompile_addresses(&self) -> &AddressSet {
        self.0.precompile_addresses()
    }

    fn depth(&self) -> usize {
        self.0.depth()
    }

    fn set_spec_id(&mut self, spec_id: SpecId) {
        self.0.set_spec_id(spec_id)
    }

    fn set_eip7708_config(&mut self, disabled: bool, eip8246_delayed_clear_disabled: bool) {
        self.0
            .set_eip7708_config(disabled, eip8246_delayed_clear_disabled)
    }

    fn transfer(
        &mut self,
        from: Address,
        to: Address,
        balance: U256,
    ) -> Result<Option<TransferError>, DB::Error> {
        self.0.transfer(from, to, balance)
    }

    fn transfer_loaded(
        &mut self,
        from: Address,
        to: Address,
        balance: U256,
    ) -> Option<TransferError> {
        self.0.transfer_loaded(from, to, balance)
    }

    fn touch_account(&mut self, address: Address) {
        self.0.touch_account(address)
    }

    #[allow(deprecated)]
    fn caller_accounting_journal_entry(
        &mut self,
        address: Address,
        old_balance: U256,
        bump_nonce: bool,
    ) {
        self.0
            .caller_accounting_journal_entry(address, old_balance, bump_nonce)
    }

    fn balance_incr(&mut self, address: Address, balance: U256) -> Result<(), DB::Error> {
        self.0.balance_incr(address, balance)
    }

    #[allow(deprecated)]
    fn nonce_bump_journal_entry(&mut self, address: Address) {
        self.0.nonce_bump_journal_entry(address)
    }

    fn load_account(&mut self, address: Address) -> Result<StateLoad<&Account>, DB::Error> {
        self.0.load_account(address)
    }

    fn load_account_mut_skip_cold_load(
        &mut self,
        address: Address,
        skip_cold_load: bool,
    ) -> Result<StateLoad<Self::JournaledAccount<'_>>, JournalLoadError<DB::Error>> {
        self.0
            .load_account_mut_skip_cold_load(address, skip_cold_load)
    }

    fn load_account_mut_optional_code(
        &mut self,
        address: Address,
        load_code: bool,
    ) -> Result<StateLoad<Self::JournaledAccount<'_>>, DB::Error> {
        self.0.load_account_mut_optional_code(address, load_code)
    }

    fn load_account_with_code(
        &mut self,
        address: Address,
    ) -> Result<StateLoad<&Account>, DB::Error> {
        self.0.load_account_with_code(address)
    }

    fn load_account_delegated(
        &mut self,
        address: Address,
    ) -> Result<StateLoad<AccountLoad>, DB::Error> {
        self.0.load_account_delegated(address)
    }

    fn checkpoint(&mut self) -> JournalCheckpoint {
        self.0.checkpoint()
    }

    fn checkpoint_commit(&mut self) {
        self.0.checkpoint_commit()
    }

    fn checkpoint_revert(&mut self, checkpoint: JournalCheckpoint) {
        self.0.checkpoint_revert(checkpoint)
    }

    fn set_code_with_hash(&mut self, address: Address, code: Bytecode, hash: B256) {
        self.0.set_code_with_hash(address, code, hash)
    }

    fn create_account_checkpoint(
        &mut self,
        caller: Address,
        address: Address,
        balance: U256,
        spec_id: SpecId,
    ) -> Result<JournalCheckpoint, TransferError> {
        // revm loaded the target just before. Only an account that revm
        // would accept (no code, zero nonce) and that was not created in
        // this very transaction (which makes its old storage unreachable)
        // needs the storage question.
        let ask = self.0.inner.state.get(&address).is_some_and(|account| {
            account.info.code_hash == KECCAK_EMPTY
                && account.info.nonce == 0
                && !account.is_created()
        });
        if ask && self.0.database.has_storage(address) {
            return Err(TransferError::CreateCollision);
        }
        self.0
            .create_account_checkpoint(caller, address, balance, spec_id)
    }

    fn commit_tx(&mut self) {
        self.0.commit_tx()
    }

    fn discard_tx(&mut self) {
        self.0.discard_tx()
    }

    fn finalize(&mut self) -> EvmState {
        self.0.finalize()
    }

    fn sload_skip_cold_load(
        &mut self,
        address: Address,
        key: StorageKey,
        skip_cold_load: bool,
    ) -> Result<StateLoad<StorageValue>, JournalLoadError<DB::Error>> {
        self.0.sload_skip_cold_load(address, key, skip_cold_load)
    }

    fn sstore_skip_cold_load(
        &mut self,
        address: Address,
        key: StorageKey,
        value: StorageValue,
        skip_cold_load: bool,
    ) -> Result<StateLoad<SStoreResult>, JournalLoadError<DB::Error>> {
        self.0
            .sstore_skip_cold_load(address, key, value, skip_cold_load)
    }

    fn load_account_info_skip_cold_load(
        &mut self,
        address: Address,
        load_code: bool,
        skip_cold_load: bool,
    ) -> Result<AccountInfoLoad<'_>, JournalLoadError<DB::Error>> {
        self.0
            .load_account_info_skip_cold_load(address, load_code, skip_cold_load)
    }
}
