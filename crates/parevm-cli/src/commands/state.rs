//! `parevm state`: read a state database back (its head, an account, a
//! slot).

use std::path::PathBuf;
use std::process::ExitCode;

use alloy_primitives::{Address, U256};
use anyhow::Context as _;
use parevm_db::StateDb;
use serde_json::json;

/// Arguments of `parevm state`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The state database (created by `import`, or by the library).
    #[arg(long, default_value = "parevm-state.redb")]
    db: PathBuf,
    /// What to read.
    #[command(subcommand)]
    query: Option<Query>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

/// What `parevm state` reads.
#[derive(clap::Subcommand, Debug)]
enum Query {
    /// The last block: number, hash, state root (the default).
    Head,
    /// An account: balance, nonce, code hash, storage root.
    Account {
        /// The account's address.
        address: Address,
    },
    /// A storage slot's value.
    Slot {
        /// The account's address.
        address: Address,
        /// The slot (decimal or 0x-hex).
        slot: U256,
    },
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.db.exists() {
        anyhow::bail!("{}: no such state database", args.db.display());
    }
    let db = StateDb::open(&args.db)?;
    let value = answer(&db, args.query.unwrap_or(Query::Head))?;
    if args.json {
        println!("{value}");
    } else if value.is_null() {
        println!("none");
    } else if let Some(object) = value.as_object() {
        for (key, field) in object {
            let text = field
                .as_str()
                .map_or_else(|| field.to_string(), str::to_owned);
            println!("{key:<13} {text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The answer to `query` as JSON (`null`: no such block or account).
fn answer(db: &StateDb, query: Query) -> anyhow::Result<serde_json::Value> {
    Ok(match query {
        Query::Head => match db.head()? {
            Some(head) => json!({
                "number": head.number,
                "hash": head.hash,
                "state_root": head.state_root,
            }),
            None => json!(null),
        },
        Query::Account { address } => match db.account(&address)? {
            Some(account) => json!({
                "address": address,
                "balance": account.balance,
                "nonce": account.nonce,
                "code_hash": account.code_hash,
                "storage_root": account.storage_root,
            }),
            None => json!(null),
        },
        Query::Slot { address, slot } => {
            let value = db
                .slot(&address, &slot)
                .with_context(|| format!("slot {slot} of {address}"))?;
            json!({ "address": address, "slot": slot, "value": value })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use parevm::output::{AccountChange, AccountState};
    use parevm::revm::primitives::KECCAK_EMPTY;
    use parevm::StateDiff;

    #[test]
    fn answers_head_account_and_slot() {
        let db = StateDb::in_memory().expect("db");
        assert!(answer(&db, Query::Head).expect("head").is_null());
        let address = Address::with_last_byte(5);
        let mut change = AccountChange {
            info: Some(AccountState {
                balance: U256::from(42),
                nonce: 3,
                code_hash: KECCAK_EMPTY,
                code: None,
            }),
            ..AccountChange::default()
        };
        change.storage.insert(U256::from(1), U256::from(99));
        let root = db
            .commit_block(
                0,
                B256::repeat_byte(9),
                &[],
                &StateDiff::from([(address, change)]),
                None,
            )
            .expect("genesis")
            .root;
        let head = answer(&db, Query::Head).expect("head");
        assert_eq!(head["number"], 0);
        assert_eq!(head["state_root"], json!(root));
        let account = answer(&db, Query::Account { address }).expect("account");
        assert_eq!(account["nonce"], 3);
        assert_eq!(account["balance"], json!(U256::from(42)));
        let slot = answer(
            &db,
            Query::Slot {
                address,
                slot: U256::from(1),
            },
        )
        .expect("slot");
        assert_eq!(slot["value"], json!(U256::from(99)));
        let missing = Query::Account {
            address: Address::with_last_byte(6),
        };
        assert!(answer(&db, missing).expect("no account").is_null());
    }
}
