//! `airssys wit diff` on mutated WIT: the compatibility engine compares a
//! valid base package set with the same set after one file was replaced by
//! the input's text.
//!
//! Input: the first line names the base (`wit/deps/core/storage.wit` for a
//! file of the repository's contract, `diff/<case>` for a case of
//! `contract/tests/diff_corpus`); the rest is the new text of that file.
//! A name that is none of these picks a base by its hash. Inputs that do
//! not parse or resolve are skipped.
//!
//! Never a panic; the same text resolved twice gives the same diff; a
//! package set compared with itself shows no change, no hygiene finding
//! and, at load time, no import mismatch; the JSON report reads back equal.
//!
//! A panic inside wit-parser while it parses and resolves the input is not
//! the project's: the input is skipped as one that does not parse, and the
//! panic is printed once per place (`wit-parser panicked (input skipped)`)
//! so runs still show it. wit-parser 0.258.3 to 0.263.0 panic on invalid
//! gates (`@since` twice, `@since` with `@unstable`) on an import or export
//! of another package (`populate_foreign_deps` unwraps the error); see
//! docs/fuzzing.md.

#![no_main]

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use airssys_contract::compat::{Report, check_world_imports, diff, report};
use airssys_fuzz::repo_root;
use libfuzzer_sys::fuzz_target;
use wit_parser::{Resolve, SourceMap};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (key, body) = text.split_once('\n').unwrap_or((text, ""));
    let base = Base::pick(key);
    let Some(new) = base.sources.resolve(Some((base.file, body))) else {
        return;
    };
    let Some(again) = base.sources.resolve(Some((base.file, body))) else {
        panic!("the same text resolved once and failed the second time");
    };
    let old = &base.old;

    let forward = diff(old, &new);
    assert_eq!(forward, diff(old, &again), "diff is not stable");
    let _ = diff(&new, old);

    let own = diff(&new, &again);
    assert!(
        own.changes.is_empty() && own.hygiene.is_empty(),
        "a package set differs from itself: {own:#?}"
    );

    let root = Path::new(&base.sources.root);
    let r = report(old, &new, root, root);
    let json = r.to_json();
    match Report::from_json(&json) {
        Ok(back) => assert_eq!(back, r, "the JSON report does not read back equal"),
        Err(e) => panic!("the JSON report does not parse: {e}\n{json}"),
    }
    let _ = r.to_text();

    // Load time: every world of NEW as a component, against OLD and
    // against itself (no mismatch when package names are unique, so the
    // host cannot pick another version of a package).
    let names: HashSet<_> = new
        .packages
        .iter()
        .map(|(_, p)| (&p.name.namespace, &p.name.name))
        .collect();
    let unique = names.len() == new.packages.len();
    for (world, _) in new.worlds.iter() {
        let _ = check_world_imports(&new, world, old);
        if unique {
            let mismatches = check_world_imports(&new, world, &again);
            assert!(
                mismatches.is_empty(),
                "a world mismatches its own package set: {mismatches:#?}"
            );
        }
    }
});

/// The WIT files of one package set: a main package and its dependencies.
struct Sources {
    /// Where the files live, for report locations.
    root: String,
    main: Vec<(String, String)>,
    deps: Vec<Vec<(String, String)>>,
}

/// Which file of a [`Sources`] the input replaces: `(None, i)` is the
/// main package's `i`th file, `(Some(d), i)` the `d`th dependency's.
type FileRef = (Option<usize>, usize);

impl Sources {
    /// Parses and resolves the set, with one file's text replaced; `None`
    /// when it does not parse or resolve (or wit-parser panics on it).
    fn resolve(&self, replace: Option<(FileRef, &str)>) -> Option<Resolve> {
        guard_wit_parser();
        panic::catch_unwind(AssertUnwindSafe(|| self.resolve_unguarded(replace)))
            .ok()
            .flatten()
    }

    fn resolve_unguarded(&self, replace: Option<(FileRef, &str)>) -> Option<Resolve> {
        let group = |dep: Option<usize>, files: &[(String, String)]| {
            let mut map = SourceMap::new();
            for (i, (path, text)) in files.iter().enumerate() {
                let text = match replace {
                    Some(((d, f), new)) if d == dep && f == i => new,
                    _ => text.as_str(),
                };
                map.push_str(path, text);
            }
            map.parse().ok()
        };
        let main = group(None, &self.main)?;
        let deps = (self.deps.iter().enumerate())
            .map(|(d, files)| group(Some(d), files))
            .collect::<Option<Vec<_>>>()?;
        let mut resolve = Resolve::new();
        // As `airssys wit diff` loads: unstable items are compared too.
        resolve.all_features = true;
        resolve.push_groups(main, deps).ok()?;
        Some(resolve)
    }
}

/// Wraps libFuzzer's panic hook (which aborts) once: a panic located in
/// wit-parser's own source is printed once per place and unwinds to the
/// `catch_unwind` in [`Sources::resolve`]; any other panic is a finding.
fn guard_wit_parser() {
    static GUARD: OnceLock<()> = OnceLock::new();
    GUARD.get_or_init(|| {
        let fuzzer_hook = panic::take_hook();
        let seen: Mutex<HashSet<String>> = Mutex::default();
        panic::set_hook(Box::new(move |info| {
            let Some(place) = info
                .location()
                .filter(|l| l.file().contains("/wit-parser-"))
                .map(|l| format!("{}:{}", l.file(), l.line()))
            else {
                return fuzzer_hook(info);
            };
            if seen.lock().is_ok_and(|mut s| s.insert(place.clone())) {
                let message = info.payload_as_str().unwrap_or("").replace('\n', " ");
                eprintln!("wit-parser panicked (input skipped) at {place}: {message}");
            }
        }));
    });
}

/// A base to mutate: a package set, the file the input replaces, and the
/// set resolved as it is.
struct Base {
    key: String,
    sources: &'static Sources,
    file: FileRef,
    old: Resolve,
}

impl Base {
    fn pick(key: &str) -> &'static Base {
        let bases = bases();
        bases.iter().find(|b| b.key == key).unwrap_or_else(|| {
            // FNV-1a: any key still picks some base.
            let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            &bases[(hash % bases.len() as u64) as usize]
        })
    }
}

fn bases() -> &'static [Base] {
    static BASES: OnceLock<Vec<Base>> = OnceLock::new();
    BASES.get_or_init(|| {
        let repo = repo_root();
        let mut bases = Vec::new();
        let mut add = |sources: Sources, keys: Vec<(String, FileRef)>| {
            let sources: &'static Sources = Box::leak(Box::new(sources));
            let old = sources
                .resolve(None)
                .unwrap_or_else(|| panic!("fuzz seeds: {} does not resolve", sources.root));
            for (key, file) in keys {
                bases.push(Base {
                    key,
                    sources,
                    file,
                    old: old.clone(),
                });
            }
        };

        // The repository's contract: one base per file.
        let wit = repo.join("wit");
        let main = wit_files(&wit);
        let mut deps = Vec::new();
        for entry in sorted_entries(&wit.join("deps")) {
            deps.push(if entry.is_dir() {
                wit_files(&entry)
            } else {
                vec![read(&entry)]
            });
        }
        let mut keys: Vec<(String, FileRef)> = Vec::new();
        for (i, (path, _)) in main.iter().enumerate() {
            keys.push((path.clone(), (None, i)));
        }
        for (d, files) in deps.iter().enumerate() {
            for (i, (path, _)) in files.iter().enumerate() {
                keys.push((path.clone(), (Some(d), i)));
            }
        }
        add(
            Sources {
                root: "wit".into(),
                main,
                deps,
            },
            keys,
        );

        // The diff corpus: each case's OLD package (one file).
        for case in sorted_entries(&repo.join("contract/tests/diff_corpus")) {
            if !case.is_dir() {
                continue;
            }
            let name = case.file_name().map(|n| n.to_string_lossy().into_owned());
            let main = wit_files(&case.join("old"));
            if main.len() != 1 {
                continue;
            }
            add(
                Sources {
                    root: "old".into(),
                    main,
                    deps: Vec::new(),
                },
                vec![(format!("diff/{}", name.unwrap_or_default()), (None, 0))],
            );
        }
        assert!(bases.len() > 20, "only {} WIT bases", bases.len());
        bases
    })
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

/// The `.wit` files directly in `dir`, named relative to the repository.
fn wit_files(dir: &Path) -> Vec<(String, String)> {
    sorted_entries(dir)
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "wit"))
        .map(|p| read(&p))
        .collect()
}

fn read(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("fuzz seeds: cannot read {}: {e}", path.display()));
    let root = repo_root();
    let name = path.strip_prefix(&root).unwrap_or(path);
    (name.display().to_string(), text)
}
