use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    eprintln!("ctsync run: not built yet");
    Ok(ExitCode::from(super::EXIT_USAGE))
}
