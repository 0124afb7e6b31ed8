//! Several replicas sharing a store: the leases this replica holds, the store as each job
//! writes it (fenced by its pair's lease), and whether the store is reachable.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::store::{FencedStore, LeaseGuard, StateStore};

use super::super::replica::ReplicaState;
use super::super::runtime::PairRuntime;
use super::DaemonHandle;
use super::handle::new_job;

impl DaemonHandle {
    pub fn store(&self) -> Arc<dyn StateStore> {
        self.inner.store.clone()
    }

    /// The store as the job of `pair` writes it: fenced by the pair's lease when several
    /// replicas share the store.
    pub fn store_for(&self, pair: &str) -> (Arc<dyn StateStore>, Option<Arc<LeaseGuard>>) {
        match self.guard(pair) {
            Some(guard) => (
                Arc::new(FencedStore::new(self.inner.store.clone(), guard.clone())),
                Some(guard),
            ),
            None => (self.inner.store.clone(), None),
        }
    }

    fn guard(&self, pair: &str) -> Option<Arc<LeaseGuard>> {
        self.inner
            .guards
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(pair)
            .cloned()
    }

    /// Runs `runtime`'s job under `guard` (a lease this replica just took).
    pub(crate) fn start_leased_job(&self, runtime: Arc<PairRuntime>, guard: Arc<LeaseGuard>) {
        let name = runtime.name().to_owned();
        self.set_guard(&name, guard);
        let mut jobs = self.jobs_mut();
        if jobs.contains_key(&name) {
            return;
        }
        let (slot, spawn) = new_job(runtime);
        jobs.insert(name, slot);
        let _ = self.inner.spawns.send(spawn);
    }

    /// Fences the job of `pair` (started or not yet) with `guard`.
    pub(crate) fn set_guard(&self, pair: &str, guard: Arc<LeaseGuard>) {
        self.inner
            .guards
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(pair.to_owned(), guard);
    }

    /// Stops the job of a pair whose lease this replica no longer holds (or gives up).
    pub(crate) fn stop_leased_job(&self, pair: &str) {
        if let Some(guard) = self
            .inner
            .guards
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(pair)
        {
            guard.lose();
        }
        self.remove_job(pair);
    }

    /// The leases this replica holds, by pair.
    pub fn guards(&self) -> BTreeMap<String, Arc<LeaseGuard>> {
        self.inner
            .guards
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Why the store cannot be used right now, if it cannot.
    pub fn store_problem(&self) -> Option<String> {
        self.inner
            .store_problem
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_store_problem(&self, problem: Option<String>) {
        let mut slot = self
            .inner
            .store_problem
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *slot != problem {
            match &problem {
                Some(p) => {
                    tracing::error!(problem = %p, "store unreachable: jobs pause until it is back")
                }
                None => tracing::info!("store reachable again: jobs resume"),
            }
        }
        *slot = problem;
    }

    /// This replica's part in a shared store, when there is one.
    pub fn replica(&self) -> Option<Arc<ReplicaState>> {
        self.inner
            .replica
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_replica(&self, state: Arc<ReplicaState>) {
        *self
            .inner
            .replica
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(state);
    }
}
