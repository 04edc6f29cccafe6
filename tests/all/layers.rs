//! The shape of `src/`: no import circle among its top-level modules, no command that needs
//! another command, and no probe that imports another probe.
//!
//! A circle means two modules cannot be understood (or moved, or tested) one without the other;
//! it grows when a helper lives with its first user. The test reads the sources as text: every
//! `crate::name` path and every name in a `use crate::{…}` group, outside comments and outside
//! the in-file unit tests, is an edge from the file's top-level module to `name`.
//!
//! Inside `src/probe/` each file is a node of its own. A probe is a file that declares its
//! `DEFINITION`; the other files (the definition's vocabulary, the HTTP exchange, the TCP
//! attempts, a probe's parts in its folder) are shared modules below the probes. A probe may use
//! shared modules, a shared module other shared modules, and nothing in `src/probe/` may use a
//! probe except the registry, which lists them all. What two probes share goes down into a shared
//! module, so a probe can be read, changed and tested on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The commands: each stands alone on the library below it. `schema` is the one that reads the
/// others, for the types of what they print (it documents every command's JSON).
const COMMANDS: [&str; 9] = [
    "run", "list", "explain", "history", "serve", "watch", "show", "schema", "docs",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to: `src/probe/tls.rs` → `probe`, `src/run.rs` → `run`.
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("a file under src/");
    let first = rel.components().next().expect("a path component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// The code of a file without its comments and without its `#[cfg(test)] mod tests` block.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The modules a piece of code names below `crate::`.
fn uses(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let b = code.as_bytes();
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::") {
        let start = at + i + "crate::".len();
        at = start;
        if start > "crate::".len() && is_ident(b[start - "crate::".len() - 1]) {
            continue; // `mycrate::x`, not ours
        }
        if b.get(start) == Some(&b'{') {
            // use crate::{a, b::c, d::{e, f}}: the first name of each top-level item.
            let mut depth = 0;
            let mut item = true;
            for (j, &c) in b[start..].iter().enumerate() {
                match c {
                    b'{' => {
                        depth += 1;
                        continue;
                    }
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                        continue;
                    }
                    b',' if depth == 1 => {
                        item = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 1 && item && is_ident(c) {
                    let k = start + j;
                    let end = b[k..].iter().position(|c| !is_ident(*c)).unwrap_or(0) + k;
                    found.insert(code[k..end].to_owned());
                    item = false;
                }
            }
        } else {
            let end = b[start..]
                .iter()
                .position(|c| !is_ident(*c))
                .map_or(b.len(), |n| start + n);
            if end > start {
                found.insert(code[start..end].to_owned());
            }
        }
    }
    found
}

/// Edges between the top-level modules of `src/`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let from = top_module(&src, &f);
        if from == "lib" || from == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("a readable source file");
        let to = edges.entry(from.clone()).or_default();
        to.extend(uses(&code(&text)).into_iter().filter(|m| *m != from));
    }
    edges
}

/// A circle through the graph, as the list of modules on it, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path.iter().position(|n| n == node).unwrap_or(0);
                let mut circle = path[from..].to_vec();
                circle.push(node.to_owned());
                return Some(circle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if let Some(c) = visit(node, edges, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// The node of a file under `src/probe/`: `tls.rs` → `tls`, `tls/mod.rs` → `tls`,
/// `tls/trust.rs` → `tls/trust`.
fn probe_node(probe_dir: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(probe_dir)
        .expect("a file under src/probe/");
    let rel = rel.to_string_lossy().replace('\\', "/");
    let rel = rel.trim_end_matches(".rs");
    rel.strip_suffix("/mod").unwrap_or(rel).to_owned()
}

/// The paths a piece of code names below `prefix` (`crate::probe::`, `super::`), each as its
/// segments: `crate::probe::tls::trust::Trust` → `[tls, trust, Trust]`; groups are opened.
fn paths_below(code: &str, prefix: &str) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let b = code.as_bytes();
    let mut at = 0;
    while let Some(i) = code[at..].find(prefix) {
        let start = at + i + prefix.len();
        at = start;
        if at - prefix.len() > 0 && is_ident(b[at - prefix.len() - 1]) {
            continue;
        }
        if prefix == "super::" && code[..at - prefix.len()].ends_with("::") {
            continue; // `crate::x::super::` never occurs; `super::super::` is read once
        }
        collect(code, start, Vec::new(), &mut found);
    }
    found
}

/// Reads one path (or group of paths) starting at `start`, below the segments in `head`.
fn collect(code: &str, start: usize, head: Vec<String>, out: &mut BTreeSet<Vec<String>>) {
    let b = code.as_bytes();
    if b.get(start) == Some(&b'{') {
        // Split the group at its top-level commas and read each item below `head`.
        let mut depth = 0;
        let mut item_start = start + 1;
        for (j, &c) in b[start..].iter().enumerate() {
            let k = start + j;
            match c {
                b'{' => depth += 1,
                b'}' | b',' if depth == 1 => {
                    let item = code[item_start..k].trim_start();
                    let offset =
                        k - code[item_start..k].len() + (code[item_start..k].len() - item.len());
                    if !item.is_empty() {
                        collect(code, offset, head.clone(), out);
                    }
                    item_start = k + 1;
                    if c == b'}' {
                        return;
                    }
                }
                b'}' => depth -= 1,
                _ => {}
            }
        }
        return;
    }
    let end = b[start..]
        .iter()
        .position(|c| !is_ident(*c))
        .map_or(b.len(), |n| start + n);
    if end == start {
        if !head.is_empty() {
            out.insert(head);
        }
        return;
    }
    let mut path = head;
    let word = &code[start..end];
    if word != "self" {
        path.push(word.to_owned());
    }
    if code[end..].starts_with("::") {
        collect(code, end + 2, path, out);
    } else if !path.is_empty() {
        out.insert(path);
    }
}

/// The node a path names: the longest prefix of it that is a file's node.
fn node_of(path: &[String], nodes: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("/"))
        .find(|candidate| nodes.contains(candidate))
}

/// The files of `src/probe/` as nodes: whether each is a probe, and the nodes it uses.
fn probe_graph() -> BTreeMap<String, (bool, BTreeSet<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/probe");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("a readable source file");
            (probe_node(&dir, f), code(&text))
        })
        .collect();
    let nodes: BTreeSet<String> = texts.iter().map(|(n, _)| n.clone()).collect();
    let mut graph = BTreeMap::new();
    for (node, code) in &texts {
        let is_probe = code.contains("pub const DEFINITION: Definition");
        // `super::` is the parent module: `probe` for `probe/x.rs`, `probe/tls` for
        // `probe/tls/trust.rs` (and for `probe/tls/mod.rs`, `probe`).
        let mut parent: Vec<String> = node.split('/').map(str::to_owned).collect();
        parent.pop();
        let mut uses = BTreeSet::new();
        for path in paths_below(code, "crate::probe::") {
            uses.extend(node_of(&path, &nodes));
        }
        for path in paths_below(code, "super::") {
            let full: Vec<String> = parent.iter().cloned().chain(path).collect();
            uses.extend(node_of(&full, &nodes));
        }
        uses.remove(node);
        graph.insert(node.clone(), (is_probe, uses));
    }
    graph
}

/// Every use of a probe by another node of `src/probe/`, except the registry's, as `a → b`.
fn probe_imports(graph: &BTreeMap<String, (bool, BTreeSet<String>)>) -> Vec<String> {
    let mut wrong = Vec::new();
    for (node, (_, uses)) in graph {
        if node == "registry" || node == "mod" {
            continue;
        }
        for used in uses {
            // The probe a module belongs to: a probe file itself, or a part in a probe's folder
            // (`tls/classify` is the tls probe's, whatever it declares).
            let is_probe = |n: &str| graph.get(n).is_some_and(|(probe, _)| *probe);
            let owner = if is_probe(used) {
                Some(used.as_str())
            } else {
                used.split_once('/').map(|(f, _)| f).filter(|f| is_probe(f))
            };
            let Some(owner) = owner else { continue };
            // A probe's own parts, in its folder, may use each other and the probe's face.
            let own_part = node == owner || node.starts_with(&format!("{owner}/"));
            if !own_part {
                wrong.push(format!("{node} → {used}"));
            }
        }
    }
    wrong
}

#[test]
fn the_reader_of_probe_paths_opens_groups_and_nested_paths() {
    let text = "use crate::probe::{attempt::{Attempt, Outcome}, definition};\nfn f() { crate::probe::tls::trust::load(); super::ocsp::status(); }\n";
    let got: Vec<Vec<String>> = paths_below(&code(text), "crate::probe::")
        .into_iter()
        .collect();
    let want: Vec<Vec<String>> = [
        vec!["attempt", "Attempt"],
        vec!["attempt", "Outcome"],
        vec!["definition"],
        vec!["tls", "trust", "load"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(got, want);
    let sup: Vec<Vec<String>> = paths_below(&code(text), "super::").into_iter().collect();
    assert_eq!(sup, [vec!["ocsp".to_string(), "status".to_string()]]);
    let nodes: BTreeSet<String> = ["tls", "tls/trust", "ocsp"].map(String::from).into();
    let path: Vec<String> = ["tls", "trust", "load"].map(String::from).into();
    assert_eq!(node_of(&path, &nodes).as_deref(), Some("tls/trust"));
}

#[test]
fn no_probe_imports_another_probe() {
    let graph = probe_graph();
    let probes: Vec<&String> = graph
        .iter()
        .filter(|(_, (p, _))| *p)
        .map(|(n, _)| n)
        .collect();
    // The graph sees the probes: every registered one is a node of its own.
    assert!(probes.len() >= 11, "{probes:?}");
    assert!(graph.contains_key("definition") && graph.contains_key("registry"));
    let wrong = probe_imports(&graph);
    assert!(
        wrong.is_empty(),
        "a module of src/probe/ imports a probe (only the registry may): {}; move what they share into a shared module below the probes",
        wrong.join(", ")
    );
}

#[test]
fn the_reader_of_imports_sees_groups_paths_and_not_comments() {
    let text = "use crate::model::{Check, Probe};\nuse crate::{cli, probe::tls::{a, b}, report};\n// crate::history is only named here\nfn f() { crate::files::write_stdout(b\"\"); }\n";
    let got: Vec<String> = uses(&code(text)).into_iter().collect();
    assert_eq!(got, ["cli", "files", "model", "probe", "report"]);
}

#[test]
fn the_cycle_finder_finds_a_circle_and_passes_a_tree() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut edge = |a: &str, b: &str| {
        g.entry(a.into()).or_default().insert(b.into());
    };
    edge("run", "output");
    edge("output", "history");
    edge("history", "model");
    assert_eq!(find_cycle(&g), None);
    g.entry("history".into()).or_default().insert("run".into());
    let circle = find_cycle(&g).expect("run → output → history → run");
    assert_eq!(circle.first(), circle.last());
    assert_eq!(circle.len(), 4, "{circle:?}");
}

#[test]
fn no_import_circle_among_the_modules_of_src() {
    let edges = graph();
    assert!(edges.contains_key("runner") && edges.contains_key("probe"));
    if let Some(circle) = find_cycle(&edges) {
        panic!("an import circle in src/: {}", circle.join(" → "));
    }
}

#[test]
fn no_command_depends_on_another_command() {
    let edges = graph();
    for command in COMMANDS.iter().filter(|c| **c != "schema") {
        let to = edges.get(*command).cloned().unwrap_or_default();
        let others: Vec<&String> = to
            .iter()
            .filter(|m| COMMANDS.contains(&m.as_str()))
            .collect();
        assert!(
            others.is_empty(),
            "the {command} command imports the command(s) {others:?}: move what they share below both"
        );
    }
}
