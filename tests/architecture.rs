//! Layering invariants of ARCHITECTURE.md, checked on the source text: each names the
//! directory, the uses it forbids, and why. A new forbidden use anywhere under the directory
//! fails the test with the file and line. (That `plan` writes nothing is checked by running the
//! binary: `logs plan_writes_nothing_and_says_which_cycle_comes_next`.)

use std::path::{Path, PathBuf};

/// A forbidden use under a directory of `src/`.
struct Rule {
    dir: &'static str,
    forbidden: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        dir: "src/api",
        forbidden: &[
            ".store()",
            "store_for(",
            "StateStore",
            "SqliteStore",
            "PostgresStore",
            "FencedStore",
            "crate::store::open",
        ],
        why: "the admin API reads the store only through the daemon's query interface \
              (DaemonHandle: status, stored_status, escrows, provisioning_log, preview)",
    },
    Rule {
        dir: "src/api",
        forbidden: &[
            "engine::provision_on_demand",
            "provision::provision_on_demand",
            "provision_under_lease",
            "apply::apply",
        ],
        why: "the admin API writes only through the job's mailbox (one writer per pair): \
              DaemonHandle::provision / send",
    },
    Rule {
        dir: "src/config",
        forbidden: &["crate::graph", "graph::"],
        why: "config does not depend on graph: what the client takes from a pair (credential, \
              quotas, public hosts) lives in config::access, and the engine builds the client's \
              settings (engine::runtime::graph_settings)",
    },
    Rule {
        dir: "src/emulator",
        forbidden: &["crate::graph", "crate::engine"],
        why: "the emulator shares no code with the client or the engine: it has its own models, \
              held to Microsoft's examples, so a client bug cannot hide behind a shared one",
    },
    Rule {
        dir: "src/plan",
        forbidden: &["crate::graph", "crate::store", "crate::engine", "tokio::"],
        why: "the planner is pure: no IO, the same input gives the same plan",
    },
    Rule {
        dir: "src/mapping",
        forbidden: &["crate::graph", "crate::store", "crate::engine", "tokio::"],
        why: "mapping is pure: no IO",
    },
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `code` holds `pattern` as a whole (not inside a longer identifier:
/// `StateStore` is not found in `StateStoreError`).
fn uses(code: &str, pattern: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(pattern).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + pattern.len()..].chars().next();
        let open_start = pattern.starts_with(ident) && before.is_some_and(ident);
        let open_end = pattern.ends_with(ident) && after.is_some_and(ident);
        !open_start && !open_end
    })
}

/// `file:line: text` of every line of `text` that uses one of `forbidden` outside a comment.
fn violations(file: &str, text: &str, forbidden: &[&str]) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let code = match line.find("//") {
                Some(at) => &line[..at],
                None => line,
            };
            forbidden
                .iter()
                .any(|f| uses(code, f))
                .then(|| format!("{file}:{}: {}", i + 1, line.trim()))
        })
        .collect()
}

#[test]
fn layering_rules_hold() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for rule in RULES {
        let mut files = Vec::new();
        rust_files(&root.join(rule.dir), &mut files);
        assert!(!files.is_empty(), "{}: no Rust files", rule.dir);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read source");
            let shown = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            for v in violations(&shown, &text, rule.forbidden) {
                problems.push(format!("{v}\n    ({})", rule.why));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The scanner finds a forbidden use in code and ignores one in a comment: the rules above
/// cannot pass vacuously.
#[test]
fn the_scanner_finds_a_forbidden_use() {
    let text = "use crate::graph::GraphSettings;\n// crate::graph in a comment\nlet s = state.handle.store(); // read\nlet code = \"StateStoreError\";\n";
    let found = violations("x.rs", text, &["crate::graph", ".store()", "StateStore"]);
    assert_eq!(
        found,
        vec![
            "x.rs:1: use crate::graph::GraphSettings;".to_owned(),
            "x.rs:3: let s = state.handle.store(); // read".to_owned(),
        ]
    );
}
