//! Pair configuration: YAML → validated [`SyncPair`]s, with file:line:column errors.
//!
//! A file holds one or more `kind: SyncPair` documents (separated by `---`); a directory of
//! such files (`*.yaml`, `*.yml`, in it and its subfolders; hidden entries skipped) is a
//! topology. Only regular files are read, up to [`MAX_FILE_BYTES`] each. Loading checks, in order:
//! YAML syntax; structure against `config/syncpair.schema.json` (every problem, not just the
//! first); the rules in `rules.rs`; and across files, unique names and one pair per
//! (source, target). Every problem found in every file is returned together.

mod access;
mod files;
mod model;
mod rules;
mod schema;
mod tree;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use access::{ClientCredential, InvitationQuota, PUBLIC_AUTHORITY, PUBLIC_GRAPH, WriteQuota};
pub use files::MAX_FILE_BYTES;
pub use model::*;
pub use schema::SCHEMA_JSON;
pub use tree::Pos;

/// One configuration problem, at a file position, with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based.
    pub line: u64,
    /// 1-based.
    pub column: u64,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// Every problem found while loading a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} configuration problem(s):\n{}", .problems.len(), render(.problems))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The shape of a set of pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologyKind {
    OneToOne,
    /// One tenant is the source of every pair, or the target of every pair.
    HubAndSpoke,
    /// Some tenant is both a source and a target.
    Mesh,
    /// Independent pairs that share no tenant pattern above.
    Disjoint,
}

impl std::fmt::Display for TopologyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TopologyKind::OneToOne => "one-to-one",
            TopologyKind::HubAndSpoke => "hub-and-spoke",
            TopologyKind::Mesh => "mesh",
            TopologyKind::Disjoint => "disjoint pairs",
        })
    }
}

/// All pairs of a configuration, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub pairs: Vec<SyncPair>,
}

impl Topology {
    pub fn pair(&self, name: &str) -> Option<&SyncPair> {
        self.pairs.iter().find(|p| p.name == name)
    }

    pub fn kind(&self) -> TopologyKind {
        if self.pairs.len() == 1 {
            return TopologyKind::OneToOne;
        }
        let sources: std::collections::HashSet<&str> = self
            .pairs
            .iter()
            .map(|p| p.source.tenant_id.as_str())
            .collect();
        let targets: std::collections::HashSet<&str> = self
            .pairs
            .iter()
            .map(|p| p.target.tenant_id.as_str())
            .collect();
        if sources.intersection(&targets).next().is_some() {
            TopologyKind::Mesh
        } else if sources.len() == 1 || targets.len() == 1 {
            TopologyKind::HubAndSpoke
        } else {
            TopologyKind::Disjoint
        }
    }
}

/// Loads a pair file, or every `*.yaml`/`*.yml` file in a directory and its subfolders.
pub fn load(path: &Path) -> Result<Topology, ConfigError> {
    let (sources, mut problems) = files::read_all(path);
    // A path that cannot be read is the one thing to say: no "no pairs found" after it.
    if sources.is_empty() && !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let refs: Vec<(&Path, &str)> = sources
        .iter()
        .map(|(f, t)| (f.as_path(), t.as_str()))
        .collect();
    match load_sources(&refs) {
        Ok(topology) if problems.is_empty() => Ok(topology),
        Ok(_) => Err(ConfigError { problems }),
        Err(mut e) => {
            problems.append(&mut e.problems);
            Err(ConfigError { problems })
        }
    }
}

/// Loads pairs from in-memory texts, each named by the file it would come from (used by
/// [`load`] and by tests).
pub fn load_sources(sources: &[(&Path, &str)]) -> Result<Topology, ConfigError> {
    let mut problems = Vec::new();
    let mut pairs: Vec<(SyncPair, Pos, Pos)> = Vec::new();
    for (file, text) in sources {
        let docs = match tree::parse_documents(text) {
            Ok(docs) => docs,
            Err(e) => {
                problems.push(Problem {
                    file: file.to_path_buf(),
                    line: e.pos.line,
                    column: e.pos.column,
                    message: format!("invalid YAML: {}", e.message),
                    hint: e.hint,
                });
                continue;
            }
        };
        for doc in docs {
            match load_document(file, text, &doc) {
                Ok(pair) => {
                    let name_pos = doc.locate(&["metadata", "name"]).0;
                    let spec_pos = doc.key_pos("spec").unwrap_or(doc.pos);
                    pairs.push((pair, name_pos, spec_pos));
                }
                Err(mut p) => problems.append(&mut p),
            }
        }
    }
    cross_checks(&pairs, &mut problems);
    if pairs.is_empty() && problems.is_empty() {
        let file = sources
            .first()
            .map(|(f, _)| f.to_path_buf())
            .unwrap_or_default();
        problems.push(Problem {
            file,
            line: 1,
            column: 1,
            message: "no SyncPair documents found".into(),
            hint: Some("see config/examples/ for a pair to start from".into()),
        });
    }
    if problems.is_empty() {
        Ok(Topology {
            pairs: pairs.into_iter().map(|(p, _, _)| p).collect(),
        })
    } else {
        Err(ConfigError { problems })
    }
}

fn load_document(file: &Path, text: &str, doc: &tree::Node) -> Result<SyncPair, Vec<Problem>> {
    let problem = |pos: Pos, message: String, hint: Option<String>| Problem {
        file: file.to_owned(),
        line: pos.line,
        column: pos.column,
        message,
        hint,
    };
    let mut problems: Vec<Problem> = schema::validate(doc)
        .into_iter()
        .map(|p| problem(p.pos, p.message, p.hint))
        .collect();
    problems.extend(
        rules::check(doc, text)
            .into_iter()
            .map(|p| problem(p.pos, p.message, p.hint)),
    );
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.line, p.column));
        return Err(problems);
    }
    let typed: SyncPairDocument = serde_json::from_value(doc.to_json()).map_err(|e| {
        // The schema and the Rust types disagree; report rather than panic.
        vec![problem(
            doc.pos,
            format!("invalid pair: {e}"),
            Some(
                "the schema accepted what the types refuse: a ctsync bug, please report it".into(),
            ),
        )]
    })?;
    rules::build(file, doc, &typed).map_err(|e| {
        vec![problem(
            doc.pos,
            format!("invalid pair: {e}"),
            Some(
                "the checks accepted what the builder refuses: a ctsync bug, please report it"
                    .into(),
            ),
        )]
    })
}

fn cross_checks(pairs: &[(SyncPair, Pos, Pos)], problems: &mut Vec<Problem>) {
    let mut names: HashMap<&str, (&Path, Pos)> = HashMap::new();
    let mut routes: HashMap<(&str, &str), (&str, &Path, Pos)> = HashMap::new();
    for (pair, name_pos, spec_pos) in pairs {
        let file = pair.origin.file.as_path();
        if let Some((other_file, other_pos)) = names.get(pair.name.as_str()) {
            problems.push(Problem {
                file: file.to_owned(),
                line: name_pos.line,
                column: name_pos.column,
                message: format!(
                    "pair name `{}` is already used at {}:{}:{}",
                    pair.name,
                    other_file.display(),
                    other_pos.line,
                    other_pos.column
                ),
                hint: Some("give every pair a unique metadata.name".into()),
            });
        } else {
            names.insert(&pair.name, (file, *name_pos));
        }
        let route = (
            pair.source.tenant_id.as_str(),
            pair.target.tenant_id.as_str(),
        );
        if let Some((other, other_file, other_pos)) = routes.get(&route) {
            problems.push(Problem {
                file: file.to_owned(),
                line: spec_pos.line,
                column: spec_pos.column,
                message: format!(
                    "pair `{}` synchronizes {} → {}, like pair `{other}` at {}:{}:{}",
                    pair.name,
                    route.0,
                    route.1,
                    other_file.display(),
                    other_pos.line,
                    other_pos.column
                ),
                hint: Some("at most one pair per (source, target): merge their scopes and mappings into one pair".into()),
            });
        } else {
            routes.insert(route, (&pair.name, file, *spec_pos));
        }
    }
}
