//! Architecture rules of the workspace, checked on the source text.
//!
//! Dependencies run one way: the CLI uses the engine, never the reverse, and
//! inside the engine (`crates/parevm/src`) from the entry down ([`LAYERS`]):
//! **entry** (`lib.rs`: picks a path, re-exports) -> **paths** (Block-STM,
//! chunks, sequential, choosing between them, finishing a block, whole blocks)
//! -> **shared** parts (the EVM, the worker pool, outputs, storage, the trie)
//! -> **vocabulary** (indices, errors, inputs, chain rules). A module may use
//! its own layer or a lower one: a path can then be changed or removed without
//! touching the others, and the shared parts cannot come to depend on one path.
//! Every top-level module must be in the table, and the table must list only
//! modules that exist, so that it stays a true map of the crate.
//!
//! * **No module imports from `lib.rs`.** `crate::X` where `X` is not a module
//!   (an item that `lib.rs` defines or re-exports) ties a module to the top of
//!   the crate: a cycle hidden behind a re-export. Name the defining module.
//! * **No cycles**, between the top-level modules or between the modules of one
//!   folder, in the engine, the CLI and `parevm-testkit` (if it exists):
//!   modules in a cycle can only be understood and changed together.
//! * **Only `evm` runs revm.** Outside `src/evm/`, `revm::` paths only name
//!   plain data ([`REVM_DATA_TYPES`]); handlers, inspectors, the journal,
//!   `Database`, results stay in one module, so a revm upgrade touches one place.
//!
//! `#[cfg(test)]` code is skipped: tests may import what they need.
//!
//! How: each file is lexed without comments and char literals, `#[cfg(test)]`
//! items are dropped, and every `use` tree and every path starting with `crate`,
//! `super`, `self` or `revm` is collected. A path into the crate depends on its
//! longest prefix that is a module (a file: `a.rs` or `a/mod.rs` is `a`,
//! `a/b.rs` is `a::b`). The analysis works on `(path, text)` pairs, so the
//! `synthetic_*` tests run it on small in-memory trees, showing that each rule
//! catches what it should.
//!
//! Run: `cargo test -p parevm --test architecture`, or with plain rustc:
//! `rustc --edition 2021 --test crates/parevm/tests/architecture.rs -o /tmp/arch && /tmp/arch`
//! (`ARCH_ROOT=<path of crates/parevm>` if it cannot find the sources).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers of the engine: (name, rank, top-level modules). A module may use
/// modules of its own rank or a lower one; `entry` is `lib.rs` alone.
/// A new top-level module goes here.
const LAYERS: &[(&str, u8, &str)] = &[
    ("entry", 3, ""),
    (
        "paths",
        2,
        "block_stm chunks sequential choose finish block",
    ),
    ("shared", 1, "evm pool output storage trie"),
    ("vocabulary", 0, "types error input chain"),
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
    "revm::context_interface::block::BlobExcessGasAndPrice",
    "revm::state::AccountInfo",
    "revm::state::Bytecode",
    "revm::state::EvmStorageSlot",
];

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
    assert!(found, "no crate at {}: set ARCH_ROOT", dir.display());
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
            } else if let (true, Ok(text)) = (rel.ends_with(".rs"), fs::read_to_string(&path)) {
                out.push((rel, text));
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
    let (mut toks, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        let (start, mut keep) = (i, true);
        // A string may start with `b` or `c`, then `r` and hashes; a char with `b`.
        let prefix = usize::from(matches!(at(i), 'b' | 'c'));
        let raw = usize::from(at(i + prefix) == 'r');
        let mut hashes = 0;
        while raw == 1 && at(i + prefix + 1 + hashes) == '#' {
            hashes += 1;
        }
        let tick = i + usize::from(at(i) == 'b');
        if at(i + prefix + raw + hashes) == '"' {
            i += prefix + raw + hashes + 1;
            while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#')) {
                i += 1 + usize::from(c[i] == '\\' && raw == 0);
            }
            i += 1 + hashes;
        } else if at(i) == '/' && at(i + 1) == '/' {
            keep = false;
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if at(i) == '/' && at(i + 1) == '*' {
            keep = false;
            let mut depth = 0;
            while i < c.len() {
                let (open, close) = (
                    (at(i), at(i + 1)) == ('/', '*'),
                    (at(i), at(i + 1)) == ('*', '/'),
                );
                depth += i32::from(open) - i32::from(close);
                i += 1 + usize::from(open || close);
                if depth == 0 {
                    break;
                }
            }
        } else if at(tick) == '\'' {
            // 'x', '\n', b'x' are chars; of a lifetime 'a only the quote goes.
            (keep, i) = (false, tick + 1);
            if at(i) == '\\' {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 1) == '\'' {
                i += 2;
            }
        } else if is_word(c[i]) {
            while i < c.len() && is_word(c[i]) {
                i += 1;
            }
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

fn concat(toks: &[Tok]) -> String {
    toks.iter().map(|t| t.0.as_str()).collect()
}

fn is_ident(word: &str) -> bool {
    word.starts_with(|ch: char| ch.is_alphabetic() || ch == '_')
}

/// Index of the bracket closing the one at `open` (or `toks.len()`).
fn matching(toks: &[Tok], open: usize) -> usize {
    let (open_text, mut depth) = (text(toks, open), 0);
    let close = match open_text {
        "{" => "}",
        "(" => ")",
        _ => "]",
    };
    for (j, (tok, _)) in toks.iter().enumerate().skip(open) {
        depth += i32::from(tok == open_text) - i32::from(tok == close);
        if depth == 0 {
            return j;
        }
    }
    toks.len()
}

/// Index just past the item starting at `i`: after its `;` or its `{ ... }`.
fn item_end(toks: &[Tok], i: usize) -> usize {
    let mut depth = 0;
    for j in i..toks.len() {
        match text(toks, j) {
            "(" | "[" => depth += 1,
            ")" | "]" => depth -= 1,
            ";" if depth == 0 => return j + 1,
            "{" if depth == 0 => return (matching(toks, j) + 1).min(toks.len()),
            _ => {}
        }
    }
    toks.len()
}

/// A `#[cfg(test)] mod name;`: the name and the `#[path]`, if any.
type TestMod = (String, Option<String>);

/// The tokens without `#[cfg(test)]` items, the `#[cfg(test)] mod x;` that
/// they declared, and whether the whole file is `#![cfg(test)]`.
fn drop_test_code(toks: &[Tok]) -> (Vec<Tok>, Vec<TestMod>, bool) {
    let (mut kept, mut mods, mut test_only, mut i) = (Vec::new(), Vec::new(), false, 0);
    while i < toks.len() {
        if text(toks, i) == "#" && text(toks, i + 1) == "!" && text(toks, i + 2) == "[" {
            test_only |= concat(&toks[i + 3..matching(toks, i + 2)]) == "cfg(test)";
        }
        let (start, mut is_test, mut path) = (i, false, None);
        while text(toks, i) == "#" && text(toks, i + 1) == "[" {
            let end = matching(toks, i + 1);
            let attr = concat(&toks[i + 2..end]);
            is_test |= attr == "cfg(test)";
            if let Some(file) = attr.strip_prefix("path=") {
                path = Some(file.trim_matches('"').to_string());
            }
            i = end + 1;
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
            let (file, from) = (file.to_string(), from.clone());
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
fn layer_of(module: &str) -> Option<(u8, String)> {
    let (name, rank, _) = LAYERS
        .iter()
        .find(|l| l.2.split_whitespace().any(|m| m == module))?;
    Some((*rank, format!("layer {rank} `{name}`")))
}

/// Rule: every top-level module is in [`LAYERS`], which lists only modules.
fn table_violations(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let tops: BTreeSet<&String> = a.modules.iter().filter_map(|m| m.first()).collect();
    for top in tops.iter().filter(|top| layer_of(top).is_none()) {
        out.push(format!("module `{top}` is in no layer: add it to LAYERS"));
    }
    for name in LAYERS.iter().flat_map(|l| l.2.split_whitespace()) {
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
    let bad = a
        .uses
        .iter()
        .filter(|r| r.to.is_empty() && !r.from.is_empty());
    bad.map(|r| format!("{r} {rule}")).collect()
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
            let cycle: BTreeSet<&[String]> = reach(&graph, u).into_iter().filter(back).collect();
            if cycle.len() < 2 || !reported.insert(cycle.clone()) {
                continue;
            }
            let names: Vec<String> = cycle.iter().map(|m| show(m)).collect();
            let mut report = format!("cycle among {} (in {})", names.join(", "), show(parent));
            for ((v, w), r) in &graph {
                if cycle.contains(v.as_slice()) && cycle.contains(w.as_slice()) {
                    report += &format!("\n      {} -> {}: {r}", show(v), show(w));
                }
            }
            out.push(report);
        }
    }
    out
}

/// Rule: outside the `evm` module, `revm::` paths name plain data types only.
fn revm_violations(a: &Analysis) -> Vec<String> {
    let data = |p: &str| {
        REVM_DATA_TYPES
            .iter()
            .any(|t| p == *t || p.starts_with(&format!("{t}::")))
    };
    let mut out = Vec::new();
    for r in a
        .revm
        .iter()
        .filter(|r| r.from.first().is_none_or(|m| m != EVM_MODULE))
    {
        if !data(&r.path) {
            out.push(format!(
                "{r}: only src/{EVM_MODULE}/ may use more of revm than REVM_DATA_TYPES"
            ));
        }
    }
    out
}

/// Runs `rule` on the crate at `src` (relative to `crates/parevm`).
fn check(src: &str, root: &str, rule: fn(&Analysis) -> Vec<String>) {
    let dir = crate_dir().join(src);
    let found = rule(&analyze(&load_tree(&dir), root));
    let (n, list) = (found.len(), found.join("\n  "));
    assert!(n == 0, "{}: {n} violation(s)\n  {list}\n", dir.display());
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

fn synthetic(files: &[(&str, &str)]) -> Analysis {
    let sources = files.iter().map(|&(p, t)| (p.into(), t.into()));
    analyze(&sources.collect::<Vec<_>>(), "lib.rs")
}

/// Asserts that `found` are exactly violations starting with `starts`.
fn assert_starts(found: &[String], starts: &[&str]) {
    let ok = found.len() == starts.len() && found.iter().zip(starts).all(|(f, s)| f.starts_with(s));
    assert!(
        ok,
        "expected violations starting with {starts:#?}, found {found:#?}"
    );
}

/// Each path of `file`: its line, as written, and the module it depends on.
fn uses_of(a: &Analysis, file: &str) -> Vec<String> {
    let uses = a.uses.iter().filter(|r| r.file == file);
    uses.map(|r| format!("{}: {} -> {}", r.line, r.path, show(&r.to)))
        .collect()
}

#[test]
fn synthetic_cycle_is_reported() {
    let a = synthetic(&[
        ("lib.rs", "mod a; mod b;"),
        ("a.rs", "use crate::b::X;\npub struct Y;"),
        ("b.rs", "pub struct X;\nfn f() -> crate::a::Y { todo!() }"),
    ]);
    let expected = "cycle among a, b (in crate root)
      a -> b: a.rs:1: `crate::b::X`
      b -> a: b.rs:2: `crate::a::Y`";
    assert_starts(&cycle_violations(&a), &[expected]);
    let acyclic = synthetic(&[("lib.rs", ""), ("a.rs", "use crate::b::X;"), ("b.rs", "")]);
    assert_starts(&cycle_violations(&acyclic), &[]);
}

#[test]
fn synthetic_cycle_inside_a_folder_is_reported() {
    let a = synthetic(&[
        ("lib.rs", "mod a;"),
        ("a/mod.rs", "mod x; mod y;"),
        ("a/x.rs", "use super::y::Q;"),
        ("a/y/mod.rs", "mod z;"),
        ("a/y/z.rs", "pub struct Q(crate::a::x::P);"),
    ]);
    assert_starts(&cycle_violations(&a), &["cycle among a::x, a::y (in a)"]);
}

#[test]
fn synthetic_upward_import_is_reported() {
    let a = synthetic(&[
        ("lib.rs", "use crate::chunks::run;"),
        ("types.rs", "use crate::error::E;\nuse crate::chunks::Plan;"),
        ("error.rs", ""),
        ("chunks.rs", "use crate::types::T;\nuse crate::storage::S;"),
        ("storage.rs", "use crate::types::T;"),
    ]);
    let expected = "types.rs:2: `crate::chunks::Plan`: `types` (layer 0 `vocabulary`) \
                    uses `chunks` (layer 2 `paths`), a higher layer";
    assert_starts(&layer_violations(&a), &[expected]);
}

#[test]
fn synthetic_layer_table_must_match_the_modules() {
    let a = synthetic(&[("lib.rs", ""), ("types.rs", ""), ("mystery/mod.rs", "")]);
    let found = table_violations(&a);
    assert!(found[0].starts_with("module `mystery` is in no layer: add it to LAYERS"));
    assert!(found[1].starts_with("LAYERS lists `block_stm`, but there is no block_stm.rs"));
    assert!(!found.iter().any(|v| v.contains("`types`")), "{found:#?}");
}

#[test]
fn synthetic_import_from_lib_rs_is_reported() {
    let a = synthetic(&[
        (
            "lib.rs",
            "mod a;\npub use a::Config;\npub fn run() { crate::a::f() }",
        ),
        (
            "a.rs",
            "use crate::run;\nfn g() { crate::Config::new(); super::helper(); }",
        ),
    ]);
    let expected = [
        "a.rs:1: `crate::run` names no module: an item of lib.rs",
        "a.rs:2: `crate::Config::new`",
    ];
    assert_starts(
        &root_import_violations(&a),
        &[&expected[..], &["a.rs:2: `super::helper`"]].concat(),
    );
}

#[test]
fn synthetic_revm_machinery_outside_evm_is_reported() {
    let a = synthetic(&[
        ("lib.rs", "use revm::context::{BlockEnv, CfgEnv, TxEnv};"),
        (
            "evm/mod.rs",
            "use revm::handler::MainBuilder;\nuse revm::{Database, *};",
        ),
        ("evm/run.rs", "use revm::inspector::Inspector;"),
        (
            "output.rs",
            "use revm::{primitives::U256, Database};\nuse revm::context::{TxEnv, Journal};",
        ),
        (
            "storage.rs",
            "use revm::*;\nfn f(x: revm::state::AccountInfo) { revm::handler::run() }",
        ),
    ]);
    let expected = [
        "output.rs:1: `revm::Database`: only src/evm/ may use more of revm",
        "output.rs:2: `revm::context::Journal`",
        "storage.rs:1: `revm::*`",
        "storage.rs:2: `revm::handler::run`",
    ];
    assert_starts(&revm_violations(&a), &expected);
}

#[test]
fn synthetic_grouped_use_is_parsed() {
    let a = synthetic(&[
        ("lib.rs", ""),
        ("a/mod.rs", "pub mod x; pub mod y;"),
        ("a/x.rs", ""),
        ("a/y.rs", ""),
        (
            "b.rs",
            "pub(crate) use crate::{\n    a::{x::{self, P as Q}, y::*},\n    b,\n};",
        ),
    ]);
    let expected = [
        "2: crate::a::x -> a::x",
        "2: crate::a::x::P -> a::x",
        "2: crate::a::y::* -> a::y",
    ];
    assert_eq!(
        uses_of(&a, "b.rs"),
        [&expected[..], &["3: crate::b -> b"]].concat()
    );
}

#[test]
fn synthetic_super_resolves_from_the_files_module() {
    let a = synthetic(&[
        ("lib.rs", ""),
        (
            "a/mod.rs",
            "mod x; mod y;\nuse super::b::W;\nuse self::x::P;",
        ),
        (
            "a/x.rs",
            "use super::y::Z;\nfn f() { super::super::b::g(); }",
        ),
        ("a/y.rs", ""),
        (
            "b.rs",
            "mod inner { use super::W; fn h() { crate::a::y::f() } }\nfn g() { self::inner::h(); }",
        ),
    ]);
    assert_eq!(
        uses_of(&a, "a/mod.rs"),
        ["2: super::b::W -> b", "3: self::x::P -> a::x"]
    );
    assert_eq!(
        uses_of(&a, "a/x.rs"),
        ["1: super::y::Z -> a::y", "2: super::super::b::g -> b"]
    );
    let expected = [
        "1: super::W -> b",
        "1: crate::a::y::f -> a::y",
        "2: self::inner::h -> b",
    ];
    assert_eq!(uses_of(&a, "b.rs"), expected);
}

#[test]
fn synthetic_test_code_comments_and_strings_are_skipped() {
    let types = r##"//! See [`crate::chunks::Plan`].
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
pub struct Ok(crate::error::E);"##;
    let a = synthetic(&[
        ("lib.rs", "mod types; mod chunks; mod error;"),
        ("types.rs", types),
        ("types_tests.rs", "use crate::chunks::Plan;"),
        ("error.rs", "#![cfg(test)]\nuse crate::chunks::Plan;"),
        (
            "chunks/mod.rs",
            "#[cfg(test)]\nmod tests;\nuse crate::types::f;",
        ),
        ("chunks/tests.rs", "use crate::run;"),
        ("chunks/tests/deep.rs", "use crate::run;"),
    ]);
    let modules: Vec<String> = a.modules.iter().map(|m| show(m)).collect();
    assert_eq!(modules, ["crate root", "chunks", "types"]);
    assert_eq!(
        uses_of(&a, "types.rs"),
        ["15: crate::error::E -> crate root"]
    );
    assert_eq!(a.uses.len(), 2, "only chunks/mod.rs adds one");
}
