//! Account flows: for each account that more than one transaction sends
//! from or pays, what each plain transfer does to it. A chunk predicts such
//! an account at its start from the flows of the transactions before it.

use alloy_primitives::{Address, U256};
use revm::context::TxEnv;
use revm::context_interface::Transaction as _;
use rustc_hash::FxHashMap;

use crate::input::{is_plain_transfer, BlockInput, PLAIN_TRANSFER_GAS};

/// What one transaction does to an account it sends from or pays, when it
/// is a plain transfer: the nonce it adds, and what it adds to and takes
/// from the balance if the transfer goes to an account without code (the
/// value; the value plus 21,000 gas at the effective price).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Flow {
    pub(super) nonce: u64,
    pub(super) credit: U256,
    pub(super) debit: U256,
}

/// For accounts that more than one transaction sends from or pays: each
/// such transaction's index and, for a plain transfer, its [`Flow`] on
/// the account (`None`: not a plain transfer, unpredictable).
pub(super) struct AccountFlows(pub(super) FxHashMap<Address, Vec<(usize, Option<Flow>)>>);

impl AccountFlows {
    pub(super) fn new(input: &BlockInput) -> Self {
        // Only plain transfers make a flow: without one, `before` answers
        // `None` for every account, as it does for an account not listed.
        // (A block of calls to one token listed the token with a
        // flow-less entry per transaction, while the threads waited.)
        if !input.txs.iter().any(is_plain_transfer) {
            return Self(FxHashMap::default());
        }
        let mut flows = Self::listed(input);
        // `before` stops at an account's first entry without a flow: what
        // follows it never counts, and an account whose first entry has
        // none is never predicted (nor looked up on every transaction).
        flows.retain(|_, entries| {
            if let Some(stop) = entries.iter().position(|(_, flow)| flow.is_none()) {
                entries.truncate(stop + 1);
            }
            matches!(entries.first(), Some((_, Some(_))))
        });
        Self(flows)
    }

    /// Every transaction of every account that sends or receives more
    /// than once, with its flow if it is a plain transfer.
    pub(super) fn listed(input: &BlockInput) -> FxHashMap<Address, Vec<(usize, Option<Flow>)>> {
        let basefee = u128::from(input.block.basefee);
        let recipient = |tx: &TxEnv| match tx.kind {
            revm::primitives::TxKind::Call(to) if to != tx.caller => Some(to),
            _ => None,
        };
        // Counted first, so that a block of distinct accounts allocates no
        // list per account.
        let mut counts: FxHashMap<Address, u32> =
            FxHashMap::with_capacity_and_hasher(2 * input.txs.len(), Default::default());
        for tx in &input.txs {
            *counts.entry(tx.caller).or_default() += 1;
            if let Some(to) = recipient(tx) {
                *counts.entry(to).or_default() += 1;
            }
        }
        let repeated = |address: &Address| counts.get(address).is_some_and(|n| *n >= 2);
        let mut flows: FxHashMap<Address, Vec<(usize, Option<Flow>)>> = FxHashMap::default();
        for (index, tx) in input.txs.iter().enumerate() {
            let plain = is_plain_transfer(tx);
            if repeated(&tx.caller) {
                // A transfer to oneself pays only the gas.
                let value = if recipient(tx).is_some() {
                    tx.value
                } else {
                    U256::ZERO
                };
                let debit = U256::from(PLAIN_TRANSFER_GAS)
                    .checked_mul(U256::from(tx.effective_gas_price(basefee)))
                    .and_then(|fee| fee.checked_add(value));
                let flow = debit.filter(|_| plain).map(|debit| Flow {
                    nonce: 1,
                    debit,
                    ..Flow::default()
                });
                flows.entry(tx.caller).or_default().push((index, flow));
            }
            if let Some(to) = recipient(tx).filter(|to| repeated(to)) {
                let flow = plain.then_some(Flow {
                    credit: tx.value,
                    ..Flow::default()
                });
                flows.entry(to).or_default().push((index, flow));
            }
        }
        flows
    }

    /// What the transactions before transaction `start` did to `address`'s
    /// account, summed; `None` if none sent from or paid it, or one that
    /// did is not a plain transfer.
    pub(super) fn before(&self, address: &Address, start: usize) -> Option<Flow> {
        let mut total = Flow::default();
        let mut any = false;
        for (index, flow) in self.0.get(address)? {
            if *index >= start {
                break;
            }
            let flow = (*flow)?;
            total = Flow {
                nonce: total.nonce.checked_add(flow.nonce)?,
                credit: total.credit.checked_add(flow.credit)?,
                debit: total.debit.checked_add(flow.debit)?,
            };
            any = true;
        }
        any.then_some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choose::independence::independence;

    /// `auto` skips building the account flows when the independence
    /// pass saw no account repeat after a plain transfer: then the flows
    /// predict nothing. Checked on the workloads, with the pass split in
    /// one, two and five parts.
    #[test]
    fn no_repeated_account_means_no_account_flows() {
        use parevm_testkit::workload::{Preset, Size, WorkloadKind, WorkloadSpec};
        let mut seen_repeats = [false; 2];
        for kind in WorkloadKind::ALL {
            for preset in [Preset::Independent, Preset::HotRecipient, Preset::Chained] {
                let workload = WorkloadSpec::preset(kind, preset, Size::Txs(300))
                    .build()
                    .expect("workload");
                let input = &BlockInput::from_kit(workload.input);
                let flows = AccountFlows::new(input);
                for parts in [1, 2, 5] {
                    let independence =
                        independence(&input.txs, input.block.beneficiary, |_| false, parts);
                    let Some(independence) = independence else {
                        continue;
                    };
                    seen_repeats[usize::from(independence.repeats)] = true;
                    if !independence.repeats {
                        // Every account that appears twice appeared
                        // first in a call that is not a plain transfer:
                        // none can be predicted at any chunk start.
                        for start in 0..=input.txs.len() {
                            for address in flows.0.keys() {
                                assert_eq!(
                                    flows.before(address, start),
                                    None,
                                    "{kind:?} {preset:?} {address} at {start}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(seen_repeats, [true, true], "both answers met");
    }

    /// The flows keep only what `before` can use: for every listed
    /// account and every chunk start, the answer is that of the full
    /// list. Random blocks (payouts among them) and the workloads.
    #[test]
    fn pruned_flows_answer_as_the_full_lists() {
        use parevm_testkit::gen::{random_block, GenParams};
        use parevm_testkit::workload::{Preset, Size, WorkloadKind, WorkloadSpec};
        let mut inputs = Vec::new();
        for seed in 0..40 {
            let params = GenParams {
                txs: 60,
                accounts: 3 + (seed % 8) as usize,
                invalid_percent: 0,
                payout_percent: 40,
            };
            inputs.push(BlockInput::from_kit(random_block(seed, &params).1));
        }
        for kind in WorkloadKind::ALL {
            let spec = WorkloadSpec::preset(kind, Preset::HotRecipient, Size::Txs(60));
            inputs.push(BlockInput::from_kit(spec.build().expect("workload").input));
        }
        let (mut answered, mut pruned) = (0, 0);
        for input in &inputs {
            let full = AccountFlows(AccountFlows::listed(input));
            let flows = AccountFlows::new(input);
            pruned += full.0.len() - flows.0.len();
            for address in full.0.keys() {
                for start in 0..=input.txs.len() {
                    let answer = flows.before(address, start);
                    assert_eq!(answer, full.before(address, start), "{address} at {start}");
                    answered += usize::from(answer.is_some());
                }
            }
        }
        assert!(
            answered > 0 && pruned > 0,
            "{answered} answers, {pruned} pruned"
        );
    }
}
