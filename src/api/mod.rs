//! Admin HTTP API (axum): health, metrics, jobs, control, provisioning logs.
