//! One module per subcommand; each exposes `Args` (clap) and
//! `run(Args) -> u8` (the exit code).

pub(crate) mod cache;
pub(crate) mod cap_check;
pub(crate) mod component;
pub(crate) mod diff;
pub(crate) mod inspect;
pub(crate) mod manifest;
pub(crate) mod nats;
pub(crate) mod new;
pub(crate) mod observe;
pub(crate) mod policy;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod sign;
pub(crate) mod storage;
pub(crate) mod wit_check;
pub(crate) mod wit_diff;
pub(crate) mod wit_doc;
pub(crate) mod wit_export;

use std::ops::Deref;
use std::path::Path;

use airssys_contract::model::Contract;

/// Output formats shared by the commands that offer `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Human-readable lines.
    Text,
    /// A stable JSON report (fields documented in `docs/cli.md`).
    Json,
}

impl Format {
    /// Prints `report` to stdout in this format: `text` for
    /// [`Format::Text`], the pretty JSON of `report` for [`Format::Json`].
    ///
    /// # Errors
    ///
    /// The message to print when the report cannot be written as JSON.
    pub(crate) fn print<R: serde::Serialize>(
        self,
        report: &R,
        text: impl FnOnce(&R) -> String,
    ) -> Result<(), String> {
        match self {
            Format::Text => print!("{}", text(report)),
            Format::Json => {
                let json = serde_json::to_string_pretty(report)
                    .map_err(|e| format!("cannot write the JSON report: {e}"))?;
                println!("{json}");
            }
        }
        Ok(())
    }
}

/// The contract in `dir`, or the one embedded in airssys when `dir` is
/// `None`. A directory that does not load is reported on stderr (with the
/// file and line wit-parser gives) and yields exit code 2.
pub(crate) fn load_contract(dir: Option<&Path>) -> Result<LoadedContract, u8> {
    match dir {
        None => Ok(LoadedContract::Embedded(Contract::embedded())),
        Some(dir) => Contract::load_dir(dir)
            .map(|c| LoadedContract::Loaded(Box::new(c)))
            .map_err(|e| {
                eprintln!("error: {e}");
                2
            }),
    }
}

/// The embedded contract, or one loaded from a directory.
pub(crate) enum LoadedContract {
    /// The contract shipped inside airssys.
    Embedded(&'static Contract),
    /// A contract read from disk.
    Loaded(Box<Contract>),
}

impl Deref for LoadedContract {
    type Target = Contract;

    fn deref(&self) -> &Contract {
        match self {
            LoadedContract::Embedded(contract) => contract,
            LoadedContract::Loaded(contract) => contract,
        }
    }
}
