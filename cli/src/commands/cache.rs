//! The compile cache of `airssys run` (wasmtime's cache: compiled
//! components keyed by their SHA-256, the wasmtime version and the engine
//! settings), and `airssys cache dir|clear`.
//!
//! The directory: `--cache-dir DIR`, else `$AIRSSYS_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/airssys/compiled`, else `~/.cache/airssys/compiled`.
//! `--no-cache` compiles every time. The runtime refuses a directory that
//! another user could write to (see docs/decisions/compile-cache.md).

use std::path::PathBuf;

/// The cache options of `airssys run`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CacheArgs {
    /// Keep compiled components in DIR [env: AIRSSYS_CACHE_DIR; default:
    /// ~/.cache/airssys/compiled].
    #[arg(long, value_name = "DIR", env = "AIRSSYS_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every component, neither reading nor writing the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl CacheArgs {
    /// The cache directory to use, `None` with `--no-cache` or when no
    /// home directory is known.
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(default_dir)
    }
}

/// `$XDG_CACHE_HOME/airssys/compiled`, else `$HOME/.cache/airssys/compiled`.
fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("airssys").join("compiled"))
}

/// `airssys cache ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print the compile cache directory.
    Dir(CacheArgs),
    /// Remove every compiled component from the cache.
    Clear(CacheArgs),
}

/// Runs `airssys cache ...`; returns the exit code.
pub(crate) fn run(command: Command) -> u8 {
    match command {
        Command::Dir(args) => match args.dir() {
            Some(dir) => {
                println!("{}", dir.display());
                0
            }
            None => {
                eprintln!(
                    "error: no compile cache directory: set AIRSSYS_CACHE_DIR or pass --cache-dir"
                );
                2
            }
        },
        Command::Clear(args) => {
            let Some(dir) = args.dir() else {
                eprintln!(
                    "error: no compile cache directory: set AIRSSYS_CACHE_DIR or pass --cache-dir"
                );
                return 2;
            };
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    println!("cleared {}", dir.display());
                    0
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    println!("{} is already empty", dir.display());
                    0
                }
                Err(e) => {
                    eprintln!("error: cannot clear {}: {e}", dir.display());
                    2
                }
            }
        }
    }
}
