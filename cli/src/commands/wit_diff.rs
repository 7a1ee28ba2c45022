//! `airssys wit diff OLD NEW [--format text|json] [--strict]`: classify
//! every change between two WIT versions and check the declared bump.
//!
//! OLD and NEW are WIT directories (with `deps/`), directories of package
//! directories, or single `.wit` files. Exits 0 when every package's
//! declared version bump is enough (and, with `--strict`, no `@since` /
//! `@deprecated` hygiene finding), 1 when not, 2 on invalid input (the
//! error names the file and line). The JSON format is documented in
//! `docs/versioning.md`.

use std::path::PathBuf;

use airssys_contract::compat::diff_paths;

use super::Format;

/// Arguments of `airssys wit diff`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The old WIT directory or file.
    old: PathBuf,
    /// The new WIT directory or file.
    new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also fail (exit 1) on `@since` / `@deprecated` hygiene findings.
    #[arg(long)]
    strict: bool,
}

/// Runs the command and returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    let report = match diff_paths(&args.old, &args.new) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match args.format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => println!("{}", report.to_json()),
    }
    if report.passes(args.strict) {
        0
    } else {
        if !report.summary.bump_ok {
            eprintln!("error: the declared version bump is too small");
        } else {
            eprintln!("error: @since / @deprecated hygiene findings (--strict)");
        }
        1
    }
}
