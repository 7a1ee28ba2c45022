//! `airssys wit export DIR [--world W] [--force]`: the contract embedded
//! in airssys as a WIT directory, for toolchains of other languages
//! (`componentize-py -d DIR`, `componentize-js --wit DIR`,
//! `wit-bindgen c DIR`); no checkout of airssys needed.
//!
//! Without `--world` DIR receives the files of airssys's `wit/` as they
//! are; with it, the world's package at the root and in `deps/` only the
//! packages that world needs. Exit codes: 0 written; 2 an unknown world,
//! a DIR holding other files (without `--force`), or a write error.

use std::path::{Path, PathBuf};

use airssys_contract::model::Contract;

/// Arguments of `airssys wit export`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The directory to write (created when missing).
    dir: PathBuf,
    /// Only the packages this world needs, its package at the root, e.g.
    /// `airssys:core/component`.
    #[arg(long, value_name = "WORLD")]
    world: Option<String>,
    /// Write into a directory that already holds files (the exported files
    /// are overwritten; others are left as they are).
    #[arg(long)]
    force: bool,
}

/// Runs the command and returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    match export(&args) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("error: {message}");
            2
        }
    }
}

fn export(args: &Args) -> Result<(), String> {
    let tree = Contract::export_tree(args.world.as_deref()).map_err(|e| e.to_string())?;
    let dir = &args.dir;
    if !args.force && !is_empty_dir(dir)? {
        return Err(format!(
            "{} is not empty; export into a new directory, or pass `--force` to overwrite the \
             contract's files in it",
            dir.display()
        ));
    }
    for (path, text) in &tree.files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!(
        "wrote {} files to {}: {} (root){}",
        tree.files.len(),
        dir.display(),
        tree.root,
        tree.packages
            .iter()
            .skip(1)
            .map(|p| format!(", {p} (deps/)"))
            .collect::<String>()
    );
    let world = tree.world.as_deref().map_or("airssys:core/component", |w| {
        w.split_once('@').map_or(w, |(bare, _)| bare)
    });
    let d = dir.display();
    println!("build a component against it, e.g. for world `{world}`:");
    println!("  componentize-py -d {d} -w {world} componentize app -o app.wasm");
    // `--disable http fetch-event`: otherwise componentize-js imports
    // `wasi:http`, which this host does not link.
    println!(
        "  componentize-js app.js --wit {d} --world-name {world} --disable http fetch-event -o \
         app.wasm"
    );
    println!("  wit-bindgen c {d} --world {world}");
    println!(
        "then give it a manifest: airssys manifest attach app.wasm --manifest Component.toml -o \
         app.wasm (docs/other-languages.md)"
    );
    Ok(())
}

/// Whether `dir` is missing or holds nothing.
fn is_empty_dir(dir: &Path) -> Result<bool, String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if dir.is_file() => {
            Err(format!("{} is a file, not a directory: {e}", dir.display()))
        }
        Err(e) => Err(format!("cannot read {}: {e}", dir.display())),
    }
}
