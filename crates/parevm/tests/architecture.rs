//! Architecture rules of the workspace, checked on the source text.
//!
//! Dependencies run one way: between crates ([`CRATE_DEPENDENCIES`]: the CLI
//! uses the engine, the database and the RPC client, never the reverse), and
//! inside the engine (`crates/parevm/src`) from the entry down ([`LAYERS`]):
//! **entry** (`lib.rs`: picks a path, re-exports) -> **paths** (Block-STM,
//! chunks, sequential, choosing between them, finishing a block, whole blocks)
//! -> **shared** parts (the EVM, the worker pool, outputs, storage, the trie)
//! -> **vocabulary** (indices, errors, inputs, chain rules). A module may use
//! its own layer or a lower one: a path can change without touching the others,
//! and the shared parts cannot come to depend on one path. Every top-level
//! module must be in the table, and the table must list only modules that
//! exist, so that it stays a true map of the crate.
//!
//! * **No module imports from `lib.rs`.** `crate::X` where `X` is not a module
//!   (an item that `lib.rs` defines or re-exports) ties a module to the top of
//!   the crate: a cycle hidden behind a re-export. Name the defining module.
//! * **No cycles**, between top-level modules or between the modules of one
//!   folder, in the engine, the CLI, `parevm-db`, `parevm-rpc` and
//!   `parevm-testkit` (if it exists):
//!   modules in a cycle can only be understood and changed together.
//! * **Only `evm` runs revm.** Outside `src/evm/`, `revm::` paths only name
//!   plain data ([`REVM_DATA_TYPES`]); handlers, inspectors, the journal,
//!   `Database`, results stay in one module, so a revm upgrade touches one place.
//!
//! `#[cfg(test)]` code is skipped: tests may import what they need.
//!
//! How: files are lexed without comments and char literals, `#[cfg(test)]`
//! items are dropped, and every `use` tree and every path starting with
//! `crate`, `super`, `self` or `revm` is collected. A path into the crate
//! depends on its longest prefix that is a module (a file: `a.rs` or
//! `a/mod.rs` is `a`, `a/b.rs` is `a::b`). The analysis works on
//! `(path, text)` pairs: the `synthetic_*` tests run it on small in-memory
//! trees to show that each rule catches what it should.
//!
//! Run: `cargo test -p parevm --test architecture`, or with plain rustc:
//! `rustc --edition 2021 --test crates/parevm/tests/architecture.rs -o /tmp/arch && /tmp/arch`
//! (with `ARCH_ROOT=<path of crates/parevm>` if it cannot find the sources).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::{fmt, fs};

/// The layers of the engine, highest first: (name, top-level modules). A module
/// may use modules of its own layer or a lower one; `entry` is `lib.rs` alone.
/// A new top-level module goes here.
const LAYERS: &[(&str, &str)] = &[
    ("entry", ""),
    ("paths", "block_stm chunks sequential choose finish block"),
    ("shared", "evm stm pool output storage trie"),
    ("vocabulary", "types error input chain sync"),
];

/// The top-level module of the engine that may use all of revm.
const EVM_MODULE: &str = "evm";

/// Outside [`EVM_MODULE`], a `revm::` path must be one of these or start with
/// one of them and `::`: they name data, not the machine that runs it.
const REVM_DATA_TYPES: &[&str] = &[
    "revm::primitives",
    "revm::bytecode",
    "revm::context::TxEnv",
    "revm::context::BlockEnv",
    "revm::context::CfgEnv",
    "revm::context::either",
    "revm::context_interface::Transaction",
    "revm::context_interface::block::BlobExcessGasAndPrice",
    "revm::state::AccountInfo",
    "revm::state::Bytecode",
    "revm::state::EvmStorageSlot",
];

/// Files outside [`EVM_MODULE`] allowed more of revm than plain data, with
/// the reason. The list is closed: a new file that uses revm's machinery
/// fails the test until it moves into `evm/` or is added here.
const REVM_EXCEPTIONS: &[(&str, &str)] = &[];

/// A source file: its path relative to `src` (with `/`), and its text.
type Source = (String, String);

/// The engine crate's folder (`crates/parevm`), under cargo or plain rustc.
fn crate_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ARCH_ROOT") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = option_env!("CARGO_MANIFEST_DIR") {
        return PathBuf::from(dir);
    }
    // Plain rustc: this file is `<crate>/tests/architecture.rs`.
    let file = fs::canonicalize(file!()).unwrap_or_else(|_| PathBuf::from(file!()));
    let dir = file.ancestors().nth(2).unwrap_or(Path::new("."));
    let found = dir.join("src/lib.rs").is_file();
    let shown = dir.display();
    assert!(found, "no sources at {shown}: set ARCH_ROOT=crates/parevm");
    dir.to_path_buf()
}

/// Every `.rs` file under `dir`, as (path relative to `dir`, text), sorted.
fn load_tree(dir: &Path) -> Vec<Source> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<Source>) {
        let entries = fs::read_dir(dir);
        let entries = entries.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for path in entries.flatten().map(|entry| entry.path()) {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            let rel = rel.to_string_lossy().replace('\\', "/");
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                if let Ok(text) = fs::read_to_string(&path) {
                    out.push((rel, text));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A token (an identifier or number, `::`, a string literal with its quotes,
/// or one punctuation character) and its line.
type Tok = (String, usize);

/// The tokens of a source text, without comments, char literals and the
/// quotes of lifetimes.
fn lex(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let is_word = |ch: char| ch.is_alphanumeric() || ch == '_';
    let find = |from: usize, stop: &dyn Fn(char) -> bool| (from..c.len()).find(|&k| stop(c[k]));
    let (mut toks, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        let (start, mut keep) = (i, true);
        // A string may start with `b` or `c`, then `r` and hashes; a char with `b`.
        let prefix = usize::from(matches!(at(i), 'b' | 'c'));
        let raw = usize::from(at(i + prefix) == 'r');
        let hashes = find(i + prefix + raw, &|ch| ch != '#').unwrap_or(c.len()) - i - prefix - raw;
        let hashes = hashes * raw;
        let tick = i + usize::from(at(i) == 'b');
        if at(i + prefix + raw + hashes) == '"' {
            i += prefix + raw + hashes + 1;
            while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#')) {
                i += 1 + usize::from(c[i] == '\\' && raw == 0);
            }
            i += 1 + hashes;
        } else if at(i) == '/' && at(i + 1) == '/' {
            (keep, i) = (false, find(i, &|ch| ch == '\n').unwrap_or(c.len()));
        } else if at(i) == '/' && at(i + 1) == '*' {
            (keep, i) = (false, i + 2);
            let mut depth = 1;
            while i < c.len() && depth > 0 {
                let pair = (c[i], at(i + 1));
                let (open, close) = (pair == ('/', '*'), pair == ('*', '/'));
                depth += i32::from(open) - i32::from(close);
                i += 1 + usize::from(open || close);
            }
        } else if at(tick) == '\'' {
            // 'x', '\n', b'x' are chars; of a lifetime 'a only the quote goes.
            (keep, i) = (false, tick + 1);
            if at(i) == '\\' {
                i = find(i + 2, &|ch| ch == '\'').map_or(c.len(), |k| k + 1);
            } else if at(i + 1) == '\'' {
                i += 2;
            }
        } else if is_word(c[i]) {
            i = find(i, &|ch| !is_word(ch)).unwrap_or(c.len());
        } else {
            keep = !c[i].is_whitespace();
            i += 1 + usize::from(at(i) == ':' && at(i + 1) == ':');
        }
        let end = i.min(c.len());
        if keep {
            toks.push((c[start..end].iter().collect(), line));
        }
        line += c[start..end].iter().filter(|&&ch| ch == '\n').count();
    }
    toks
}

fn text(toks: &[Tok], i: usize) -> &str {
    toks.get(i).map_or("", |t| t.0.as_str())
}

fn is_ident(word: &str) -> bool {
    word.starts_with(|ch: char| ch.is_alphabetic() || ch == '_')
}

/// Index just past the bracket group that opens at `i` (kinds nest properly).
fn skip_group(toks: &[Tok], i: usize) -> usize {
    let mut depth = 0;
    for (j, (tok, _)) in toks.iter().enumerate().skip(i) {
        depth += i32::from(matches!(tok.as_str(), "(" | "[" | "{"));
        depth -= i32::from(matches!(tok.as_str(), ")" | "]" | "}"));
        if depth == 0 {
            return j + 1;
        }
    }
    toks.len()
}

/// Index just past the item starting at `i`: after its `;` or its `{ ... }`.
fn item_end(toks: &[Tok], mut i: usize) -> usize {
    while i < toks.len() {
        match text(toks, i) {
            ";" => return i + 1,
            "{" => return skip_group(toks, i),
            "(" | "[" => i = skip_group(toks, i),
            _ => i += 1,
        }
    }
    i
}

/// A `#[cfg(test)] mod name;`: the name and the `#[path]`, if any.
type TestMod = (String, Option<String>);

/// The tokens without `#[cfg(test)]` items, the `#[cfg(test)] mod x;` that
/// they declared, and whether the whole file is `#![cfg(test)]`.
fn drop_test_code(toks: &[Tok]) -> (Vec<Tok>, Vec<TestMod>, bool) {
    let concat = |from: usize, to: usize| {
        toks[from..to.max(from)]
            .iter()
            .map(|t| t.0.as_str())
            .collect()
    };
    let (mut kept, mut mods, mut test_only, mut i) = (Vec::new(), Vec::new(), false, 0);
    while i < toks.len() {
        if text(toks, i) == "#" && text(toks, i + 1) == "!" && text(toks, i + 2) == "[" {
            test_only |= concat(i + 3, skip_group(toks, i + 2) - 1) == "cfg(test)";
        }
        let (start, mut is_test, mut path) = (i, false, None);
        while text(toks, i) == "#" && text(toks, i + 1) == "[" {
            let end = skip_group(toks, i + 1);
            let attr: String = concat(i + 2, end - 1);
            is_test |= attr == "cfg(test)";
            if let Some(file) = attr.strip_prefix("path=") {
                path = Some(file.trim_matches('"').to_string());
            }
            i = end;
        }
        if is_test {
            let end = item_end(toks, i);
            if text(toks, end - 1) == ";" && text(toks, end.wrapping_sub(3)) == "mod" {
                mods.push((text(toks, end - 2).to_string(), path));
            }
            i = end;
        } else {
            let next = i.max(start + 1).min(toks.len());
            kept.extend_from_slice(&toks[start..next]);
            i = next;
        }
    }
    (kept, mods, test_only)
}

/// A path: its line and segments.
type Leaf = (usize, Vec<String>);

/// Reads the path or `use` tree at `start` (after `prefix`) into `out`, one
/// leaf each: `a::{self, b as c, d::*}` gives `a`, `a::b`, `a::d::*`.
/// Returns the index after it.
fn path_tree(toks: &[Tok], start: usize, prefix: &[String], out: &mut Vec<Leaf>) -> usize {
    let (mut i, mut path) = (start, prefix.to_vec());
    i += usize::from(matches!(text(toks, i), "::" | "$"));
    loop {
        let word = text(toks, i);
        if word == "{" {
            i += 1;
            while i < toks.len() && text(toks, i) != "}" {
                i = path_tree(toks, i, &path, out);
                i += usize::from(text(toks, i) == ",");
            }
            return i + 1;
        }
        if !is_ident(word) && word != "*" {
            break;
        }
        if word != "self" || path.is_empty() {
            path.push(word.to_string());
        }
        i += 1;
        if text(toks, i) != "::" {
            break;
        }
        i += 1;
    }
    i += 2 * usize::from(text(toks, i) == "as");
    if !path.is_empty() {
        out.push((toks.get(start).map_or(0, |t| t.1), path));
    }
    i.max(start + 1)
}

/// A path found in a file: (line, as written, resolved). Paths into the crate
/// (`crate::`, `super::`, `self::`) are resolved from the file's module and
/// the inline `mod x { }` blocks around them; `revm` paths resolve to `None`.
type Found = (usize, String, Option<Vec<String>>);

fn scan(toks: &[Tok], module: &[String]) -> Vec<Found> {
    let (mut out, mut leaves) = (Vec::new(), Vec::new());
    let (mut inline, mut depth, mut i) = (Vec::new(), 0, 0);
    while i < toks.len() {
        let (word, prev) = (text(toks, i), text(toks, i.wrapping_sub(1)));
        let root = matches!(word, "crate" | "super" | "self" | "revm");
        if word == "use" && text(toks, i + 1) != "<" {
            i = path_tree(toks, i + 1, &[], &mut leaves);
        } else if root && text(toks, i + 1) == "::" && !matches!(prev, "::" | "in") {
            i = path_tree(toks, i, &[], &mut leaves);
        } else {
            if word == "{" {
                depth += 1;
                if text(toks, i.wrapping_sub(2)) == "mod" {
                    inline.push((prev.to_string(), depth));
                }
            } else if word == "}" {
                if inline.last().is_some_and(|m| m.1 == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            i += 1;
        }
        let mut here = module.to_vec();
        here.extend(inline.iter().map(|m| m.0.clone()));
        for (line, segs) in leaves.drain(..) {
            let ups = segs.iter().take_while(|s| *s == "super").count();
            let up = &here[..here.len().saturating_sub(ups)];
            let resolved = match segs[0].as_str() {
                "crate" => Some(segs[1..].to_vec()),
                "self" => Some([&here[..], &segs[1..]].concat()),
                "super" => Some([up, &segs[ups..]].concat()),
                "revm" if segs.len() > 1 => None,
                _ => continue,
            };
            out.push((line, segs.join("::"), resolved));
        }
    }
    out
}

/// The module of a file: the `root` file is `[]`, `a.rs` and `a/mod.rs` are
/// `[a]`, `a/b.rs` is `[a, b]`.
fn module_of(path: &str, root: &str) -> Vec<String> {
    let mut parts: Vec<String> = path.split('/').map(String::from).collect();
    let file = parts.pop().unwrap_or_default();
    if file != "mod.rs" && !(parts.is_empty() && file == root) {
        parts.push(file.trim_end_matches(".rs").to_string());
    }
    parts
}

fn show(module: &[String]) -> String {
    let name = module.join("::");
    if name.is_empty() {
        "crate root".to_string()
    } else {
        name
    }
}

/// A path in a file of module `from`; `to` is the module it depends on
/// (nothing for a `revm` path).
struct Ref {
    file: String,
    from: Vec<String>,
    line: usize,
    path: String,
    to: Vec<String>,
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: `{}`", self.file, self.line, self.path)
    }
}

/// A crate without its test code: its modules, its paths into itself
/// (`uses`) and its paths into revm.
struct Analysis {
    modules: BTreeSet<Vec<String>>,
    uses: Vec<Ref>,
    revm: Vec<Ref>,
}

/// Analyzes the files of a crate whose root file (`lib.rs`, `main.rs`) is `root`.
fn analyze(sources: &[Source], root: &str) -> Analysis {
    let (mut files, mut skip_files, mut skip_mods) = (Vec::new(), BTreeSet::new(), Vec::new());
    for (path, source) in sources {
        let (toks, test_mods, test_only) = drop_test_code(&lex(source));
        let module = module_of(path, root);
        let dir = Path::new(path).parent().unwrap_or(Path::new(""));
        if test_only {
            skip_files.insert(PathBuf::from(path));
        }
        for (name, attr) in test_mods {
            if let Some(file) = attr {
                skip_files.insert(dir.join(file));
            } else {
                skip_mods.push([module.clone(), vec![name]].concat());
            }
        }
        files.push((path, module, toks));
    }
    let test_mod = |m: &Vec<String>| skip_mods.iter().any(|s| m.starts_with(s));
    files.retain(|(path, m, _)| !skip_files.contains(Path::new(path)) && !test_mod(m));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.1.clone()).collect();
    let (mut uses, mut revm) = (Vec::new(), Vec::new());
    for (file, from, toks) in &files {
        for (line, path, resolved) in scan(toks, from) {
            let (file, from) = ((*file).clone(), from.clone());
            let r = Ref {
                file,
                from,
                line,
                path,
                to: Vec::new(),
            };
            let Some(mut to) = resolved else {
                revm.push(r);
                continue;
            };
            while !modules.contains(&to) && to.pop().is_some() {}
            uses.push(Ref { to, ..r });
        }
    }
    Analysis {
        modules,
        uses,
        revm,
    }
}

/// The rank of a top-level module's layer, and its description.
fn layer_of(module: &str) -> Option<(usize, String)> {
    let listed = |l: &(&str, &str)| l.1.split_whitespace().any(|m| m == module);
    let index = LAYERS.iter().position(listed)?;
    let rank = LAYERS.len() - 1 - index;
    Some((rank, format!("layer {rank} `{}`", LAYERS[index].0)))
}

/// Rule: every top-level module is in [`LAYERS`], which lists only modules.
fn table_violations(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let tops: BTreeSet<&String> = a.modules.iter().filter_map(|m| m.first()).collect();
    for top in tops.iter().filter(|top| layer_of(top).is_none()) {
        out.push(format!("module `{top}` is in no layer: add it to LAYERS"));
    }
    for name in LAYERS.iter().flat_map(|l| l.1.split_whitespace()) {
        if !tops.iter().any(|top| *top == name) {
            out.push(format!(
                "LAYERS lists `{name}`, but there is no {name}.rs or {name}/mod.rs"
            ));
        }
    }
    out
}

/// Rule: a module uses its own layer or lower ones.
fn layer_violations(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    for r in &a.uses {
        let from = r.from.first().and_then(|m| layer_of(m));
        let to = r.to.first().and_then(|m| layer_of(m));
        if let (Some((rank_from, from)), Some((rank_to, to))) = (from, to) {
            if rank_to > rank_from {
                let (f, t) = (&r.from[0], show(&r.to));
                out.push(format!(
                    "{r}: `{f}` ({from}) uses `{t}` ({to}), a higher layer"
                ));
            }
        }
    }
    out
}

/// Rule: no module imports from the crate root.
fn root_import_violations(a: &Analysis) -> Vec<String> {
    let rule = "names no module: an item of lib.rs (or a stale path); use its own module";
    let bad = a.uses.iter().filter(|r| r.to.is_empty());
    bad.filter(|r| !r.from.is_empty())
        .map(|r| format!("{r} {rule}"))
        .collect()
}

/// Edges between the children of one module: (from, to) -> first path making it.
type Graph<'a> = BTreeMap<(Vec<String>, Vec<String>), &'a Ref>;

/// The modules reachable from `from` in `graph`.
fn reach<'g>(graph: &'g Graph<'_>, from: &'g [String]) -> BTreeSet<&'g [String]> {
    let (mut seen, mut todo) = (BTreeSet::new(), vec![from]);
    while let Some(u) = todo.pop() {
        for (v, w) in graph.keys() {
            if v == u && seen.insert(w.as_slice()) {
                todo.push(w);
            }
        }
    }
    seen
}

/// Rule: no cycles among the children of any module (crate root included).
/// A path between descendants counts for the children they are in.
fn cycle_violations(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    for parent in &a.modules {
        let n = parent.len();
        let child = |m: &[String]| (m.len() > n && m.starts_with(parent)).then(|| m[..=n].to_vec());
        let mut graph = Graph::new();
        for r in &a.uses {
            if let (Some(u), Some(v)) = (child(&r.from), child(&r.to)) {
                if u != v {
                    graph.entry((u, v)).or_insert(r);
                }
            }
        }
        let mut reported = BTreeSet::new();
        for (u, _) in graph.keys() {
            let back = |v: &&[String]| reach(&graph, v).contains(u.as_slice());
            let cycle: BTreeSet<_> = reach(&graph, u).into_iter().filter(back).collect();
            if cycle.len() < 2 || !reported.insert(cycle.clone()) {
                continue;
            }
            let names: Vec<String> = cycle.iter().map(|m| show(m)).collect();
            let mut report = vec![format!(
                "cycle among {} (in {})",
                names.join(", "),
                show(parent)
            )];
            for ((v, w), r) in &graph {
                if cycle.contains(v.as_slice()) && cycle.contains(w.as_slice()) {
                    report.push(format!("{} -> {}: {r}", show(v), show(w)));
                }
            }
            out.push(report.join("\n      "));
        }
    }
    out
}

/// Rule: outside the `evm` module, `revm::` paths name plain data types only.
fn revm_violations(a: &Analysis) -> Vec<String> {
    let under = |p: &str, t: &str| {
        p.strip_prefix(t)
            .is_some_and(|r| r.is_empty() || r.starts_with("::"))
    };
    let data = |p: &str| REVM_DATA_TYPES.iter().any(|t| under(p, t));
    let rule = format!("only src/{EVM_MODULE}/ may use more of revm than REVM_DATA_TYPES");
    let excepted = |file: &str| {
        REVM_EXCEPTIONS
            .iter()
            .any(|(f, _reason)| file.starts_with(f))
    };
    let outside = a
        .revm
        .iter()
        .filter(|r| r.from.first().is_none_or(|m| m != EVM_MODULE))
        .filter(|r| !excepted(&r.file));
    outside
        .filter(|r| !data(&r.path))
        .map(|r| format!("{r}: {rule}"))
        .collect()
}

/// Runs `rule` on the crate at `src` (relative to `crates/parevm`).
fn check<F: Fn(&Analysis) -> Vec<String>>(src: &str, root: &str, rule: F) {
    let dir = crate_dir().join(src);
    let found = rule(&analyze(&load_tree(&dir), root));
    let (name, n, list) = (std::any::type_name::<F>(), found.len(), found.join("\n  "));
    let dir = dir.display();
    assert!(n == 0, "{name} on {dir}: {n} violation(s)\n  {list}\n");
}

#[test]
fn engine_modules_are_all_in_the_layer_table() {
    check("src", "lib.rs", table_violations);
}

#[test]
fn engine_layers_point_downwards() {
    check("src", "lib.rs", layer_violations);
}

#[test]
fn engine_modules_do_not_import_from_lib_rs() {
    check("src", "lib.rs", root_import_violations);
}

#[test]
fn engine_has_no_cycles() {
    check("src", "lib.rs", cycle_violations);
}

#[test]
fn only_evm_runs_revm() {
    check("src", "lib.rs", revm_violations);
}

#[test]
fn cli_has_no_cycles() {
    check("../parevm-cli/src", "main.rs", cycle_violations);
}

#[test]
fn testkit_has_no_cycles() {
    if crate_dir().join("../parevm-testkit/src").is_dir() {
        check("../parevm-testkit/src", "lib.rs", cycle_violations);
    }
}

#[test]
fn state_database_has_no_cycles() {
    check("../parevm-db/src", "lib.rs", cycle_violations);
    check("../parevm-db/src", "lib.rs", root_import_violations);
}

#[test]
fn rpc_client_has_no_cycles() {
    check("../parevm-rpc/src", "lib.rs", cycle_violations);
    check("../parevm-rpc/src", "lib.rs", root_import_violations);
}

/// The workspace's crates and the workspace crates each may depend on
/// (outside its tests): the engine on none, the state database and the RPC
/// client on the engine alone (neither knows the other), the test kit on
/// the engine and the database, the CLI on all.
const CRATE_DEPENDENCIES: &[(&str, &[&str])] = &[
    ("parevm", &[]),
    ("parevm-db", &["parevm"]),
    ("parevm-rpc", &["parevm"]),
    ("parevm-testkit", &["parevm", "parevm-db"]),
    (
        "parevm-cli",
        &["parevm", "parevm-db", "parevm-rpc", "parevm-testkit"],
    ),
];

/// The workspace crates named in the `[dependencies]` table of a manifest.
fn workspace_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_dependencies = false;
    let mut found = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if !in_dependencies {
            continue;
        }
        let name = line.split(['=', ' ']).next().unwrap_or("");
        if (name == "parevm" || name.starts_with("parevm-")) && line.contains("path") {
            found.insert(name.to_string());
        }
    }
    found
}

#[test]
fn crate_dependencies_point_one_way() {
    let mut wrong = Vec::new();
    for (name, allowed) in CRATE_DEPENDENCIES {
        let path = crate_dir().join("..").join(name).join("Cargo.toml");
        let manifest =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for dependency in workspace_dependencies(&manifest) {
            if !allowed.contains(&dependency.as_str()) {
                wrong.push(format!("{name} depends on {dependency}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "crate dependencies against the grain: {wrong:?}"
    );
}

#[test]
fn synthetic_manifests_show_their_workspace_dependencies() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\nparevm = { path = \"../parevm\" }\nparevm-db = { version = \"0.1\", path = \"../parevm-db\" }\nserde = \"1\"\n[dev-dependencies]\nparevm-testkit = { path = \"../parevm-testkit\" }\n";
    let found: Vec<String> = workspace_dependencies(manifest).into_iter().collect();
    assert_eq!(found, ["parevm", "parevm-db"]);
}

/// A crate from one text, in which a line `== path` starts each file.
fn synthetic(tree: &str) -> Analysis {
    let mut sources: Vec<Source> = Vec::new();
    for line in tree.lines().map(str::trim) {
        if let Some(path) = line.strip_prefix("== ") {
            sources.push((path.to_string(), String::new()));
        } else if let Some((_, text)) = sources.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    analyze(&sources, "lib.rs")
}

/// Asserts that `found` are exactly violations starting with `starts`.
fn assert_starts(found: &[String], starts: &[&str]) {
    let same = found.iter().zip(starts).all(|(f, s)| f.starts_with(s));
    let ok = same && found.len() == starts.len();
    assert!(
        ok,
        "expected violations starting with {starts:#?}, found {found:#?}"
    );
}

/// Every path into the crate, and the module it depends on.
fn dump(a: &Analysis) -> Vec<String> {
    a.uses
        .iter()
        .map(|r| format!("{r} -> {}", show(&r.to)))
        .collect()
}

#[test]
fn synthetic_cycles_are_reported() {
    let a = synthetic(
        "== lib.rs
        mod a; mod b; mod c;
        == a.rs
        use crate::b::X;
        pub struct Y;
        == b.rs
        pub struct X;
        fn f() -> crate::a::Y { todo!() }
        == c/mod.rs
        mod x; mod y;
        == c/x.rs
        use super::y::Q;
        == c/y/mod.rs
        mod z;
        == c/y/z.rs
        pub struct Q(crate::c::x::P);",
    );
    let root = "cycle among a, b (in crate root)
      a -> b: a.rs:1: `crate::b::X`
      b -> a: b.rs:2: `crate::a::Y`";
    let expected = [root, "cycle among c::x, c::y (in c)"];
    assert_starts(&cycle_violations(&a), &expected);
    let acyclic = synthetic("== lib.rs\n== a.rs\nuse crate::b::X;\n== b.rs");
    assert_starts(&cycle_violations(&acyclic), &[]);
}

#[test]
fn synthetic_upward_import_is_reported() {
    let a = synthetic(
        "== lib.rs
        use crate::chunks::run;
        == types.rs
        use crate::error::E;
        use crate::chunks::Plan;
        == error.rs
        == chunks.rs
        use crate::types::T;
        use crate::storage::S;
        == storage.rs
        use crate::types::T;",
    );
    let expected = "types.rs:2: `crate::chunks::Plan`: `types` (layer 0 `vocabulary`) \
                    uses `chunks` (layer 2 `paths`), a higher layer";
    assert_starts(&layer_violations(&a), &[expected]);
}

#[test]
fn synthetic_layer_table_must_match_the_modules() {
    let found = table_violations(&synthetic("== lib.rs\n== types.rs\n== mystery/mod.rs"));
    assert!(found[0].starts_with("module `mystery` is in no layer: add it to LAYERS"));
    assert!(found[1].starts_with("LAYERS lists `block_stm`, but there is no block_stm.rs"));
    assert!(!found.iter().any(|v| v.contains("`types`")), "{found:#?}");
}

#[test]
fn synthetic_import_from_lib_rs_is_reported() {
    let a = synthetic(
        "== lib.rs
        mod a;
        pub use a::Config;
        pub fn run() { crate::a::f() }
        == a.rs
        use crate::run;
        fn g() { crate::Config::new(); super::helper(); }",
    );
    let expected = [
        "a.rs:1: `crate::run` names no module: an item of lib.rs",
        "a.rs:2: `crate::Config::new`",
        "a.rs:2: `super::helper`",
    ];
    assert_starts(&root_import_violations(&a), &expected);
}

#[test]
fn synthetic_revm_machinery_outside_evm_is_reported() {
    let a = synthetic(
        "== lib.rs
        use revm::context::{BlockEnv, CfgEnv, TxEnv};
        == evm/mod.rs
        use revm::handler::MainBuilder;
        use revm::{Database, *};
        == evm/run.rs
        use revm::inspector::Inspector;
        == output.rs
        use revm::{primitives::U256, Database};
        use revm::context::{TxEnv, Journal};
        == storage.rs
        use revm::*;
        fn f(x: revm::state::AccountInfo) { revm::handler::run() }
        == types.rs
        use revm::primitives_extra::X;",
    );
    let expected = [
        "output.rs:1: `revm::Database`: only src/evm/ may use more of revm",
        "output.rs:2: `revm::context::Journal`",
        "storage.rs:1: `revm::*`",
        "storage.rs:2: `revm::handler::run`",
        "types.rs:1: `revm::primitives_extra::X`",
    ];
    assert_starts(&revm_violations(&a), &expected);
}

#[test]
fn synthetic_grouped_use_and_super_are_resolved() {
    let a = synthetic(
        "== lib.rs
        == a/mod.rs
        mod x; mod y;
        use super::b::W;
        use self::x::P;
        == a/x.rs
        use super::y::Z;
        fn f() { super::super::b::g(); }
        == a/y.rs
        == b.rs
        mod inner { use super::W; fn h() { crate::a::y::f() } }
        fn g() { self::inner::h(); }
        == c.rs
        pub(crate) use crate::{
            a::{x::{self, P as Q}, y::*},
            b,
        };",
    );
    let expected = [
        "a/mod.rs:2: `super::b::W` -> b",
        "a/mod.rs:3: `self::x::P` -> a::x",
        "a/x.rs:1: `super::y::Z` -> a::y",
        "a/x.rs:2: `super::super::b::g` -> b",
        "b.rs:1: `super::W` -> b",
        "b.rs:1: `crate::a::y::f` -> a::y",
        "b.rs:2: `self::inner::h` -> b",
        "c.rs:2: `crate::a::x` -> a::x",
        "c.rs:2: `crate::a::x::P` -> a::x",
        "c.rs:2: `crate::a::y::*` -> a::y",
        "c.rs:3: `crate::b` -> b",
    ];
    assert_eq!(dump(&a), expected);
}

#[test]
fn synthetic_test_code_comments_and_strings_are_skipped() {
    let a = synthetic(
        r##"== lib.rs
        mod types; mod chunks; mod error;
        == types.rs
        //! See [`crate::chunks::Plan`].
        /* crate::chunks /* nested */ crate::chunks */
        /// [`x`](crate::chunks::Y)
        pub fn f() -> &'static str { let _c = '{'; "crate::chunks::X }" }
        #[cfg(test)]
        mod tests {
            use crate::chunks::Plan;
            fn f() { let s = "}"; let c = '}'; let r = r#"}"#; let b = b'}'; }
        }
        #[cfg(test)]
        #[path = "types_tests.rs"]
        mod more;
        #[cfg(test)]
        fn helper(x: [u8; 2]) -> crate::Config { todo!() }
        pub struct Ok(crate::error::E);
        == types_tests.rs
        use crate::chunks::Plan;
        == error.rs
        #![cfg(test)]
        use crate::chunks::Plan;
        == chunks/mod.rs
        #[cfg(test)]
        mod tests;
        use crate::types::f;
        == chunks/tests.rs
        use crate::run;
        == chunks/tests/deep.rs
        use crate::run;"##,
    );
    let modules: Vec<String> = a.modules.iter().map(|m| show(m)).collect();
    assert_eq!(modules, ["crate root", "chunks", "types"]);
    let expected = [
        "types.rs:15: `crate::error::E` -> crate root",
        "chunks/mod.rs:3: `crate::types::f` -> types",
    ];
    assert_eq!(dump(&a), expected);
}
