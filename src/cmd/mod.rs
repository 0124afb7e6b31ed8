//! One module per subcommand: its clap `Args` and an async `run` returning the exit code.
//! Usage and configuration errors exit with status 2.

pub mod emulator;
pub mod expr;
pub mod filter;
pub mod run;
pub mod validate;

/// Exit status for usage and configuration errors.
pub const EXIT_USAGE: u8 = 2;
