//! Jobs, cycles, apply, escrow, quarantine, schedule, shutdown. The only layer that calls
//! `graph` and `store`.
