//! Storage deltas: how a chunk's transactions used the storage values they
//! read from before the chunk, so that a stale value can be corrected
//! instead of throwing the chunk away.
//!
//! A chunk after the first reads the pre-block storage as if the chunks
//! before it had written nothing (`chunks` module docs). When every
//! transfer of a token pays one account, every chunk reads that account's
//! balance stale, and the whole chunk would be lost. Yet a transfer only
//! adds to the balance: had the chunk read the real value `v + δ` instead
//! of `v`, it would have written `w + δ` instead of `w`, spent the same gas
//! and logged the same events, *as long as every decision it took came out
//! the same*. This module records exactly what those decisions were.
//!
//! Each slot a tracked chunk reads from the pre-block storage becomes a
//! variable ([`SlotVars`]). An inspector ([`DeltaTracker`]) follows the
//! values derived from it on the EVM stack, as concrete values tagged
//! `+x` or `-x` (the value moves by `+δ` or `-δ` when the slot does):
//!
//! ```text
//!   SLOAD of a tracked slot      -> tagged +x
//!   ADD/SUB with an untagged     -> tag kept (SUB from a constant flips it)
//!   NOT                          -> tag flipped (NOT a = -a - 1)
//!   +x minus +x, +x plus -x      -> untagged (δ cancels)
//!   DUP, SWAP                    -> tags move with the values
//!   POP                          -> tag dropped (nothing was decided)
//!   SSTORE +x into x's own slot  -> the slot stays "+x"; gas facts recorded
//!   any other use of a tag       -> a fact, or a pin
//! ```
//!
//! A *fact* is an operation whose result decides something, recorded with
//! its operands and the result it gave: a comparison, a `JUMPI` condition,
//! the zero-ness of the original, current and new value of an `SSTORE`
//! (which decide its gas and refund). A *pin* says "this transaction used
//! the exact value": storing it in memory, in another slot, as a call
//! argument, a jump target, or anything not listed. Values in memory,
//! logs, return data and other slots are therefore never tagged.
//!
//! When the chunks are checked, each variable gets its real shift `δ`
//! (the slot's value before the chunk minus the value read). With `δ = 0`
//! nothing is to do. Otherwise every fact is evaluated again on its
//! operands moved by `±δ`; a pin fails outright. The first transaction
//! with a broken fact is a conflict like any other; the transactions
//! before it took the same path with the real value, so their writes of
//! the slot, moved by `δ`, are what the sequential loop writes.
//!
//! Tracking is bounded whatever the bytecode: a frame holds at most
//! [`MAX_FRAME_TAGS`] tags (another copy pins), a variable records nothing
//! after its first pin (facts come in execution order, so nothing later
//! can break first), and a chunk keeps a bounded number of facts (beyond
//! it a fact is a pin).
//!
//! Tracking only relies on revm's journal for values it already holds
//! (the original and current value of a slot); reverted frames restore
//! those in the journal, so the tracker needs no undo log.

use alloy_primitives::{Address, I256, U256};
use revm::bytecode::opcode::{self, OPCODE_INFO};
use revm::context_interface::JournalTr;
use revm::database_interface::Database;
use revm::inspector::Inspector;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::{InputsTr, Jumps};
use revm::interpreter::Interpreter;
use rustc_hash::{FxHashMap, FxHashSet};
use std::ops::Range;

use crate::evm::journal::{Eip7610Context, StorageProbe};

/// Index of a tracked slot in [`SlotVars`].
type VarId = u32;

/// A stack value that moves with a tracked slot: by `+δ`, or by `-δ`
/// when `neg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tag {
    var: VarId,
    neg: bool,
}

/// An operand of a recorded fact: its value when executed, and how it
/// moves with the variable (`None`: it does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Operand {
    value: U256,
    neg: Option<bool>,
}

impl Operand {
    fn constant(value: U256) -> Self {
        Self { value, neg: None }
    }

    fn tagged(value: U256, tag: Option<Tag>) -> Self {
        Self {
            value,
            neg: tag.map(|t| t.neg),
        }
    }

    /// The operand had the variable been `delta` higher.
    fn moved(&self, delta: U256) -> U256 {
        match self.neg {
            None => self.value,
            Some(false) => self.value.wrapping_add(delta),
            Some(true) => self.value.wrapping_sub(delta),
        }
    }
}

/// What one transaction's execution relied on about a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fact {
    /// The exact value was used: holds only for a shift of zero.
    Pinned,
    /// `op(args[0], args[1])` (`args[0]` the top of the stack) gave `out`.
    Gave {
        op: u8,
        args: [Operand; 2],
        out: U256,
    },
}

impl Fact {
    /// Whether the fact still holds with the variable moved by `delta`.
    pub(crate) fn holds(&self, delta: U256) -> bool {
        match self {
            Self::Pinned => delta.is_zero(),
            Self::Gave { op, args, out } => {
                eval(*op, args[0].moved(delta), args[1].moved(delta)) == Some(*out)
            }
        }
    }
}

/// The EVM's result of the pure operations facts may record (`a` is the
/// top of the stack); `None` for the others, which are pinned instead.
fn eval(op: u8, a: U256, b: U256) -> Option<U256> {
    let flag = |b: bool| U256::from(u8::from(b));
    Some(match op {
        opcode::ADD => a.wrapping_add(b),
        opcode::SUB => a.wrapping_sub(b),
        opcode::MUL => a.wrapping_mul(b),
        opcode::DIV => a.checked_div(b).unwrap_or_default(),
        opcode::MOD => a.checked_rem(b).unwrap_or_default(),
        opcode::LT => flag(a < b),
        opcode::GT => flag(a > b),
        opcode::SLT => flag(I256::from_raw(a) < I256::from_raw(b)),
        opcode::SGT => flag(I256::from_raw(a) > I256::from_raw(b)),
        opcode::EQ => flag(a == b),
        opcode::ISZERO => flag(a.is_zero()),
        opcode::AND => a & b,
        opcode::OR => a | b,
        opcode::XOR => a ^ b,
        opcode::NOT => !a,
        // SHL(shift, value) with the shift on top.
        opcode::SHL => match usize::try_from(a) {
            Ok(shift) if shift < 256 => b << shift,
            _ => U256::ZERO,
        },
        opcode::SHR => match usize::try_from(a) {
            Ok(shift) if shift < 256 => b >> shift,
            _ => U256::ZERO,
        },
        _ => return None,
    })
}

/// The operations [`eval`] knows, by opcode.
static EVALUATED: [bool; 256] = {
    let mut known = [false; 256];
    let ops = [
        opcode::ADD,
        opcode::SUB,
        opcode::MUL,
        opcode::DIV,
        opcode::MOD,
        opcode::LT,
        opcode::GT,
        opcode::SLT,
        opcode::SGT,
        opcode::EQ,
        opcode::ISZERO,
        opcode::AND,
        opcode::OR,
        opcode::XOR,
        opcode::NOT,
        opcode::SHL,
        opcode::SHR,
    ];
    let mut i = 0;
    while i < ops.len() {
        known[ops[i] as usize] = true;
        i += 1;
    }
    known
};

/// One slot read from the pre-block storage by a tracked chunk.
#[derive(Clone, Debug)]
pub(crate) struct SlotVar {
    pub(crate) address: Address,
    pub(crate) slot: U256,
    /// The value read (the pre-block value).
    pub(crate) base: U256,
    /// The chunk-relative transaction that read it first.
    pub(crate) first_tx: usize,
    /// A fact of this variable was pinned (by the transaction of that
    /// fact): later facts cannot move the first broken transaction and are
    /// not recorded.
    pinned: bool,
}

/// The tracked slots of one chunk.
#[derive(Debug, Default)]
pub(crate) struct SlotVars {
    /// Pre-block slot reads become variables (a tracked chunk after the
    /// first; the first reads exact values).
    pub(crate) enabled: bool,
    index: FxHashMap<(Address, U256), VarId>,
    vars: Vec<SlotVar>,
    /// Facts of all variables, with the chunk-relative transaction that
    /// relied on them, in execution order (one vector for the chunk: a
    /// vector per variable would be an allocation per slot read).
    facts: Vec<(VarId, usize, Fact)>,
    /// The executing transaction, relative to the chunk's start.
    tx: usize,
    /// At most this many facts are kept; beyond it a fact becomes a pin
    /// (one per variable), so that a transaction comparing a tracked
    /// value in a loop cannot grow the chunk's memory without bound.
    max_facts: usize,
}

/// Facts kept per chunk at least, whatever its size (a fact is about 130
/// bytes).
const MIN_MAX_FACTS: usize = 1 << 16;

/// Facts kept per planned transaction of a chunk, above [`MIN_MAX_FACTS`].
const FACTS_PER_TX: usize = 16;

/// Tags one call frame holds at most; a value that would be tagged beyond
/// it is pinned instead. Real contracts hold a handful of copies of a
/// loaded value; the bound keeps the per-instruction scans of a frame's
/// tags short whatever the bytecode does.
const MAX_FRAME_TAGS: usize = 32;

impl SlotVars {
    /// Variables for a chunk of about `txs` transactions, tracked or not.
    pub(crate) fn new(enabled: bool, txs: usize) -> Self {
        if !enabled {
            return Self::default();
        }
        // Sized for two slots and four facts per transaction (a token
        // transfer), so that the chunk does not rehash as it runs.
        Self {
            enabled,
            index: FxHashMap::with_capacity_and_hasher(2 * txs, Default::default()),
            vars: Vec::with_capacity(2 * txs),
            facts: Vec::with_capacity(4 * txs),
            tx: 0,
            max_facts: MIN_MAX_FACTS.max(txs.saturating_mul(FACTS_PER_TX)),
        }
    }

    /// Sets the executing transaction.
    pub(crate) fn start(&mut self, tx: usize) {
        self.tx = tx;
    }

    /// Registers a pre-block read of `slot` that returned `value` (the
    /// first one counts).
    pub(crate) fn register(&mut self, address: Address, slot: U256, value: U256) {
        if !self.enabled {
            return;
        }
        let next = self.vars.len() as VarId;
        let tx = self.tx;
        self.index.entry((address, slot)).or_insert_with(|| {
            self.vars.push(SlotVar {
                address,
                slot,
                base: value,
                first_tx: tx,
                pinned: false,
            });
            next
        });
    }

    fn var(&self, address: Address, slot: U256) -> Option<VarId> {
        if self.index.is_empty() {
            return None;
        }
        self.index.get(&(address, slot)).copied()
    }

    /// Whether the pre-block read of `slot` became a variable (its
    /// staleness is then the check's shift, not a conflict).
    pub(crate) fn tracks(&self, address: Address, slot: U256) -> bool {
        self.var(address, slot).is_some()
    }

    /// Records a fact of the executing transaction. Facts come in
    /// execution order, so after a variable's first pin nothing of it can
    /// break earlier: later facts are dropped. Past the chunk's limit a
    /// fact is recorded as a pin.
    fn record(&mut self, var: VarId, fact: Fact) {
        let limit = self.facts.len() >= self.max_facts;
        let Some(v) = self.vars.get_mut(var as usize) else {
            return;
        };
        if v.pinned {
            return;
        }
        let fact = if limit { Fact::Pinned } else { fact };
        if fact == Fact::Pinned {
            v.pinned = true;
        }
        self.facts.push((var, self.tx, fact));
    }

    fn pin(&mut self, var: VarId) {
        self.record(var, Fact::Pinned);
    }

    /// The variables, in the order the chunk first read them.
    pub(crate) fn vars(&self) -> &[SlotVar] {
        &self.vars
    }

    /// Pins the variables of accounts whose storage the chunk cleared
    /// (SELFDESTRUCT, a create over them): their final values are no
    /// longer the ones read plus something. Pinned from the first reader.
    pub(crate) fn pin_wiped(&mut self, wiped: &FxHashSet<Address>) {
        if wiped.is_empty() {
            return;
        }
        for (var, v) in self.vars.iter().enumerate() {
            if wiped.contains(&v.address) {
                self.facts.push((var as VarId, v.first_tx, Fact::Pinned));
            }
        }
    }

    /// Number of recorded facts.
    pub(crate) fn facts_len(&self) -> usize {
        self.facts.len()
    }

    /// The first transaction whose facts among `range` (indices into the
    /// recorded facts, so that parts can be checked on several threads)
    /// break when each variable moves by its entry in `shifts` (zero: it
    /// does not move); `None` if all hold.
    pub(crate) fn first_broken(&self, shifts: &[U256], range: Range<usize>) -> Option<usize> {
        self.facts
            .get(range)
            .unwrap_or_default()
            .iter()
            .filter(|(var, _, fact)| {
                shifts
                    .get(*var as usize)
                    .is_some_and(|delta| !delta.is_zero() && !fact.holds(*delta))
            })
            .map(|(_, tx, _)| *tx)
            .min()
    }
}

/// A database that keeps the tracked slots of its chunk.
pub(crate) trait TracksSlots {
    fn slot_vars(&mut self) -> &mut SlotVars;
}

/// What `step` left for `step_end`, which sees the result.
#[derive(Clone, Copy, Debug, Default)]
enum Pending {
    #[default]
    Nothing,
    /// A load: tag the result if the slot is tracked.
    Load { address: Address, key: U256 },
    /// A store of `value` (tagged `tag`): the slot's original and current
    /// value before the store, if the journal held the slot.
    Store {
        address: Address,
        key: U256,
        value: U256,
        tag: Option<Tag>,
        before: Option<(U256, U256)>,
    },
    /// A fact whose result is on the stack after the operation.
    Fact {
        var: VarId,
        op: u8,
        args: [Operand; 2],
    },
}

/// The inspector that tags values derived from tracked slots (module
/// docs). Tags live per call frame (by journal depth) as positions from
/// the bottom of that frame's stack; most frames hold none, and a step
/// with no tag anywhere costs one comparison.
///
/// It also notes whether the transaction ran `BALANCE` or `SELFBALANCE`
/// (the only instructions that read a balance of an account without code
/// as a number), for the chunks' balance shifts (`chunks::shift`); with `slots`
/// off that is all it does.
#[derive(Debug, Default)]
pub(crate) struct DeltaTracker {
    /// Tags slot values (off: only notes balance reads).
    pub(crate) slots: bool,
    /// The transaction ran `BALANCE` or `SELFBALANCE`.
    pub(crate) balance_read: bool,
    frames: Vec<Vec<(usize, Tag)>>,
    /// Tags over all frames.
    count: usize,
    pending: Pending,
    /// The frame (journal depth) `highest` describes.
    depth: usize,
    /// The highest tagged position of that frame.
    highest: Option<usize>,
}

/// How deep into the stack `op` reads: its inputs, or the position a
/// `DUP` copies or a `SWAP` exchanges (`usize::MAX`: unknown, or deeper).
#[inline(always)]
fn reach(op: u8) -> usize {
    match op {
        opcode::DUP1..=opcode::DUP16 => usize::from(op - opcode::DUP1) + 1,
        opcode::SWAP1..=opcode::SWAP16 => usize::from(op - opcode::SWAP1) + 2,
        opcode::DUPN | opcode::SWAPN | opcode::EXCHANGE => usize::MAX,
        _ => OPCODE_INFO[usize::from(op)].map_or(usize::MAX, |i| usize::from(i.inputs())),
    }
}

impl DeltaTracker {
    /// An inspector that tags slot values only if `slots`.
    pub(crate) fn new(slots: bool) -> Self {
        Self {
            slots,
            ..Self::default()
        }
    }

    /// Forgets the previous transaction.
    pub(crate) fn start_tx(&mut self) {
        self.balance_read = false;
        self.depth = usize::MAX;
        self.highest = None;
        self.frames.clear();
        self.count = 0;
        self.pending = Pending::Nothing;
    }

    /// Makes `depth` the current frame: frames above it have returned.
    fn enter(&mut self, depth: usize) {
        self.depth = depth;
        if self.frames.len() > depth + 1 {
            for frame in self.frames.drain(depth + 1..) {
                self.count -= frame.len();
            }
        }
        if self.frames.len() < depth + 1 {
            self.frames.resize_with(depth + 1, Vec::new);
        }
    }

    /// Recomputes `highest` for the current frame.
    fn refresh_highest(&mut self) {
        self.highest = self
            .frames
            .get(self.depth)
            .and_then(|frame| frame.iter().map(|(p, _)| *p).max());
    }

    fn frame(&mut self) -> &mut Vec<(usize, Tag)> {
        if self.frames.is_empty() {
            self.frames.push(Vec::new());
        }
        let last = self.frames.len() - 1;
        &mut self.frames[last]
    }

    /// Removes and returns the tag at `position` of the current frame.
    fn take(&mut self, position: usize) -> Option<Tag> {
        let frame = self.frame();
        let i = frame.iter().position(|(p, _)| *p == position)?;
        let (_, tag) = frame.swap_remove(i);
        self.count -= 1;
        Some(tag)
    }

    fn get(&mut self, position: usize) -> Option<Tag> {
        self.frame()
            .iter()
            .find(|(p, _)| *p == position)
            .map(|(_, t)| *t)
    }

    fn put(&mut self, position: usize, tag: Tag) {
        self.frame().push((position, tag));
        self.count += 1;
    }

    /// Tags a new value (a load, a copy), or pins its variable when the
    /// frame holds [`MAX_FRAME_TAGS`] already.
    fn put_new(&mut self, position: usize, tag: Tag, vars: &mut SlotVars) {
        if self.frame().len() >= MAX_FRAME_TAGS {
            vars.pin(tag.var);
        } else {
            self.put(position, tag);
        }
    }

    /// Pins the tags at `from` and above in the current frame.
    fn pin_from(&mut self, from: usize, vars: &mut SlotVars) {
        let frame = self.frame();
        let mut pinned = Vec::new();
        frame.retain(|(p, tag)| {
            let keep = *p < from;
            if !keep {
                pinned.push(tag.var);
            }
            keep
        });
        self.count -= pinned.len();
        for var in pinned {
            vars.pin(var);
        }
    }

    #[inline(never)]
    fn step_tagged<DB>(
        &mut self,
        interp: &Interpreter<EthInterpreter>,
        ctx: &mut Eip7610Context<DB>,
    ) where
        DB: Database + StorageProbe + TracksSlots,
    {
        let op = interp.bytecode.opcode();
        self.enter(ctx.journaled_state.depth());
        let stack = interp.stack.data();
        let len = stack.len();
        if op != opcode::SLOAD && op != opcode::SSTORE {
            // Most instructions run with tags deeper in the stack than
            // they reach: nothing to do.
            let floor = len.saturating_sub(reach(op));
            if self.frame().iter().all(|(p, _)| *p < floor) {
                return;
            }
        }
        let top = |n: usize| len.checked_sub(n + 1).map(|i| (i, stack[i]));
        let vars = ctx.journaled_state.database().slot_vars();
        // Tags above the stack would be a tracking bug: pin, never guess.
        if self.frame().iter().any(|(p, _)| *p >= len) {
            self.pin_from(len, vars);
        }
        match op {
            opcode::SLOAD => {
                let Some((i, key)) = top(0) else { return };
                if let Some(tag) = self.take(i) {
                    vars.pin(tag.var);
                }
                self.pending = Pending::Load {
                    address: interp.input.target_address(),
                    key,
                };
            }
            opcode::SSTORE => {
                let (Some((k, key)), Some((v, value))) = (top(0), top(1)) else {
                    return;
                };
                if let Some(tag) = self.take(k) {
                    vars.pin(tag.var);
                }
                let tag = self.take(v);
                let address = interp.input.target_address();
                let before = ctx
                    .journaled_state
                    .0
                    .state
                    .get(&address)
                    .and_then(|account| account.storage.get(&key))
                    .map(|slot| (slot.original_value, slot.present_value));
                self.pending = Pending::Store {
                    address,
                    key,
                    value,
                    tag,
                    before,
                };
            }
            opcode::DUP1..=opcode::DUP16 => {
                let n = usize::from(op - opcode::DUP1);
                if let Some((i, _)) = top(n) {
                    if let Some(tag) = self.get(i) {
                        self.put_new(len, tag, vars);
                    }
                }
            }
            opcode::SWAP1..=opcode::SWAP16 => {
                let n = usize::from(op - opcode::SWAP1) + 1;
                if let (Some((a, _)), Some((b, _))) = (top(0), top(n)) {
                    let (ta, tb) = (self.take(a), self.take(b));
                    if let Some(tag) = ta {
                        self.put(b, tag);
                    }
                    if let Some(tag) = tb {
                        self.put(a, tag);
                    }
                }
            }
            // A dropped value decides nothing.
            opcode::POP => {
                if let Some((i, _)) = top(0) {
                    self.take(i);
                }
            }
            opcode::JUMPI => {
                let (Some((d, _)), Some((c, cond))) = (top(0), top(1)) else {
                    return;
                };
                if let Some(tag) = self.take(d) {
                    vars.pin(tag.var);
                }
                if let Some(tag) = self.take(c) {
                    vars.record(
                        tag.var,
                        Fact::Gave {
                            op: opcode::ISZERO,
                            args: [
                                Operand::tagged(cond, Some(tag)),
                                Operand::constant(U256::ZERO),
                            ],
                            out: U256::from(u8::from(cond.is_zero())),
                        },
                    );
                }
            }
            _ => match OPCODE_INFO[usize::from(op)] {
                Some(info) if EVALUATED[usize::from(op)] => {
                    self.arithmetic(op, usize::from(info.inputs()), &top, vars);
                }
                // Anything else: its tagged inputs are used as they are;
                // its outputs are untagged. Unknown instructions (and
                // DUPN, SWAPN, EXCHANGE, which reach below their inputs)
                // pin the whole frame.
                Some(info) if !matches!(op, opcode::DUPN | opcode::SWAPN | opcode::EXCHANGE) => {
                    self.pin_from(len.saturating_sub(usize::from(info.inputs())), vars);
                }
                _ => self.pin_from(0, vars),
            },
        }
    }

    /// A pure operation on stack values: tags carried through `ADD`,
    /// `SUB` and `NOT`, cancelled when `δ` cancels, recorded as a fact
    /// otherwise.
    fn arithmetic(
        &mut self,
        op: u8,
        inputs: usize,
        top: &dyn Fn(usize) -> Option<(usize, U256)>,
        vars: &mut SlotVars,
    ) {
        let (Some((i, a)), second) = (top(0), top(1)) else {
            return;
        };
        let ta = self.take(i);
        let (b, tb) = match (inputs, second) {
            (2, Some((j, b))) => (b, self.take(j)),
            _ => (U256::ZERO, None),
        };
        // The result replaces the lowest input.
        let out = i + 1 - inputs.min(i + 1);
        let tag = |var, neg| Tag { var, neg };
        match (op, ta, tb) {
            (_, None, None) => {}
            (opcode::ADD, Some(t), None) | (opcode::ADD, None, Some(t)) => self.put(out, t),
            (opcode::SUB, Some(t), None) => self.put(out, t),
            (opcode::SUB, None, Some(t)) => self.put(out, tag(t.var, !t.neg)),
            (opcode::NOT, Some(t), _) => self.put(out, tag(t.var, !t.neg)),
            // +x - +x and +x + -x do not move.
            (opcode::SUB, Some(x), Some(y)) if x == y => {}
            (opcode::ADD, Some(x), Some(y)) if x.var == y.var && x.neg != y.neg => {}
            (_, Some(x), Some(y)) if x.var != y.var => {
                vars.pin(x.var);
                vars.pin(y.var);
            }
            (_, Some(t), _) | (_, None, Some(t)) => {
                self.pending = Pending::Fact {
                    var: t.var,
                    op,
                    args: [Operand::tagged(a, ta), Operand::tagged(b, tb)],
                };
            }
        }
    }

    #[inline(never)]
    fn step_end_tagged<DB>(
        &mut self,
        interp: &Interpreter<EthInterpreter>,
        ctx: &mut Eip7610Context<DB>,
    ) where
        DB: Database + StorageProbe + TracksSlots,
    {
        let pending = std::mem::take(&mut self.pending);
        let stack = interp.stack.data();
        match pending {
            Pending::Nothing => {}
            Pending::Load { address, key } => {
                let vars = ctx.journaled_state.database().slot_vars();
                if let (Some(var), Some(top)) = (vars.var(address, key), stack.len().checked_sub(1))
                {
                    self.put_new(top, Tag { var, neg: false }, vars);
                }
            }
            Pending::Store {
                address,
                key,
                value,
                tag,
                before,
            } => {
                // A first access loads the slot during the store: its
                // current value before the store was the original.
                let before = before.or_else(|| {
                    ctx.journaled_state
                        .0
                        .state
                        .get(&address)
                        .and_then(|account| account.storage.get(&key))
                        .map(|slot| (slot.original_value, slot.original_value))
                });
                let vars = ctx.journaled_state.database().slot_vars();
                let target = vars.var(address, key);
                match (target, tag, before) {
                    (Some(var), Some(t), Some((original, current)))
                        if t == (Tag { var, neg: false }) =>
                    {
                        // Gas and refund depend on which of the three are
                        // zero (their equalities do not move with δ).
                        let values = [original, current, value];
                        for (i, v) in values.into_iter().enumerate() {
                            // One fact per distinct value (same tag, same
                            // value: the same fact).
                            if values[..i].contains(&v) {
                                continue;
                            }
                            vars.record(
                                var,
                                Fact::Gave {
                                    op: opcode::ISZERO,
                                    args: [
                                        Operand::tagged(v, Some(t)),
                                        Operand::constant(U256::ZERO),
                                    ],
                                    out: U256::from(u8::from(v.is_zero())),
                                },
                            );
                        }
                    }
                    _ => {
                        if let Some(var) = target {
                            vars.pin(var);
                        }
                        if let Some(t) = tag {
                            vars.pin(t.var);
                        }
                    }
                }
            }
            Pending::Fact { var, op, args } => {
                if let Some(out) = stack.last() {
                    ctx.journaled_state.database().slot_vars().record(
                        var,
                        Fact::Gave {
                            op,
                            args,
                            out: *out,
                        },
                    );
                }
            }
        }
    }
}

impl<DB> Inspector<Eip7610Context<DB>, EthInterpreter> for DeltaTracker
where
    DB: Database + StorageProbe + TracksSlots,
{
    #[inline(always)]
    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, ctx: &mut Eip7610Context<DB>) {
        let op = interp.bytecode.opcode();
        if op == opcode::BALANCE || op == opcode::SELFBALANCE {
            self.balance_read = true;
        }
        if !self.slots {
            return;
        }
        if op != opcode::SLOAD && op != opcode::SSTORE {
            if self.count == 0 {
                return;
            }
            // In the frame last looked at, with every tag below what the
            // instruction reads: nothing to do (the common case while a
            // tagged value waits on the stack).
            if ctx.journaled_state.depth() == self.depth
                && self
                    .highest
                    .is_none_or(|p| p.saturating_add(reach(op)) < interp.stack.len())
            {
                return;
            }
        }
        self.step_tagged(interp, ctx);
        self.refresh_highest();
    }

    #[inline(always)]
    fn step_end(&mut self, interp: &mut Interpreter<EthInterpreter>, ctx: &mut Eip7610Context<DB>) {
        if matches!(self.pending, Pending::Nothing) {
            return;
        }
        self.step_end_tagged(interp, ctx);
        self.refresh_highest();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gave(op: u8, a: Operand, b: Operand) -> Fact {
        Fact::Gave {
            op,
            args: [a, b],
            out: eval(op, a.value, b.value).expect("supported"),
        }
    }

    #[test]
    fn facts_hold_until_the_decision_flips() {
        let x = |v: u64| Operand::tagged(U256::from(v), Some(Tag { var: 0, neg: false }));
        let c = |v: u64| Operand::constant(U256::from(v));
        // balance (100) < amount (150): true; holds while the balance
        // moves by less than 50.
        let short = gave(opcode::LT, x(100), c(150));
        assert!(short.holds(U256::ZERO));
        assert!(short.holds(U256::from(49)));
        assert!(!short.holds(U256::from(50)));
        // A move down wraps like the EVM: 100 - 101 is huge, not < 150.
        assert!(!short.holds(U256::ZERO.wrapping_sub(U256::from(101))));
        // Zero-ness of an SSTORE operand.
        let zero = gave(opcode::ISZERO, x(0), c(0));
        assert!(zero.holds(U256::ZERO));
        assert!(!zero.holds(U256::from(1)));
        // A negated operand moves the other way: 10 - x, with x = 3.
        let neg = Operand::tagged(U256::from(7), Some(Tag { var: 0, neg: true }));
        let fact = gave(opcode::GT, neg, c(5));
        assert!(fact.holds(U256::from(1)));
        assert!(!fact.holds(U256::from(2)));
        assert!(Fact::Pinned.holds(U256::ZERO));
        assert!(!Fact::Pinned.holds(U256::from(1)));
    }

    #[test]
    fn eval_matches_the_evm_on_edge_cases() {
        let u = U256::from;
        let max = U256::MAX;
        assert_eq!(eval(opcode::ADD, max, u(2)), Some(u(1)));
        assert_eq!(eval(opcode::SUB, u(1), u(2)), Some(max));
        assert_eq!(eval(opcode::DIV, u(7), U256::ZERO), Some(U256::ZERO));
        assert_eq!(eval(opcode::MOD, u(7), U256::ZERO), Some(U256::ZERO));
        assert_eq!(eval(opcode::DIV, u(7), u(2)), Some(u(3)));
        assert_eq!(eval(opcode::SLT, max, u(0)), Some(u(1)));
        assert_eq!(eval(opcode::LT, max, u(0)), Some(u(0)));
        assert_eq!(eval(opcode::SGT, u(0), max), Some(u(1)));
        assert_eq!(eval(opcode::SHL, u(4), u(1)), Some(u(16)));
        assert_eq!(eval(opcode::SHL, u(256), u(1)), Some(U256::ZERO));
        assert_eq!(eval(opcode::SHR, u(1), u(16)), Some(u(8)));
        assert_eq!(eval(opcode::NOT, U256::ZERO, U256::ZERO), Some(max));
        assert_eq!(eval(opcode::EXP, u(2), u(2)), None);
        for op in 0..=255u8 {
            assert_eq!(
                EVALUATED[usize::from(op)],
                eval(op, u(1), u(1)).is_some(),
                "opcode {op:#x}"
            );
        }
    }

    #[test]
    fn nothing_is_recorded_after_a_pin_and_facts_are_bounded() {
        let mut vars = SlotVars::new(true, 1);
        vars.max_facts = 3;
        let address = Address::repeat_byte(2);
        vars.register(address, U256::from(1), U256::from(100));
        vars.register(address, U256::from(2), U256::from(100));
        let (a, b) = (0, 1);
        let x = |var| Operand::tagged(U256::from(100), Some(Tag { var, neg: false }));
        let lt = |var| gave(opcode::LT, x(var), Operand::constant(U256::from(150)));
        vars.start(1);
        vars.record(a, lt(a));
        vars.pin(a);
        vars.start(2);
        vars.record(a, lt(a));
        vars.pin(a);
        assert_eq!(vars.facts_len(), 2, "a's facts after its pin are dropped");
        // A shift that keeps the comparison breaks a's pin at 1.
        let all = |v: &SlotVars| 0..v.facts_len();
        assert_eq!(
            vars.first_broken(&[U256::from(1), U256::ZERO], all(&vars)),
            Some(1)
        );
        // b's second fact is past the bound: a pin, then nothing more.
        vars.start(3);
        vars.record(b, lt(b));
        vars.start(4);
        vars.record(b, lt(b));
        vars.record(b, lt(b));
        assert_eq!(vars.facts_len(), 4);
        assert_eq!(
            vars.first_broken(&[U256::ZERO, U256::from(1)], all(&vars)),
            Some(4)
        );
        assert_eq!(
            vars.first_broken(&[U256::ZERO, U256::ZERO], all(&vars)),
            None
        );
        assert!(vars.tracks(address, U256::from(2)));
        assert!(!vars.tracks(address, U256::from(3)));
    }

    #[test]
    fn the_first_broken_fact_names_its_transaction() {
        let mut vars = SlotVars::new(true, 4);
        let address = Address::repeat_byte(1);
        vars.register(address, U256::from(7), U256::from(100));
        vars.register(address, U256::from(7), U256::from(999)); // first read counts
        assert_eq!(vars.vars()[0].base, U256::from(100));
        let var = vars.var(address, U256::from(7)).expect("registered");
        let x = Operand::tagged(U256::from(100), Some(Tag { var, neg: false }));
        vars.start(2);
        vars.record(var, gave(opcode::LT, x, Operand::constant(U256::from(150))));
        vars.start(5);
        vars.pin(var);
        let all = 0..vars.facts_len();
        assert_eq!(vars.first_broken(&[U256::ZERO], all.clone()), None);
        assert_eq!(vars.first_broken(&[U256::from(10)], all.clone()), Some(5));
        assert_eq!(vars.first_broken(&[U256::from(60)], all.clone()), Some(2));
        // Checked in parts: the fact of transaction 2 alone.
        assert_eq!(vars.first_broken(&[U256::from(10)], 0..1), None);
        assert_eq!(vars.first_broken(&[U256::from(10)], 1..2), Some(5));
        // A second variable that does not move breaks nothing; one that
        // was pinned breaks at its first reader when its account is wiped.
        vars.start(7);
        vars.register(address, U256::from(8), U256::ONE);
        let both = [U256::ZERO, U256::from(3)];
        assert_eq!(vars.first_broken(&both, 0..vars.facts_len()), None);
        vars.pin_wiped(&[address].into_iter().collect());
        assert_eq!(vars.first_broken(&both, 0..vars.facts_len()), Some(7));
        // Untracked chunks register nothing.
        let mut off = SlotVars::new(false, 4);
        off.register(address, U256::from(7), U256::ONE);
        assert!(off.vars().is_empty());
    }
}
