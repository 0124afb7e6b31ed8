//! ctsync: a self-hosted, reconciling cross-tenant user synchronization controller for
//! Microsoft Entra, and a Microsoft Graph emulator to run it against.
//!
//! Layers (see ARCHITECTURE.md): `expr`, `scope`, `mapping` and `plan` are pure; only `engine`
//! talks to `graph` and `store`; `emulator` shares no code with `graph` or `engine`.

pub mod api;
pub mod bench;
pub mod config;
pub mod emulator;
pub mod engine;
pub mod expr;
pub mod graph;
pub mod mapping;
pub mod plan;
pub mod scope;
pub mod store;
pub mod telemetry;
