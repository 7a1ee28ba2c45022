//! The `airssys` command.
//!
//! Exit codes: 0 success (or `allow`), 1 a finding (problems in a contract,
//! `deny`, a version bump that is too small), 2 invalid input.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod output;
mod serve;
mod sync;

/// Capability-checked WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "airssys", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with WIT contracts.
    #[command(subcommand)]
    Wit(WitCommand),
    /// Work with capabilities.
    #[command(subcommand)]
    Cap(CapCommand),
    /// The compile cache of `airssys run`: where it is, clearing it.
    #[command(subcommand)]
    Cache(commands::cache::Command),
    /// Show a component's manifest, imports and exports, and whether this
    /// host can load it.
    Inspect(commands::inspect::Args),
    /// Attach, show and check the `airssys:manifest` of components built
    /// by any toolchain (Python, JavaScript, C, ...).
    #[command(subcommand)]
    Manifest(commands::manifest::Command),
    /// Create a component crate from a template.
    New(commands::new::Args),
    /// Compare two builds of a component: capabilities widened, added,
    /// narrowed or removed, new domains, name/version findings, imports
    /// and exports.
    Diff(commands::diff::Args),
    /// Compare host policies, or propose one from an observed run.
    #[command(subcommand)]
    Policy(commands::policy::Command),
    /// Create signing keys.
    #[command(subcommand)]
    Key(commands::sign::KeyCommand),
    /// Sign a component's code and manifest (ed25519).
    Sign(commands::sign::SignArgs),
    /// Check a component's signature: against trusted keys, and that its
    /// code and manifest did not change since.
    Verify(commands::sign::VerifyArgs),
    /// Build (if crates), load and run components under a policy, deliver
    /// their messages, printing every capability decision.
    Run(Box<commands::run::Args>),
    /// Serve components over HTTP until SIGINT/SIGTERM: requests, host
    /// messages, health, status, metrics and live policy reload.
    Serve(Box<commands::serve::Args>),
    /// Storage over NATS: repair usage counters.
    #[command(subcommand)]
    Storage(commands::storage::Command),
}

#[derive(Debug, Subcommand)]
enum WitCommand {
    /// Lint a WIT contract: every host function must state its capability.
    Check(commands::wit_check::Args),
    /// Classify every change between two WIT versions.
    Diff(commands::wit_diff::Args),
    /// Generate the Markdown reference of a WIT contract.
    Doc(commands::wit_doc::Args),
    /// Write the contract embedded in airssys as a WIT directory, for
    /// componentize-py, componentize-js, wit-bindgen and other toolchains.
    Export(commands::wit_export::Args),
}

#[derive(Debug, Subcommand)]
enum CapCommand {
    /// Decide one capability request against grants and denies.
    Check(commands::cap_check::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Wit(WitCommand::Check(args)) => commands::wit_check::run(args),
        Command::Wit(WitCommand::Diff(args)) => commands::wit_diff::run(args),
        Command::Wit(WitCommand::Doc(args)) => commands::wit_doc::run(args),
        Command::Wit(WitCommand::Export(args)) => commands::wit_export::run(args),
        Command::Cap(CapCommand::Check(args)) => commands::cap_check::run(args),
        Command::Cache(command) => commands::cache::run(command),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Manifest(command) => commands::manifest::run(command),
        Command::New(args) => commands::new::run(args),
        Command::Run(args) => commands::run::run(*args),
        Command::Diff(args) => commands::diff::run(args),
        Command::Policy(command) => commands::policy::run(command),
        Command::Key(command) => commands::sign::key(command),
        Command::Sign(args) => commands::sign::sign(args),
        Command::Verify(args) => commands::sign::verify(args),
        Command::Serve(args) => commands::serve::run(*args),
        Command::Storage(command) => commands::storage::run(command),
    };
    ExitCode::from(code)
}
