//! `airssys new <name> [--template T] [--path DIR] [--airssys-path PATH]`:
//! a component crate from a template.
//!
//! The crate is written to `DIR/<name>` (default `./<name>`): `Cargo.toml`
//! (a `cdylib` in its own workspace), `src/lib.rs` (an
//! `#[airssys::component]` whose capabilities are declared in the
//! attribute), `policy.toml` (the host policy that grants them),
//! `README.md` and `.gitignore`. The templates are embedded in the binary.
//!
//! The `airssys` dependency: `--airssys-path` (or `AIRSSYS_PATH`) when
//! given; otherwise the repository this command was built from, when it is
//! still there (`cargo install --path cli` records where its sources are);
//! otherwise the published version (`{ version = "MAJOR.MINOR" }`).
//!
//! Exit codes: 0 created; 2 invalid input (a name that is not a valid
//! crate name, a target directory that exists and is not empty, an
//! `--airssys-path` that is not the airssys repository, a write error).

use std::fmt;
use std::path::{Path, PathBuf};

/// Arguments of `airssys new`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The crate name, also the component's manifest name (an ASCII letter
    /// first, then lower-case letters, digits, `-` and `_`).
    name: String,
    /// What the component does.
    #[arg(long, short, value_enum, default_value_t = Template::Storage)]
    template: Template,
    /// The directory to create the crate in (default: the current one).
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// Depend on airssys through a path (its repository root). Default:
    /// the repository this command was built from, when it is still there,
    /// else the crates.io version.
    #[arg(long, value_name = "PATH", env = "AIRSSYS_PATH")]
    airssys_path: Option<PathBuf>,
}

/// The templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Template {
    /// A counter in a key-value bucket (`kv`).
    Storage,
    /// Publishes on a topic and handles incoming messages (`msg`).
    Messaging,
    /// An HTTP GET to a host named in the init configuration (`net`).
    Network,
    /// Lists and reads the files under `/data` (`fs`).
    Filesystem,
}

impl Template {
    fn name(self) -> &'static str {
        match self {
            Template::Storage => "storage",
            Template::Messaging => "messaging",
            Template::Network => "network",
            Template::Filesystem => "filesystem",
        }
    }

    /// The `airssys run` command that builds and runs the generated crate
    /// from its directory (the `next:` line and the README's "Run").
    fn run_command(self) -> &'static str {
        match self {
            // The component reads `/data`: mount a directory there (the
            // crate's own `src/`, which exists).
            Template::Filesystem => "airssys run . --policy policy.toml --mount /data=src",
            _ => "airssys run . --policy policy.toml",
        }
    }

    /// `(src/lib.rs, policy.toml, README.md)` of the template.
    fn files(self) -> (&'static str, &'static str, &'static str) {
        macro_rules! template {
            ($dir:literal) => {
                (
                    include_str!(concat!("../../templates/", $dir, "/lib.rs")),
                    include_str!(concat!("../../templates/", $dir, "/policy.toml")),
                    include_str!(concat!("../../templates/", $dir, "/README.md")),
                )
            };
        }
        match self {
            Template::Storage => template!("storage"),
            Template::Messaging => template!("messaging"),
            Template::Network => template!("network"),
            Template::Filesystem => template!("filesystem"),
        }
    }
}

const CARGO_TOML: &str = include_str!("../../templates/Cargo.toml.in");
const GITIGNORE: &str = include_str!("../../templates/gitignore.in");

/// Why `airssys new` refused.
#[derive(Debug, thiserror::Error)]
enum NewError {
    #[error("invalid name `{name}`: {reason}")]
    Name { name: String, reason: String },
    #[error(
        "{} already exists and is not empty; choose another name or `--path`, or remove it",
        .0.display()
    )]
    NotEmpty(PathBuf),
    #[error("{} exists and is not a directory; choose another name or `--path`", .0.display())]
    NotADirectory(PathBuf),
    #[error(
        "--airssys-path {}: {reason}; pass the root of the airssys repository (the directory whose Cargo.toml has `name = \"airssys\"`)",
        path.display()
    )]
    AirssysPath { path: PathBuf, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs the command and returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    match create(&args) {
        Ok(created) => {
            print!("{created}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// What was created, for the summary.
struct Created {
    name: String,
    template: Template,
    dir: PathBuf,
    files: Vec<&'static str>,
    airssys: Dependency,
}

/// Where the generated crate gets airssys from.
#[derive(Debug, PartialEq, Eq)]
enum Dependency {
    /// The repository named by `--airssys-path` or `AIRSSYS_PATH`.
    Given(PathBuf),
    /// The repository this command was built from.
    BuiltFrom(PathBuf),
    /// The published crate.
    CratesIo,
}

impl Dependency {
    /// The dependency's TOML value.
    fn toml(&self) -> String {
        match self {
            Dependency::Given(root) | Dependency::BuiltFrom(root) => path_dependency(root),
            Dependency::CratesIo => version_dependency(),
        }
    }
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "created component `{}` (template `{}`) in {}",
            self.name,
            self.template.name(),
            self.dir.display()
        )?;
        for file in &self.files {
            writeln!(f, "  {file}")?;
        }
        match &self.airssys {
            Dependency::Given(root) => {
                writeln!(f, "airssys from {} (--airssys-path)", root.display())?;
            }
            Dependency::BuiltFrom(root) => writeln!(
                f,
                "airssys from {} (the repository this airssys command was built from; \
                 --airssys-path chooses another)",
                root.display()
            )?,
            Dependency::CratesIo => writeln!(
                f,
                "airssys {} from crates.io (--airssys-path PATH depends on a checkout instead)",
                version_requirement()
            )?,
        }
        writeln!(f, "next:")?;
        writeln!(f, "  cd {}", self.dir.display())?;
        writeln!(
            f,
            "  {}   # build it and run it under its policy",
            self.template.run_command()
        )
    }
}

fn create(args: &Args) -> Result<Created, NewError> {
    check_name(&args.name)?;
    let airssys = match &args.airssys_path {
        Some(path) => {
            Dependency::Given(airssys_root(path).map_err(|reason| NewError::AirssysPath {
                path: path.clone(),
                reason,
            })?)
        }
        None => default_dependency(built_from()),
    };
    let dependency = airssys.toml();
    let dir = args
        .path
        .as_deref()
        .unwrap_or(Path::new("."))
        .join(&args.name);
    check_target(&dir)?;

    let values = Values {
        name: &args.name,
        type_name: &type_name(&args.name),
        lib_name: &args.name.replace('-', "_"),
        template: args.template.name(),
        airssys: &dependency,
    };
    let (lib, policy, readme) = args.template.files();
    let files: [(&'static str, &str); 5] = [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", lib),
        ("policy.toml", policy),
        ("README.md", readme),
        (".gitignore", GITIGNORE),
    ];
    let mut written = Vec::new();
    for (file, template) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| NewError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, values.render(template))
            .map_err(|source| NewError::Io { path, source })?;
        written.push(file);
    }
    Ok(Created {
        name: args.name.clone(),
        template: args.template,
        dir,
        files: written,
        airssys,
    })
}

/// The values substituted into a template.
struct Values<'a> {
    /// `{{name}}`: the crate and component name.
    name: &'a str,
    /// `{{type}}`: the component struct (`my-counter` → `MyCounter`).
    type_name: &'a str,
    /// `{{lib}}`: the library (and `.wasm` file) name (`my_counter`).
    lib_name: &'a str,
    /// `{{template}}`: the template's name.
    template: &'a str,
    /// `{{airssys}}`: the dependency's TOML value.
    airssys: &'a str,
}

impl Values<'_> {
    fn render(&self, template: &str) -> String {
        template
            .replace("{{name}}", self.name)
            .replace("{{type}}", self.type_name)
            .replace("{{lib}}", self.lib_name)
            .replace("{{template}}", self.template)
            .replace("{{airssys}}", self.airssys)
    }
}

/// Names cargo refuses, or that clash with what the crate uses.
const RESERVED: &[&str] = &[
    "airssys",
    "alloc",
    "core",
    "proc_macro",
    "proc-macro",
    "std",
    "test",
    // Rust keywords (cargo refuses them as package names).
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// The longest name accepted (crates.io's limit).
const MAX_NAME: usize = 64;

/// A valid crate name, which is also a valid component name: an ASCII
/// letter first, then lower-case ASCII letters, digits, `-` and `_`; not a
/// keyword or a reserved crate name.
fn check_name(name: &str) -> Result<(), NewError> {
    let fail = |reason: String| NewError::Name {
        name: name.to_owned(),
        reason,
    };
    let Some(first) = name.chars().next() else {
        return Err(fail("the name is empty".to_owned()));
    };
    if !first.is_ascii_alphabetic() {
        return Err(fail(format!(
            "it starts with {first:?}; a crate name starts with an ASCII letter"
        )));
    }
    if let Some((at, bad)) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(fail(format!(
            "{bad:?} at byte {at} is not allowed; use ASCII letters, digits, `-` and `_`"
        )));
    }
    // rustc warns (`non_snake_case`) on a crate name with capitals.
    if let Some((at, bad)) = name.char_indices().find(|(_, c)| c.is_ascii_uppercase()) {
        return Err(fail(format!(
            "{bad:?} at byte {at} is upper case; use lower case (rustc warns on a crate name with capitals)"
        )));
    }
    if name.len() > MAX_NAME {
        return Err(fail(format!(
            "it is {} characters long; the limit is {MAX_NAME}",
            name.len()
        )));
    }
    if RESERVED.contains(&name) {
        return Err(fail(
            "it is a Rust keyword or a reserved crate name; choose another".to_owned(),
        ));
    }
    if airssys_contract::manifest::is_reserved_name(name) {
        return Err(fail(
            "it is reserved by the host as a component name (`cli`, `host`, `unannotated` and \
             names starting with `airssys`); choose another"
                .to_owned(),
        ));
    }
    Ok(())
}

/// `my-counter_v2` → `MyCounterV2`: the component struct's name, cased as
/// the bindings generators case WIT names.
fn type_name(name: &str) -> String {
    airssys_contract::naming::upper_camel(name)
}

/// Refuses a target that exists and is not an empty directory.
fn check_target(dir: &Path) -> Result<(), NewError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(NewError::NotEmpty(dir.to_path_buf())),
        },
        Err(_) if dir.is_file() || dir.is_symlink() => {
            Err(NewError::NotADirectory(dir.to_path_buf()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NewError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// The repository this command was built from, when it still holds the
/// `airssys` crate: a CLI built in a checkout (`cargo install --path cli`,
/// `cargo run -p airssys-cli`) compiled `cli/` there. `None` for a CLI
/// built from the published crate (its sources sit in cargo's registry
/// cache, beside no airssys repository) or whose checkout is gone.
fn built_from() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    airssys_root(root).ok()
}

/// The dependency without `--airssys-path`: the checkout this command was
/// built from when there is one, else the published crate.
fn default_dependency(built_from: Option<PathBuf>) -> Dependency {
    built_from.map_or(Dependency::CratesIo, Dependency::BuiltFrom)
}

/// `MAJOR.MINOR` of this airssys.
fn version_requirement() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let major_minor: Vec<&str> = version.split('.').take(2).collect();
    major_minor.join(".")
}

/// `{ version = "MAJOR.MINOR" }` of this airssys.
fn version_dependency() -> String {
    format!("{{ version = \"{}\" }}", version_requirement())
}

/// `{ path = "<root>" }`.
fn path_dependency(root: &Path) -> String {
    // `airssys_root` returns UTF-8 paths only.
    let root = root.to_string_lossy();
    format!("{{ path = \"{}\" }}", toml_escape(&root))
}

/// PATH, canonical, after checking that it is the root of the airssys
/// repository (its `Cargo.toml` has `name = "airssys"`) and valid UTF-8;
/// the reason otherwise.
fn airssys_root(path: &Path) -> Result<PathBuf, String> {
    let root = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let is_airssys = text
        .lines()
        .any(|line| line.split_whitespace().collect::<String>() == "name=\"airssys\"");
    if !is_airssys {
        return Err(format!(
            "{} is not the manifest of the `airssys` crate",
            manifest.display()
        ));
    }
    if root.to_str().is_none() {
        return Err("the path is not valid UTF-8".to_owned());
    }
    Ok(root)
}

/// Escapes a TOML basic string's content.
fn toml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> String {
        match check_name(name) {
            Err(e) => e.to_string(),
            Ok(()) => format!("`{name}` was accepted"),
        }
    }

    #[test]
    fn valid_names_are_accepted() {
        for name in ["counter", "my-counter", "my_counter2", "a1"] {
            assert!(check_name(name).is_ok(), "{name}: {}", reason(name));
        }
    }

    #[test]
    fn a_bad_character_is_named() {
        assert_eq!(
            reason("my.counter"),
            "invalid name `my.counter`: '.' at byte 2 is not allowed; use ASCII letters, digits, `-` and `_`"
        );
        assert!(
            reason("zähler").contains("'ä' at byte 1"),
            "{}",
            reason("zähler")
        );
        assert!(reason("a b").contains("' ' at byte 1"), "{}", reason("a b"));
        assert!(
            reason("myApp").contains("'A' at byte 2 is upper case"),
            "{}",
            reason("myApp")
        );
    }

    #[test]
    fn a_bad_first_character_is_named() {
        assert!(
            reason("1st").contains("starts with '1'"),
            "{}",
            reason("1st")
        );
        assert!(reason("-x").contains("starts with '-'"), "{}", reason("-x"));
        assert!(reason("").contains("empty"), "{}", reason(""));
    }

    #[test]
    fn keywords_reserved_and_long_names_are_refused() {
        for name in [
            "fn",
            "test",
            "std",
            "airssys",
            "self",
            "airssys-demo",
            "host",
            "cli",
        ] {
            assert!(
                reason(name).contains("reserved"),
                "{name}: {}",
                reason(name)
            );
        }
        let long = "a".repeat(MAX_NAME + 1);
        assert!(
            reason(&long).contains("the limit is 64"),
            "{}",
            reason(&long)
        );
        assert!(check_name(&"a".repeat(MAX_NAME)).is_ok());
    }

    #[test]
    fn type_names_are_upper_camel() {
        assert_eq!(type_name("counter"), "Counter");
        assert_eq!(type_name("my-counter_v2"), "MyCounterV2");
        assert_eq!(type_name("a--b"), "AB");
        assert_eq!(type_name("httpFetch"), "HttpFetch");
    }

    #[test]
    fn an_existing_non_empty_directory_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert!(check_target(&tmp.path().join("absent")).is_ok());
        assert!(
            check_target(tmp.path()).is_ok(),
            "an empty directory is fine"
        );
        std::fs::write(tmp.path().join("keep.txt"), "x").expect("write");
        let err = check_target(tmp.path()).expect_err("not empty");
        assert!(matches!(err, NewError::NotEmpty(_)), "{err}");
        assert!(err.to_string().contains("already exists and is not empty"));
        let err = check_target(&tmp.path().join("keep.txt")).expect_err("a file");
        assert!(matches!(err, NewError::NotADirectory(_)), "{err}");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let values = Values {
            name: "my-app",
            type_name: "MyApp",
            lib_name: "my_app",
            template: "x",
            airssys: "{ version = \"0.1\" }",
        };
        for template in [
            Template::Storage,
            Template::Messaging,
            Template::Network,
            Template::Filesystem,
        ] {
            let (lib, policy, readme) = template.files();
            for text in [CARGO_TOML, GITIGNORE, lib, policy, readme] {
                let out = values.render(text);
                assert!(!out.contains("{{"), "{}: {out}", template.name());
            }
            assert!(values.render(lib).contains("struct MyApp;"));
            assert!(values.render(policy).contains("[components.my-app]"));
        }
    }

    #[test]
    fn dependencies() {
        assert_eq!(version_dependency(), "{ version = \"0.1\" }");
        assert_eq!(toml_escape(r#"C:\a "b""#), r#"C:\\a \"b\""#);
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = airssys_root(tmp.path()).expect_err("no Cargo.toml");
        assert!(err.contains("cannot read"), "{err}");
        std::fs::write(
            tmp.path().join("Cargo.toml"),
            "[package]\nname = \"other\"\n",
        )
        .expect("write");
        let err = airssys_root(tmp.path()).expect_err("not airssys");
        assert!(err.contains("is not the manifest"), "{err}");
        std::fs::write(
            tmp.path().join("Cargo.toml"),
            "[package]\nname = \"airssys\"\n",
        )
        .expect("write");
        let root = airssys_root(tmp.path()).expect("airssys");
        let dep = Dependency::Given(root.clone()).toml();
        assert_eq!(
            dep,
            format!(
                "{{ path = \"{}\" }}",
                toml_escape(root.to_str().expect("utf-8"))
            )
        );
    }

    #[test]
    fn the_default_is_the_checkout_built_from_else_crates_io() {
        // This test binary was built in the repository.
        let root = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .expect("the repository");
        assert_eq!(built_from(), Some(root.clone()));
        assert_eq!(
            default_dependency(Some(root.clone())),
            Dependency::BuiltFrom(root)
        );
        // A CLI built from the published crate knows no checkout.
        assert_eq!(default_dependency(None), Dependency::CratesIo);
        assert_eq!(Dependency::CratesIo.toml(), "{ version = \"0.1\" }");
    }
}
