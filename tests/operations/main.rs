//! Operating the engine end to end against the Graph emulator: quarantine, escrow retries, the
//! deletion guard's approval, pause/start/restart, hot reload and graceful shutdown, driven
//! through the daemon's handle and observed through its status and cycle streams.

// The sync tests' world; this binary uses only part of it.
#[allow(dead_code)]
#[path = "../sync/world.rs"]
mod world;

mod control;
mod escrow;
mod guard;
mod harness;
mod quarantine;
mod reload;
