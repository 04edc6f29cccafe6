//! The shape of `src/`: no import circle among its top-level modules, and no command that needs
//! another command.
//!
//! A circle means two modules cannot be understood (or moved, or tested) one without the other;
//! it grows when a helper lives with its first user. The test reads the sources as text: every
//! `crate::name` path and every name in a `use crate::{…}` group, outside comments and outside
//! the in-file unit tests, is an edge from the file's top-level module to `name`.

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
