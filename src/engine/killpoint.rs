//! Step boundaries of a cycle where a crash is most likely to leave half-done work, and a way to
//! crash there on purpose. The crash tests use them to kill ctsync at an exact point instead of
//! at a random time:
//!
//! - in the binary, `CTSYNC_KILL_AT=<step>[:<n>]` aborts the process (no cleanup, like `kill -9`)
//!   the `n`th time (default 1) the step is reached; `CTSYNC_KILL_AT=count` kills nowhere and
//!   logs every boundary reached (`killPointReached`, with the step), so a crash test learns
//!   which `n` exist and every trial really kills;
//! - in process, a [`CrashAt`] makes the executor stop with [`super::EngineError::Crashed`]
//!   at that point, leaving exactly what a crash would leave.
//!
//! Without either, reaching a step costs one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A boundary inside a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// A create's intent is committed; the invitation is not sent yet.
    AfterIntent,
    /// The invitation returned the target user; its PATCH (the anchor) is not sent yet.
    AfterInvite,
    /// A create's PATCH succeeded; nothing of it is in the store yet.
    AfterPatch,
    /// An entry's Graph writes succeeded; its store commit is not made yet.
    BeforeCommit,
    /// Every entry is recorded; the watermark is not saved yet.
    BeforeWatermark,
    /// Group pass: a target group was created (with its anchor); its link is not stored yet.
    GroupAfterCreate,
    /// Group pass: a created group's first members are written and recorded; the rest are not.
    GroupMembers,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::AfterIntent,
        Step::AfterInvite,
        Step::AfterPatch,
        Step::BeforeCommit,
        Step::BeforeWatermark,
    ];

    /// The group pass's boundaries (reached only by pairs with `spec.groups`).
    pub const GROUPS: [Step; 2] = [Step::GroupAfterCreate, Step::GroupMembers];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::GroupAfterCreate => "group-after-create",
            Step::GroupMembers => "group-members",
            Step::AfterIntent => "after-intent",
            Step::AfterInvite => "after-invite",
            Step::AfterPatch => "after-patch",
            Step::BeforeCommit => "before-commit",
            Step::BeforeWatermark => "before-watermark",
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL
            .into_iter()
            .chain(Step::GROUPS)
            .find(|s| s.as_str() == text)
    }
}

/// An in-process crash: stop at the `nth` (1-based) time `step` is reached.
#[derive(Debug)]
pub struct CrashAt {
    pub step: Step,
    pub nth: usize,
    seen: AtomicUsize,
}

impl CrashAt {
    pub fn new(step: Step, nth: usize) -> Self {
        Self {
            step,
            nth: nth.max(1),
            seen: AtomicUsize::new(0),
        }
    }

    /// How many times the step was reached (a test learns how many boundaries a cycle has).
    pub fn reached(&self) -> usize {
        self.seen.load(Ordering::Relaxed)
    }

    fn hit(&self, step: Step) -> bool {
        step == self.step && self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.nth
    }
}

/// What `CTSYNC_KILL_AT` asks of the binary.
#[derive(Debug)]
enum ProcessKill {
    /// Abort at this boundary.
    At(CrashAt),
    /// Log every boundary reached, abort nowhere.
    Count,
}

/// The binary's kill point from `CTSYNC_KILL_AT`, read once.
fn process_kill_point() -> Option<&'static ProcessKill> {
    static KILL: OnceLock<Option<ProcessKill>> = OnceLock::new();
    KILL.get_or_init(|| {
        let text = std::env::var("CTSYNC_KILL_AT").ok()?;
        if text == "count" {
            return Some(ProcessKill::Count);
        }
        let (step, nth) = match text.split_once(':') {
            Some((step, nth)) => (step, nth.parse().ok()?),
            None => (text.as_str(), 1),
        };
        Some(ProcessKill::At(CrashAt::new(Step::parse(step)?, nth)))
    })
    .as_ref()
}

/// Called at each boundary. True means: stop here as if the process died (in process);
/// with `CTSYNC_KILL_AT` set the process is aborted instead and this never returns.
pub(crate) fn reached(step: Step, crash: Option<&CrashAt>) -> bool {
    match process_kill_point() {
        Some(ProcessKill::At(kill)) if kill.hit(step) => {
            tracing::error!(step = step.as_str(), "CTSYNC_KILL_AT reached: aborting");
            std::process::abort();
        }
        Some(ProcessKill::Count) => {
            tracing::warn!(
                event = "killPointReached",
                step = step.as_str(),
                "kill point reached"
            );
        }
        _ => {}
    }
    crash.is_some_and(|c| c.hit(step))
}
