//! One module per subcommand; each exposes `Args` (clap) and
//! `run(Args) -> u8` (the exit code).

pub(crate) mod cap_check;
pub(crate) mod inspect;
pub(crate) mod wit_check;
pub(crate) mod wit_diff;
pub(crate) mod wit_doc;
