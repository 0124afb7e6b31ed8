//! Configuration hot reload: a changed pair file is validated whole before anything changes;
//! an invalid one is rejected with its errors logged and the last good configuration keeps
//! running. A mapping or scope change starts a full cycle, as in Entra; added and removed pairs
//! start and stop their jobs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::SyncPair;

use super::daemon::DaemonHandle;
use super::runtime::PairRuntime;

/// What one reload did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum ReloadOutcome {
    Applied {
        /// Pairs whose configuration changed.
        changed: Vec<String>,
        /// Of those, the ones whose mappings or scope changed: their watermark is cleared.
        full: Vec<String>,
        added: Vec<String>,
        removed: Vec<String>,
    },
    Unchanged,
    Rejected {
        errors: Vec<String>,
    },
}

/// Changes that make every source user's evaluation stale.
fn needs_full_cycle(old: &SyncPair, new: &SyncPair) -> bool {
    old.mappings != new.mappings
        || old.scope != new.scope
        || old.matching_attributes != new.matching_attributes
        || old.anchor_attribute != new.anchor_attribute
        || old.deprovision != new.deprovision
}

/// Loads `config` and applies it to the running daemon, or rejects it untouched.
pub async fn reload(handle: &DaemonHandle, config: &Path) -> ReloadOutcome {
    let outcome = apply(handle, config).await;
    match &outcome {
        ReloadOutcome::Rejected { errors } => tracing::error!(
            event = "configReload",
            outcome = "rejected",
            config = %config.display(),
            errors = %errors.join("; "),
            "configuration change rejected; the last good configuration keeps running"
        ),
        ReloadOutcome::Unchanged => {
            tracing::debug!(
                event = "configReload",
                outcome = "unchanged",
                "configuration unchanged"
            )
        }
        ReloadOutcome::Applied {
            changed,
            full,
            added,
            removed,
        } => tracing::info!(
            event = "configReload",
            outcome = "applied",
            changed = ?changed,
            full = ?full,
            added = ?added,
            removed = ?removed,
            "configuration reloaded"
        ),
    }
    handle.publish_reload(outcome.clone());
    outcome
}

async fn apply(handle: &DaemonHandle, config: &Path) -> ReloadOutcome {
    let topology = match crate::config::load(config) {
        Ok(t) => t,
        Err(e) => {
            return ReloadOutcome::Rejected {
                errors: e.problems.iter().map(ToString::to_string).collect(),
            };
        }
    };
    // Build every runtime first so a half-valid topology changes nothing.
    let mut runtimes = Vec::new();
    let mut errors = Vec::new();
    for pair in topology.pairs {
        match PairRuntime::new(pair) {
            Ok(rt) => runtimes.push(rt),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return ReloadOutcome::Rejected { errors };
    }
    let running = handle.pairs();
    let mut changed = Vec::new();
    let mut full = Vec::new();
    let mut added = Vec::new();
    let wanted: Vec<String> = runtimes.iter().map(|rt| rt.name().to_owned()).collect();
    for rt in runtimes {
        let name = rt.name().to_owned();
        match handle.runtime(&name) {
            None => {
                if handle.add_job(rt) {
                    added.push(name);
                }
            }
            Some(current) if current.pair == rt.pair => {}
            Some(current) => {
                let is_full = needs_full_cycle(&current.pair, &rt.pair);
                match handle.reconfigure(rt, is_full).await {
                    Ok(()) => {
                        changed.push(name.clone());
                        if is_full {
                            full.push(name);
                        }
                    }
                    Err(e) => tracing::error!(pair = %name, error = %e, "cannot reconfigure job"),
                }
            }
        }
    }
    let mut removed = Vec::new();
    for name in running {
        if !wanted.contains(&name) && handle.remove_job(&name) {
            removed.push(name);
        }
    }
    if changed.is_empty() && added.is_empty() && removed.is_empty() {
        ReloadOutcome::Unchanged
    } else {
        ReloadOutcome::Applied {
            changed,
            full,
            added,
            removed,
        }
    }
}

/// A Kubernetes ConfigMap (or Secret) volume is a set of symlinks `name.yaml -> ..data/name.yaml`;
/// the kubelet updates it by writing a new `..<timestamp>` directory, pointing `..data_tmp` at it
/// and renaming that over `..data`. The visible `*.yaml` names never change, so the swap of
/// `..data` is the only event an update makes in the watched directory.
fn is_configmap_swap(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "..data" || n == "..data_tmp")
}

/// Watches `config` (a file or a directory of pair files) and reloads on every change, until
/// `shutdown`. Editors often replace a file rather than write it, so the directory is watched.
pub fn watch(
    handle: DaemonHandle,
    config: PathBuf,
    shutdown: CancellationToken,
) -> notify::Result<tokio::task::JoinHandle<()>> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let single_file = (!config.is_dir()).then(|| config.file_name().map(ToOwned::to_owned));
    let relevant = move |path: &Path| match &single_file {
        Some(name) => path.file_name() == name.as_deref() || is_configmap_swap(path),
        None => {
            path.extension().is_some_and(|e| e == "yaml" || e == "yml") || is_configmap_swap(path)
        }
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) if event.kind.is_access() => {}
            // Other files in the directory (the state database, say) are not configuration.
            Ok(event) if !event.paths.iter().any(|p| relevant(p)) => {}
            // The receiver is gone only after shutdown.
            Ok(_) => {
                let _ = tx.send(());
            }
            Err(e) => tracing::warn!(error = %e, "configuration watcher error"),
        }
    })?;
    let watched = if config.is_dir() {
        config.clone()
    } else {
        config
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    // A directory is read with its subfolders (`config::load`), so it is watched with them.
    let mode = if config.is_dir() {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    watcher.watch(&watched, mode)?;
    Ok(tokio::spawn(async move {
        // Dropped with the task: watching stops at shutdown.
        let _watcher = watcher;
        // After a rejected change, the next accepted one says that the problem is gone.
        let mut last_rejected = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                event = rx.recv() => if event.is_none() { return },
            }
            // One save is often several events: let them settle, then reload once.
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(250)) => break,
                    event = rx.recv() => if event.is_none() { return },
                }
            }
            let outcome = reload(&handle, &config).await;
            let rejected = matches!(outcome, ReloadOutcome::Rejected { .. });
            if last_rejected && !rejected {
                tracing::info!(
                    event = "configReload",
                    outcome = "fixed",
                    config = %config.display(),
                    "the rejected configuration is fixed; the running configuration is the new one"
                );
            }
            last_rejected = rejected;
        }
    }))
}
