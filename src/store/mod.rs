//! State store: a trait and its SQLite implementation (embedded default).
