//! `airssys wit check [DIR]`: lint a WIT contract.
//!
//! Prints each problem as `file:line: message` and exits 1 if there are
//! any; on success prints `ok: <summary>`. Exits 2 when the directory does
//! not exist or its WIT does not parse (wit-parser's error, with file and
//! line, goes to stderr).

use std::path::PathBuf;

/// Arguments of `airssys wit check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The WIT directory to check (top-level `*.wit` files plus `deps/`);
    /// default: the contract embedded in airssys.
    dir: Option<PathBuf>,
}

/// Runs the command and returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    let contract = match super::load_contract(args.dir.as_deref()) {
        Ok(contract) => contract,
        Err(code) => return code,
    };
    let contract = &*contract;
    let problems = contract.lint();
    if problems.is_empty() {
        println!("ok: {}", contract.summary());
        return 0;
    }
    for problem in &problems {
        println!("{problem}");
    }
    let s = if problems.len() == 1 { "" } else { "s" };
    eprintln!("error: {} problem{s} in the contract", problems.len());
    1
}
