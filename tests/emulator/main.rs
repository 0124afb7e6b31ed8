//! Integration tests of the Graph emulator over loopback HTTP (the real server, in-process).

mod auth;
mod batch;
mod cli;
mod common;
mod conformance;
mod delta;
mod directory;
mod errors;
mod faults_state;
mod groups;
mod invitations;
mod policy;
mod scale;
mod strict;
mod throttling;
mod users;
