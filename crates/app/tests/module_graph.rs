//! Dependencies between the app's top-level modules run one way
//! (`cmd → session → {tui, web, store, alerts} → core/exchange`, docs/ARCHITECTURE.md): this
//! reads every file under `src/`, collects the `crate::<module>` paths each top-level module
//! names (`use` lines, paths in code, doc links), and fails on any circle between two or more
//! modules, naming the files behind each edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges a change in flight is removing, allowed meanwhile (e.g. `("session", "cmd")`); empty
/// once it has landed, as now.
const PENDING: &[(&str, &str)] = &[];

/// The top-level modules named after `crate::` in `text`, including those inside a
/// `crate::{a, b::c}` group. `$crate::` (macros) and `foo_crate::` are not `crate::`.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(i) = text[at..].find("crate::") {
        let start = at + i;
        at = start + "crate::".len();
        let before = start.checked_sub(1).map(|j| bytes[j]);
        if before.is_some_and(|b| b == b'$' || b == b'_' || b.is_ascii_alphanumeric()) {
            continue;
        }
        let rest = &text[at..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: the first identifier after `{` and after each
            // comma at depth 0.
            let mut depth = 0;
            let mut item_start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        out.insert(ident(&group[k..]).to_string());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`store/sink.rs` → `store`); `None` for the crate
/// roots, which only declare modules.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// Edge `from → to` with the files that make it.
type Graph = BTreeMap<(String, String), BTreeSet<String>>;

fn graph() -> (Graph, BTreeSet<String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges = Graph::new();
    let mut modules = BTreeSet::new();
    for f in &files {
        let Some(from) = top_module(&src, f) else {
            continue;
        };
        modules.insert(from.clone());
        let text = std::fs::read_to_string(f).unwrap();
        for to in crate_refs(&text) {
            if to != from {
                let rel = f.strip_prefix(&src).unwrap().display().to_string();
                edges.entry((from.clone(), to)).or_default().insert(rel);
            }
        }
    }
    (edges, modules)
}

/// Strongly connected components with more than one module (Tarjan's algorithm).
fn circles(nodes: &BTreeSet<String>, edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a BTreeSet<(String, String)>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            let next: Vec<&'a str> = self
                .edges
                .iter()
                .filter(|(a, _)| a == v)
                .map(|(_, b)| b.as_str())
                .collect();
            for w in next {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for n in nodes {
        if !t.index.contains_key(n.as_str()) {
            t.visit(n);
        }
    }
    t.out
}

#[test]
fn the_extractor_finds_paths_groups_and_doc_links() {
    let text = "use crate::store::{Store, now};\nuse crate::{alerts::rules, config};\n\
                /// See [`crate::web::hub`].\nlet x = $crate::live::f(); my_crate::tui::g();\n\
                crate::exit::bad_input(\"x\");";
    let got: Vec<String> = crate_refs(text).into_iter().collect();
    assert_eq!(got, ["alerts", "config", "exit", "store", "web"]);
}

#[test]
fn the_cycle_finder_finds_a_circle_and_only_that() {
    let nodes: BTreeSet<String> = ["a", "b", "c", "d"].map(String::from).into();
    let edges: BTreeSet<(String, String)> = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .into();
    assert_eq!(circles(&nodes, &edges), vec![vec!["a", "b", "c"]]);
    let one_way: BTreeSet<(String, String)> = edges.into_iter().filter(|(x, _)| x != "c").collect();
    assert!(circles(&nodes, &one_way).is_empty());
}

#[test]
fn top_level_modules_depend_one_way() {
    let (edges, modules) = graph();
    // The walk saw the crate: its main modules and edges everyone agrees exist.
    for m in [
        "cmd", "session", "store", "alerts", "config", "web", "tui", "live",
    ] {
        assert!(modules.contains(m), "module {m} not found in {modules:?}");
    }
    assert!(
        edges.contains_key(&("cmd".to_string(), "store".to_string())),
        "cmd → store not found: the extractor is broken"
    );
    let kept: BTreeSet<(String, String)> = edges
        .keys()
        .filter(|(a, b)| !PENDING.contains(&(a.as_str(), b.as_str())))
        .cloned()
        .collect();
    let found = circles(&modules, &kept);
    let explain: Vec<String> = found
        .iter()
        .map(|scc| {
            let inside: Vec<String> = kept
                .iter()
                .filter(|(a, b)| scc.contains(a) && scc.contains(b))
                .map(|(a, b)| {
                    let files: Vec<&str> = edges[&(a.clone(), b.clone())]
                        .iter()
                        .map(String::as_str)
                        .collect();
                    format!("  {a} → {b} ({})", files.join(", "))
                })
                .collect();
            format!("circle {{{}}}:\n{}", scc.join(", "), inside.join("\n"))
        })
        .collect();
    assert!(found.is_empty(), "{}", explain.join("\n"));
}

/// Beyond "no circle": the edges that would put a layer under one it serves. `cmd` and `exit`
/// are the binary's edge (only `cmd` reaches `exit`, nothing reaches `cmd`); the store knows
/// nothing about alerts or the session; settings know no command.
#[test]
fn lower_modules_do_not_reach_up() {
    let (edges, _) = graph();
    let forbidden = |from: &str, to: &str| {
        (to == "exit" && from != "cmd")
            || to == "cmd"
            || (from == "store"
                && ["alerts", "wiring", "session", "live", "web", "tui"].contains(&to))
            || (from == "alerts" && ["wiring", "session", "live", "web", "tui"].contains(&to))
            || (from == "config" && to != "ranges")
    };
    let wrong: Vec<String> = edges
        .iter()
        .filter(|((a, b), _)| forbidden(a, b))
        .map(|((a, b), files)| {
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            format!("{a} → {b} ({})", files.join(", "))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
