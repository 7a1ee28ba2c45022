//! Not built yet.

/// Arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs the command and returns the exit code.
pub(crate) fn run(_args: Args) -> u8 {
    eprintln!("error: not built yet");
    2
}
