//! One module per subcommand.

pub(crate) mod bench;
pub(crate) mod blocktest;
pub(crate) mod export;
pub(crate) mod fetch;
pub(crate) mod import;
pub(crate) mod run;
pub(crate) mod state;
pub(crate) mod statetest;
pub(crate) mod stress;
