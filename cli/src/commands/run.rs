//! `airssys run <component.wasm | crate dir> [--policy FILE] [--grant P]...
//! [--deny P]... [--storage PATH] [--request PAYLOAD]... [--fail-on-deny]`.
//!
//! A crate directory is built first (`cargo build --target wasm32-wasip2
//! --release`, cargo's progress on stderr; the target is installed with
//! rustup when missing) and its `.wasm` found through `cargo metadata`.
//! The component is then loaded with `airssys_runtime` under the policy
//! (the file, plus `--grant` / `--deny` rules for this component),
//! instantiated (which calls its `init` with the policy's configuration),
//! sent each `--request` in order (replies printed), and shut down. Every
//! capability decision is printed as it happens; a denial is followed by
//! the fix.
//!
//! Exit codes: 0 the component ran to the end (denied calls are reported,
//! and the component decides what to do with them; `--fail-on-deny` turns
//! them into exit 1); 1 the component was refused at load time, its `init`
//! failed, or it trapped or hit a limit; 2 invalid input (arguments, the
//! policy file, a crate that does not build, a file that is not a
//! component).

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use airssys_contract::capability::Capability;
use airssys_contract::manifest::Manifest;
use airssys_runtime::{AuditLog, LoadError, Policy, Runtime, RuntimeError, UNANNOTATED_NAME};

/// Arguments of `airssys run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A built component (`.wasm`) or the directory of a component crate
    /// (built for `wasm32-wasip2` first).
    component: PathBuf,
    /// The host policy (TOML, see docs/policy.md). Without it nothing is
    /// granted except `--grant` rules.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Also grant this capability pattern to the component (repeatable).
    #[arg(long = "grant", value_name = "PATTERN")]
    grants: Vec<String>,
    /// Deny this capability pattern to the component, even when granted
    /// (repeatable).
    #[arg(long = "deny", value_name = "PATTERN")]
    denies: Vec<String>,
    /// Keep storage in this redb file (default: in memory, gone at exit).
    #[arg(long, value_name = "PATH")]
    storage: Option<PathBuf>,
    /// Send this payload (UTF-8 text) to the component's
    /// `handler.handle-request` after `init`, and print the reply
    /// (repeatable, sent in order).
    #[arg(long = "request", value_name = "PAYLOAD")]
    requests: Vec<String>,
    /// The caller name the component sees in `handle-request`.
    #[arg(long, value_name = "NAME", default_value = "cli")]
    source: String,
    /// Exit 1 when any host call was denied.
    #[arg(long)]
    fail_on_deny: bool,
}

/// An exit code with its message already printed.
type Exit = u8;

/// Runs `airssys run`; returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    match run_inner(&args) {
        Ok(code) | Err(code) => code,
    }
}

fn fail(code: Exit, message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    code
}

fn run_inner(args: &Args) -> Result<Exit, Exit> {
    let wasm = if args.component.is_dir() {
        build_crate(&args.component)?
    } else if args.component.is_file() {
        args.component.clone()
    } else {
        return Err(fail(
            2,
            format_args!(
                "{} is neither a component file nor a crate directory; pass the `.wasm` \
                 or the directory holding the crate's Cargo.toml",
                args.component.display()
            ),
        ));
    };
    let bytes = std::fs::read(&wasm).map_err(|e| {
        fail(
            2,
            format_args!("cannot read component {}: {e}", wasm.display()),
        )
    })?;
    let manifest = Manifest::from_wasm(&bytes).map_err(|e| {
        fail(
            2,
            format_args!("{} is not a readable component: {e}", wasm.display()),
        )
    })?;
    let name = manifest
        .as_ref()
        .map_or(UNANNOTATED_NAME, |m| m.name.as_str())
        .to_owned();

    let extra_grants = parse_patterns("--grant", &args.grants)?;
    let extra_denies = parse_patterns("--deny", &args.denies)?;
    let policy = build_policy(args, &name, &extra_grants, &extra_denies)?;

    let sink = AuditSink::default();
    let mut builder = Runtime::builder()
        .policy(policy)
        .audit(AuditLog::to_writer(sink.clone()));
    builder = match &args.storage {
        Some(path) => builder.storage_path(path),
        None => builder.in_memory_storage(),
    };
    let runtime = builder
        .build()
        .map_err(|e| fail(2, format_args!("cannot start the runtime: {e}")))?;
    let _logs = component_logs::install(sink.clone());

    let loaded = match runtime.load(&bytes) {
        Ok(loaded) => loaded,
        Err(error) => return Err(load_refused(&wasm, &error, args)),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "loaded `{}`{} from {}",
        loaded.name(),
        loaded
            .manifest()
            .map(|m| format!(" {}", m.version))
            .unwrap_or_default(),
        wasm.display()
    );
    let granted = loaded.grants().allows();
    let _ = writeln!(out, "  granted: {}", list(granted));
    if let Some(manifest) = loaded.manifest() {
        let missing: Vec<Capability> = manifest
            .optional
            .iter()
            .filter(|c| !granted.contains(c))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let _ = writeln!(out, "  optional, not granted: {}", list(&missing));
        }
    }
    if !loaded.grants().denies().is_empty() {
        let _ = writeln!(out, "  denied: {}", list(loaded.grants().denies()));
    }
    print!("{out}");

    let mut report = Reporter {
        sink,
        denials: 0,
        name: name.clone(),
        policy: args.policy.clone(),
        declared: loaded
            .manifest()
            .map(|m| m.requires.iter().chain(&m.optional).cloned().collect())
            .unwrap_or_default(),
    };
    println!("init");
    let instance = loaded.instantiate();
    report.flush();
    let mut instance = match instance {
        Ok(instance) => {
            println!("  -> ok");
            instance
        }
        Err(error) => return Err(runtime_failed("init", &error)),
    };
    for payload in &args.requests {
        println!("request {payload:?}");
        let reply = instance.request(&args.source, payload.as_bytes());
        report.flush();
        match reply {
            Ok(Ok(bytes)) => println!("  -> reply {:?}", String::from_utf8_lossy(&bytes)),
            Ok(Err(error)) => println!("  -> the component answered with an error: {error}"),
            Err(error) => return Err(runtime_failed("request", &error)),
        }
    }
    println!("shutdown");
    let stopped = instance.shutdown();
    report.flush();
    if let Err(error) = stopped {
        return Err(runtime_failed("shutdown", &error));
    }
    println!("  -> ok");
    if report.denials > 0 {
        println!(
            "{} host call(s) denied; see the `fix:` lines above",
            report.denials
        );
        if args.fail_on_deny {
            return Ok(1);
        }
    }
    Ok(0)
}

fn list(caps: &[Capability]) -> String {
    if caps.is_empty() {
        return "(nothing)".to_owned();
    }
    caps.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_patterns(flag: &str, patterns: &[String]) -> Result<Vec<Capability>, Exit> {
    patterns
        .iter()
        .map(|p| {
            Capability::parse(p).map_err(|e| {
                fail(
                    2,
                    format_args!(
                        "{flag} `{p}` is not a capability pattern: {e}; write \
                         `domain:action[:scope]`, e.g. `kv:read:counter/*`"
                    ),
                )
            })
        })
        .collect()
}

/// The policy file (if any) with the command-line rules for `name` added.
fn build_policy(
    args: &Args,
    name: &str,
    grants: &[Capability],
    denies: &[Capability],
) -> Result<Policy, Exit> {
    let (mut table, path) = match &args.policy {
        Some(path) => {
            // Parsed as is first, so mistakes in the file are reported with
            // its path, line and column.
            let policy = Policy::from_toml_file(path).map_err(|e| fail(2, e))?;
            if grants.is_empty() && denies.is_empty() {
                return Ok(policy);
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| fail(2, format_args!("cannot read {}: {e}", path.display())))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| fail(2, format_args!("{}: {e}", path.display())))?;
            (table, path.display().to_string())
        }
        // TOML rather than the builder, so load errors quote a policy file.
        None => (toml::Table::new(), "the command line".to_owned()),
    };
    let component = table
        .entry("components")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .and_then(|components| {
            components
                .entry(name)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
        });
    let Some(component) = component else {
        return Err(fail(
            2,
            format_args!(
                "{path}: `components.{name}` is not a table; write it as `[components.{name}]`"
            ),
        ));
    };
    for (key, rules) in [("grants", grants), ("denies", denies)] {
        let entry = component
            .entry(key)
            .or_insert_with(|| toml::Value::Array(Vec::new()));
        let Some(array) = entry.as_array_mut() else {
            return Err(fail(
                2,
                format_args!("{path}: `{key}` of [components.{name}] is not a list"),
            ));
        };
        array.extend(rules.iter().map(|c| toml::Value::String(c.to_string())));
    }
    let merged = toml::to_string(&table)
        .map_err(|e| fail(2, format_args!("cannot merge the policy: {e}")))?;
    Policy::from_toml_str(&merged)
        .map_err(|e| fail(2, format_args!("{path} with --grant/--deny: {e}")))
}

/// Builds the crate in `dir` for `wasm32-wasip2` and returns its `.wasm`.
fn build_crate(dir: &Path) -> Result<PathBuf, Exit> {
    let manifest = dir.join("Cargo.toml");
    let manifest = std::fs::canonicalize(&manifest).unwrap_or(manifest);
    if !manifest.is_file() {
        return Err(fail(
            2,
            format_args!(
                "{} has no Cargo.toml; pass a component crate directory or a `.wasm` file",
                dir.display()
            ),
        ));
    }
    ensure_target(dir)?;
    eprintln!(
        "airssys: building {} (cargo build --target wasm32-wasip2 --release)",
        dir.display()
    );
    let status = Command::new("cargo")
        .args(["build", "--target", "wasm32-wasip2", "--release"])
        .arg("--manifest-path")
        .arg(&manifest)
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| fail(2, format_args!("cannot run cargo: {e}; is Rust installed?")))?;
    if !status.success() {
        return Err(fail(
            2,
            format_args!(
                "building {} failed (cargo's errors are above); fix them and run again",
                dir.display()
            ),
        ));
    }
    let wasm = locate_wasm(&manifest)?;
    eprintln!("airssys: built {}", wasm.display());
    Ok(wasm)
}

/// Installs the `wasm32-wasip2` target with rustup when it is missing.
fn ensure_target(dir: &Path) -> Result<(), Exit> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .stderr(Stdio::null())
        .output();
    let Ok(installed) = installed else {
        // No rustup: let cargo report a missing target itself.
        return Ok(());
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-wasip2")
    {
        return Ok(());
    }
    eprintln!("airssys: installing the wasm32-wasip2 target (rustup target add wasm32-wasip2)");
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .current_dir(dir)
        .status()
        .map_err(|e| fail(2, format_args!("cannot run rustup: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(
            2,
            "`rustup target add wasm32-wasip2` failed; run it yourself and try again",
        ))
    }
}

/// The `.wasm` of the crate's `cdylib` in cargo's target directory.
fn locate_wasm(manifest: &Path) -> Result<PathBuf, Exit> {
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .arg("--manifest-path")
        .arg(manifest)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| fail(2, format_args!("cannot run cargo metadata: {e}")))?;
    if !output.status.success() {
        return Err(fail(
            2,
            format_args!("`cargo metadata` failed for {}", manifest.display()),
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| fail(2, format_args!("cannot read cargo metadata: {e}")))?;
    let target_dir = metadata["target_directory"].as_str().map(PathBuf::from);
    let canonical = std::fs::canonicalize(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    let lib = metadata["packages"].as_array().and_then(|packages| {
        packages
            .iter()
            .filter(|p| {
                p["manifest_path"]
                    .as_str()
                    .is_some_and(|m| Path::new(m) == canonical)
                    || packages.len() == 1
            })
            .flat_map(|p| p["targets"].as_array().into_iter().flatten())
            .find(|t| {
                t["crate_types"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
            })
            .and_then(|t| t["name"].as_str())
            .map(|n| n.replace('-', "_"))
    });
    let (Some(target_dir), Some(lib)) = (target_dir, lib) else {
        return Err(fail(
            2,
            format_args!(
                "{} has no `cdylib` library, so it builds no component; add \
                 `[lib] crate-type = [\"cdylib\"]`",
                manifest.display()
            ),
        ));
    };
    let wasm = target_dir
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{lib}.wasm"));
    if wasm.is_file() {
        Ok(wasm)
    } else {
        Err(fail(
            2,
            format_args!("cargo built the crate but {} is missing", wasm.display()),
        ))
    }
}

fn load_refused(wasm: &Path, error: &LoadError, args: &Args) -> Exit {
    match error {
        LoadError::Io { .. } | LoadError::Invalid(_) => fail(2, error),
        LoadError::MissingCapabilities { .. } => {
            eprintln!(
                "error: the host refused to load {}: {error}",
                wasm.display()
            );
            let text = error.to_string();
            if text.contains("no policy grant covers") {
                eprintln!(
                    "hint: or pass `--grant PATTERN` for each missing capability, for this run \
                     only"
                );
            }
            if args.policy.is_some() && !(args.grants.is_empty() && args.denies.is_empty()) {
                eprintln!(
                    "note: line numbers refer to the policy file with the --grant/--deny rules \
                     merged in"
                );
            }
            1
        }
        _ => fail(
            1,
            format_args!("the host refused to load {}: {error}", wasm.display()),
        ),
    }
}

fn runtime_failed(stage: &str, error: &RuntimeError) -> Exit {
    fail(1, format_args!("{stage} failed: {error}"))
}

/// Collects the audit JSON lines written by the runtime.
#[derive(Clone, Default)]
struct AuditSink(Arc<Mutex<Vec<u8>>>);

impl Write for AuditSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl AuditSink {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Prints the capability decisions made since the last flush.
struct Reporter {
    sink: AuditSink,
    denials: usize,
    name: String,
    policy: Option<PathBuf>,
    /// The manifest's `requires` and `optional`.
    declared: Vec<Capability>,
}

impl Reporter {
    fn flush(&mut self) {
        let _ = std::io::stderr().flush();
        let bytes = self.sink.take();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            let field = |k: &str| record[k].as_str().unwrap_or_default().to_owned();
            if let Some(message) = record["log"].as_str() {
                println!("  log {} {}: {message}", field("level"), field("target"));
                continue;
            }
            let (verdict, capability, resource) =
                (field("verdict"), field("capability"), field("resource"));
            let request = if resource.is_empty() {
                capability.clone()
            } else {
                format!("{capability}:{resource}")
            };
            let function = field("function");
            let function = function
                .rsplit_once('#')
                .map_or(function.as_str(), |(_, f)| f)
                .replace("[method]", "");
            let rule = field("rule");
            if verdict == "allow" {
                println!("  allow {request} ({function})");
                continue;
            }
            self.denials += 1;
            println!("  DENY  {request} ({function}): {rule}");
            println!("  fix: {}", self.fix(&capability, &resource, &rule));
        }
    }

    /// One sentence on how to allow `capability:resource`, denied by `rule`.
    fn fix(&self, capability: &str, resource: &str, rule: &str) -> String {
        if let Some(deny) = rule.strip_prefix("denied by deny rule ") {
            return format!(
                "a deny rule refuses it: remove {deny} from `denies` (or the `--deny` flag) if \
                 this call should succeed"
            );
        }
        let prefix = format!("{capability}:");
        let declared = self
            .declared
            .iter()
            .map(ToString::to_string)
            .find(|c| c.starts_with(&prefix) || c == capability);
        let Some(pattern) = declared else {
            return format!(
                "the component's manifest does not declare `{capability}`, so no policy can \
                 grant it: add a `{capability}` pattern covering `{resource}` to `optional` in \
                 `#[airssys::component(..)]` and rebuild"
            );
        };
        match &self.policy {
            Some(path) => format!(
                "add \"{pattern}\" to `grants` of [components.{}] in {}, or pass `--grant \
                 {pattern}` for this run",
                self.name,
                path.display()
            ),
            None => format!(
                "pass `--grant {pattern}`, or a `--policy FILE` granting it in \
                 [components.{}]",
                self.name
            ),
        }
    }
}

/// Passes the component's `logging` records (target `airssys::component`)
/// to the audit sink as `{"log": ..}` lines, so they print in order with
/// the capability decisions.
mod component_logs {
    use std::fmt::Write as _;
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    use super::AuditSink;

    /// The subscriber; only component records are enabled.
    struct Logs {
        next_span: AtomicU64,
        sink: AuditSink,
    }

    /// Keeps the subscriber installed while alive.
    pub(super) struct Guard {
        _guard: tracing::subscriber::DefaultGuard,
    }

    /// Installs the subscriber for this thread.
    pub(super) fn install(sink: AuditSink) -> Guard {
        Guard {
            _guard: tracing::subscriber::set_default(Logs {
                next_span: AtomicU64::new(1),
                sink,
            }),
        }
    }

    #[derive(Default)]
    struct Fields {
        message: String,
        component: String,
        target: String,
    }

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "component" => value.clone_into(&mut self.component),
                "target" => value.clone_into(&mut self.target),
                "message" => value.clone_into(&mut self.message),
                _ => {}
            }
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let mut text = String::new();
            let _ = write!(text, "{value:?}");
            self.record_str(field, &text);
        }
    }

    impl Subscriber for Logs {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.target() == "airssys::component"
        }

        fn new_span(&self, _span: &Attributes<'_>) -> Id {
            Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
        }

        fn record(&self, _span: &Id, _values: &Record<'_>) {}

        fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            let target = if fields.target.is_empty() {
                fields.component
            } else {
                fields.target
            };
            let line = serde_json::json!({
                "log": fields.message,
                "level": event.metadata().level().as_str().to_ascii_lowercase(),
                "target": target,
            });
            let mut sink = self.sink.clone();
            let _ = writeln!(sink, "{line}");
        }

        fn enter(&self, _span: &Id) {}

        fn exit(&self, _span: &Id) {}
    }
}
