//! `airssys run <COMPONENT>... [--policy FILE] [--grant P]... [--deny P]...
//! [--mount V=DIR]... [--storage PATH] [--request PAYLOAD]...
//! [--request-to NAME=PAYLOAD]... [--message TOPIC=PAYLOAD]...
//! [--fail-on-deny] [--nats URL]`.
//!
//! Each `COMPONENT` is a `.wasm` or a crate directory. A crate directory is
//! built first (`cargo build --target wasm32-wasip2 --release`, cargo's
//! progress on stderr; the target is installed with rustup when missing)
//! and its `.wasm` found through `cargo metadata`. The components are then
//! loaded into one `airssys_runtime` runtime under the policy (the file,
//! plus the `--grant` / `--deny` / `--mount` rules for every component),
//! instantiated in order (which calls each `init` with the policy's
//! configuration); the requests are sent in command-line order, each
//! `--request` to the first component and each `--request-to` to the
//! component it names (replies printed); each `--message` is published
//! from the host; queued messages and requests are delivered until every
//! mailbox is empty; then every component is shut down. Every capability
//! decision is printed as it happens; a denial is followed by the fix.
//!
//! `--request` and `--request-to` are two arguments of one list: clap
//! keeps the values of each argument apart, so `Requests` merges them
//! back into command-line order with [`clap::ArgMatches::indices_of`].
//!
//! Exit codes: 0 the components ran to the end (denied calls are reported,
//! and each component decides what to do with them; `--fail-on-deny` turns
//! them into exit 1); 1 a component was refused at load time, an `init`
//! failed, a component trapped or hit a limit, or delivery did not settle;
//! 2 invalid input (arguments, the policy file, a crate that does not
//! build, a file that is not a component, two components with one name,
//! a `--request-to` naming no loaded component).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use airssys_contract::capability::{Action, Capability, Domain, Request};
use airssys_contract::text::printable;
use airssys_runtime::broker::NatsBroker;
use airssys_runtime::{
    Broker, DeliveryKind, DeliveryRecord, Instance, LoadError, LoadedComponent, Policy, RuleOrigin,
    Runtime, RuntimeError,
};

mod input;
mod report;

pub(super) use input::{Input, build_crate, read_components};
use report::AuditSink;
pub(super) use report::{Reporter, component_logs};

/// Arguments of `airssys run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Built components (`.wasm`) or directories of component crates
    /// (built for `wasm32-wasip2` first), all run in one runtime.
    #[arg(required = true, value_name = "COMPONENT")]
    components: Vec<PathBuf>,
    /// The host policy (TOML, see docs/policy.md). Without it nothing is
    /// granted except `--grant` rules.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Also grant this capability pattern to every component (repeatable).
    #[arg(long = "grant", value_name = "PATTERN")]
    grants: Vec<String>,
    /// Deny this capability pattern to every component, even when granted
    /// (repeatable).
    #[arg(long = "deny", value_name = "PATTERN")]
    denies: Vec<String>,
    /// Mount the host directory DIR at the virtual path VIRTUAL for every
    /// component, e.g. `/data=./docs` (repeatable).
    #[arg(long = "mount", value_name = "VIRTUAL=DIR")]
    mounts: Vec<String>,
    /// Keep storage in this redb file (default: in memory, gone at exit;
    /// with --nats, the NATS server's key-value bucket `airssys`).
    #[arg(long, value_name = "PATH")]
    storage: Option<PathBuf>,
    // `--request PAYLOAD` and `--request-to NAME=PAYLOAD`, in command-line
    // order; their `--help` text is in `Requests::augment_args`.
    #[command(flatten)]
    requests: Requests,
    /// Publish this message (a concrete topic, `=`, UTF-8 text) from the
    /// host after the requests, then deliver until idle (repeatable, in
    /// order).
    #[arg(long = "message", value_name = "TOPIC=PAYLOAD")]
    messages: Vec<String>,
    /// The sender name components see for `--request`, `--request-to` and
    /// `--message`.
    #[arg(long, value_name = "NAME", default_value = "cli")]
    source: String,
    /// Exit 1 when any host call was denied.
    #[arg(long)]
    fail_on_deny: bool,
    /// Append every capability decision to FILE as JSON lines (the audit
    /// log; see docs/runtime.md).
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Observe the component NAME: for this run only, grant it everything
    /// its manifest declares (except `net` rules naming addresses), and
    /// record its manifest and every request in the `--audit` file, for
    /// `airssys policy propose` (see docs/least-privilege.md).
    #[arg(long, value_name = "NAME", requires = "audit")]
    observe: Option<String>,
    /// NATS: `--nats URL` and its options (docs/distributed.md).
    #[command(flatten)]
    nats: super::nats::NatsArgs,
    /// Where compiled components are cached (see `airssys cache`).
    #[command(flatten)]
    cache: super::cache::CacheArgs,
}

/// Storage in the JetStream key-value bucket of the NATS server `broker`
/// is connected to, over the broker's connection (its credentials and
/// TLS), shared by every host on it (`--nats` without `--storage`; see
/// docs/nats.md).
pub(super) fn nats_storage(
    broker: &NatsBroker,
) -> Result<Arc<dyn airssys_runtime::storage::StorageBackend>, Exit> {
    use airssys_runtime::storage::{NatsKvStorage, StorageError};
    match NatsKvStorage::builder(broker.client(), broker.runtime_handle()).open() {
        Ok(storage) => Ok(Arc::new(storage)),
        Err(StorageError::Backend(reason) | StorageError::InvalidInput(reason)) => {
            Err(fail(2, format_args!("--nats: {reason}")))
        }
        Err(other) => Err(fail(2, format_args!("--nats: {other}"))),
    }
}

/// The id of `--request PAYLOAD`.
const REQUEST: &str = "request";
/// The id of `--request-to NAME=PAYLOAD`.
const REQUEST_TO: &str = "request_to";

/// The `--request` and `--request-to` arguments, in command-line order.
///
/// Implemented by hand rather than derived: a derived struct gets one
/// `Vec` per argument and loses how the two interleave, which decides the
/// order the requests are sent in.
#[derive(Debug, Default)]
struct Requests(Vec<RequestArg>);

/// One request argument, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RequestArg {
    /// `--request PAYLOAD`: to the first component.
    First(String),
    /// `--request-to NAME=PAYLOAD`, not split yet.
    To(String),
}

impl clap::Args for Requests {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        use clap::{Arg, ArgAction};
        cmd.arg(
            Arg::new(REQUEST)
                .long("request")
                .value_name("PAYLOAD")
                .action(ArgAction::Append)
                .value_parser(clap::value_parser!(String))
                .help(
                    "Send this payload (UTF-8 text) to the first component's \
                     `handler.handle-request` after `init`, and print the reply (repeatable; \
                     sent in command-line order with `--request-to`)",
                ),
        )
        .arg(
            Arg::new(REQUEST_TO)
                .long("request-to")
                .value_name("NAME=PAYLOAD")
                .action(ArgAction::Append)
                .value_parser(clap::value_parser!(String))
                .help(
                    "Send PAYLOAD (UTF-8 text) to the `handler.handle-request` of the component \
                     named NAME (its manifest name, as in the `loaded` line), and print the \
                     reply (repeatable; sent in command-line order with `--request`)",
                ),
        )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for Requests {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut requests = Self::default();
        requests.update_from_arg_matches(matches)?;
        Ok(requests)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        let mut ordered: Vec<(usize, RequestArg)> = Vec::new();
        /// Wraps the value of one argument.
        type Kind = fn(String) -> RequestArg;
        let kinds: [(&str, Kind); 2] = [(REQUEST, RequestArg::First), (REQUEST_TO, RequestArg::To)];
        for (id, kind) in kinds {
            let values = matches.try_get_many::<String>(id).ok().flatten();
            let (Some(values), Some(indices)) = (values, matches.indices_of(id)) else {
                continue;
            };
            // One value per occurrence, so value and index pair up.
            ordered.extend(indices.zip(values.cloned().map(kind)));
        }
        if !ordered.is_empty() {
            ordered.sort_by_key(|(index, _)| *index);
            self.0 = ordered.into_iter().map(|(_, arg)| arg).collect();
        }
        Ok(())
    }
}

/// A request resolved to its target.
struct Outgoing {
    /// The index of the target among the components given.
    target: usize,
    payload: String,
}

/// Splits each `--request-to NAME=PAYLOAD` (before anything is built);
/// the names are checked by [`resolve_requests`] once they are known.
fn parse_requests(requests: &[RequestArg]) -> Result<Vec<(Option<String>, String)>, Exit> {
    requests
        .iter()
        .map(|request| match request {
            RequestArg::First(payload) => Ok((None, payload.clone())),
            RequestArg::To(arg) => {
                let Some((name, payload)) = arg.split_once('=') else {
                    return Err(fail(
                        2,
                        format_args!(
                            "--request-to `{arg}` has no `=`; write NAME=PAYLOAD, e.g. \
                             `kv-counter=get`"
                        ),
                    ));
                };
                if name.is_empty() {
                    return Err(fail(
                        2,
                        format_args!(
                            "--request-to `{arg}` names no component; write NAME=PAYLOAD, \
                             e.g. `kv-counter=get`"
                        ),
                    ));
                }
                Ok((Some(name.to_owned()), payload.to_owned()))
            }
        })
        .collect()
}

/// ` (did you mean `x`?)` when one of `names` is close to `name`, else
/// nothing.
fn did_you_mean(name: &str, names: &[&str]) -> String {
    airssys_contract::suggest::closest(name, names.iter().copied())
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

/// Finds the component each request goes to: the first for `--request`,
/// the one named for `--request-to`.
fn resolve_requests(
    requests: Vec<(Option<String>, String)>,
    names: &[&str],
) -> Result<Vec<Outgoing>, Exit> {
    requests
        .into_iter()
        .map(|(name, payload)| {
            let Some(name) = name else {
                return Ok(Outgoing { target: 0, payload });
            };
            match names.iter().position(|n| *n == name) {
                Some(target) => Ok(Outgoing { target, payload }),
                None => Err(fail(
                    2,
                    format_args!(
                        "--request-to `{name}={payload}`: no component named `{name}` is \
                         loaded{}; the components are {}",
                        did_you_mean(&name, names),
                        names
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        })
        .collect()
}

/// An exit code with its message already printed.
pub(super) type Exit = u8;

/// Deliveries after which `airssys run` stops, assuming components that
/// keep messaging each other forever.
const MAX_DELIVERIES: usize = 10_000;

/// Runs `airssys run`; returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    let code = match run_inner(&args) {
        Ok(code) | Err(code) => code,
    };
    // The `--audit` file's queued records are written before the process
    // exits; a file still blocked after this bound loses the rest.
    if let Some(audit) = crate::output::AuditFile::running() {
        audit.finish(AUDIT_FLUSH);
    }
    code
}

/// How long `run` waits at exit for a blocked `--audit` file to take
/// what is queued.
const AUDIT_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) fn fail(code: Exit, message: impl std::fmt::Display) -> Exit {
    // Through `serve`'s output queue when it runs, so it keeps its place.
    crate::output::line(
        crate::output::Stream::Stderr,
        crate::output::Kind::Host,
        format!("error: {message}"),
    );
    code
}

/// The command-line rules added to the policy of every component.
struct ExtraRules {
    grants: Vec<Capability>,
    denies: Vec<Capability>,
    /// `(virtual root, absolute host directory)`.
    mounts: Vec<(String, PathBuf)>,
}

fn run_inner(args: &Args) -> Result<Exit, Exit> {
    // Arguments first, so a typo fails before a slow build.
    let rules = ExtraRules {
        grants: parse_patterns("--grant", &args.grants)?,
        denies: parse_patterns("--deny", &args.denies)?,
        mounts: parse_mounts(&args.mounts)?,
    };
    let messages = parse_messages(&args.messages)?;
    let requests = parse_requests(&args.requests.0)?;
    let policy = read_policy(args)?;
    let nats_plan = args.nats.plan(policy.nats())?;

    let inputs = read_components(&args.components)?;
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let requests = resolve_requests(requests, &names)?;
    let policy = build_policy(policy, &names, &rules)?;
    let policy = super::observe::when_asked(
        policy,
        args.observe.as_deref(),
        &inputs,
        args.audit.as_deref(),
    )?;

    let sink = AuditSink::default();
    let last_delivery = LastDelivery::default();
    let mut builder = Runtime::builder()
        .policy(policy)
        .on_delivery({
            let last = last_delivery.clone();
            move |record| last.record(record)
        })
        .on_audit({
            let sink = sink.clone();
            move |record| sink.record(record)
        });
    builder = match &args.storage {
        Some(path) => builder.storage_path(path),
        None => builder.in_memory_storage(),
    };
    if let Some(path) = &args.audit {
        // Written by a thread of its own through a bounded queue: a file
        // that blocks holds no component call (src/output.rs).
        let audit = crate::output::AuditFile::open(path).map_err(|e| {
            fail(
                2,
                format_args!("--audit {}: cannot open the audit log: {e}", path.display()),
            )
        })?;
        builder = builder.audit(audit);
    }
    if let Some(dir) = args.cache.dir() {
        builder = builder.compile_cache(dir);
    }
    let nats = match nats_plan {
        Some(plan) => Some(plan.connect()?.broker),
        None => None,
    };
    if let Some(broker) = &nats {
        builder = builder.broker(Arc::clone(broker) as Arc<dyn Broker>);
    }
    if let (Some(broker), None) = (&nats, &args.storage) {
        builder = builder.storage_backend(nats_storage(broker)?);
    }
    let runtime = builder
        .build()
        .map_err(|e| fail(2, format_args!("cannot start the runtime: {e}")))?;
    let _logs = component_logs::install(sink.clone());

    let mut loaded = Vec::new();
    for input in &inputs {
        match runtime.load(&input.bytes) {
            Ok(component) => loaded.push(component),
            Err(error) => return Err(load_refused(&input.wasm, &error, Some(&args.denies))),
        }
    }
    let mut out = String::new();
    for (component, input) in loaded.iter().zip(&inputs) {
        describe(&mut out, component, &input.wasm, runtime.policy());
    }
    print!("{out}");

    let mut report = Reporter::new(
        sink,
        args.policy.clone(),
        &loaded,
        &inputs,
        args.denies.clone(),
    );
    let several = loaded.len() > 1;
    let mut instances = Vec::new();
    for component in &loaded {
        if several {
            println!("init `{}`", printable(component.name()));
        } else {
            println!("init");
        }
        let instance = component.instantiate();
        report.flush();
        match instance {
            Ok(instance) => {
                println!("  -> ok");
                instances.push(instance);
            }
            Err(error) => return Err(runtime_failed("init", &error)),
        }
    }
    for Outgoing { target, payload } in &requests {
        // Every component was instantiated, so every target is there.
        let Some(instance) = instances.get_mut(*target) else {
            continue;
        };
        if several {
            println!("request {payload:?} to `{}`", printable(instance.name()));
        } else {
            println!("request {payload:?}");
        }
        let reply = instance.request(&args.source, payload.as_bytes());
        report.flush();
        match reply {
            Ok(Ok(bytes)) => println!("  -> reply {:?}", String::from_utf8_lossy(&bytes)),
            Ok(Err(error)) => println!(
                "  -> the component answered with an error: {}",
                printable(&error.to_string())
            ),
            Err(error) => return Err(runtime_failed("request", &error)),
        }
    }
    for (topic, payload) in &messages {
        let over_nats = nats.is_some();
        publish(
            runtime.broker().as_ref(),
            over_nats,
            &args.source,
            topic,
            payload,
        )?;
    }
    // Sent on before delivery starts (a run ends once its mailboxes are
    // empty: what other hosts send later is not waited for).
    if let Some(broker) = &nats
        && !broker.flush()
    {
        eprintln!("warning: --nats: the server did not confirm the messages sent so far");
    }
    deliver(&runtime, &last_delivery, &mut instances, &mut report)?;

    for instance in instances {
        if several {
            println!("shutdown `{}`", printable(instance.name()));
        } else {
            println!("shutdown");
        }
        let stopped = instance.shutdown();
        report.flush();
        if let Err(error) = stopped {
            return Err(runtime_failed("shutdown", &error));
        }
        println!("  -> ok");
    }
    if report.denials() > 0 {
        println!(
            "{} host call(s) denied; see the `fix:` lines above",
            report.denials()
        );
        if args.fail_on_deny {
            return Ok(1);
        }
    }
    Ok(0)
}

/// What was loaded, granted, left out and subscribed.
pub(super) fn describe(
    out: &mut String,
    component: &LoadedComponent,
    wasm: &Path,
    policy: &Policy,
) {
    let _ = writeln!(
        out,
        "loaded `{}`{} from {}",
        printable(component.name()),
        component
            .manifest()
            .map(|m| format!(" {}", printable(&m.version.to_string())))
            .unwrap_or_default(),
        wasm.display()
    );
    let granted = component.grants().allows();
    let _ = writeln!(out, "  granted: {}", printable(&list(granted)));
    if let Some(manifest) = component.manifest() {
        let missing: Vec<Capability> = manifest
            .optional
            .iter()
            // Granted whole or in part (the policy may narrow it).
            .filter(|c| !granted.iter().any(|g| g.is_subset_of(c)))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let _ = writeln!(out, "  optional, not granted: {}", list(&missing));
        }
    }
    warn_undeclared_grants(component);
    if !component.grants().denies().is_empty() {
        let _ = writeln!(out, "  denied: {}", list(component.grants().denies()));
    }
    let topics: Vec<String> = policy
        .subscriptions_for(component.name())
        .map(|rule| {
            let text = rule.capability.to_string();
            text.strip_prefix("msg:subscribe:")
                .map_or(text.clone(), str::to_owned)
        })
        .collect();
    if !topics.is_empty() {
        let _ = writeln!(out, "  subscribed: {}", topics.join(", "));
    }
    let limits = component.limits();
    let _ = writeln!(
        out,
        "  limits: {:?} per call, {} bytes of memory, {} instances at once (each at most {} core \
         instances, {} memories, {} tables); {} log records and {} bytes per second, {} audited \
         refusals per second",
        limits.cpu_time,
        limits.memory_bytes,
        limits.max_instances,
        limits.max_core_instances,
        limits.max_memories,
        limits.max_tables,
        limits.log_lines_per_second,
        limits.log_bytes_per_second,
        limits.audit_denials_per_second,
    );
}

/// Warns on stderr about each grant of `[components.<name>]` (or
/// `--grant`) that the manifest declares nothing to overlap: the load
/// drops it, so it grants nothing (`[defaults]` are meant for many
/// components and are not listed). The runtime finds them
/// ([`LoadedComponent::undeclared_grants`]).
fn warn_undeclared_grants(component: &LoadedComponent) {
    for undeclared in component.undeclared_grants() {
        let grant = &undeclared.grant;
        let origin = match &undeclared.origin {
            Some(RuleOrigin {
                file: Some(path),
                line,
            }) => format!("{}:{line}", path.display()),
            Some(RuleOrigin { file: None, line }) => format!("policy line {line}"),
            None => format!("`--grant {grant}` on the command line"),
        };
        eprintln!(
            "warning: the grant `{grant}` to `{}` ({origin}) has no effect: the component's \
             manifest declares no pattern it overlaps, so the load drops it; declare it in \
             `requires` or `optional` of the component, or remove the grant",
            printable(component.name())
        );
    }
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

/// `--mount VIRTUAL=DIR` arguments, with DIR made absolute.
fn parse_mounts(mounts: &[String]) -> Result<Vec<(String, PathBuf)>, Exit> {
    mounts
        .iter()
        .map(|arg| {
            let Some((root, dir)) = arg.split_once('=') else {
                return Err(fail(
                    2,
                    format_args!(
                        "--mount `{arg}` has no `=`; write VIRTUAL=DIR, e.g. `/data=./docs`"
                    ),
                ));
            };
            let dir = Path::new(dir);
            if !dir.is_dir() {
                return Err(fail(
                    2,
                    format_args!(
                        "--mount `{arg}`: `{}` is not a directory; create it or mount another",
                        dir.display()
                    ),
                ));
            }
            let dir = std::path::absolute(dir)
                .map_err(|e| fail(2, format_args!("--mount `{arg}`: {e}")))?;
            Ok((root.to_owned(), dir))
        })
        .collect()
}

/// `--message TOPIC=PAYLOAD` arguments: a concrete topic and the payload.
fn parse_messages(messages: &[String]) -> Result<Vec<(String, String)>, Exit> {
    messages
        .iter()
        .map(|arg| {
            let Some((topic, payload)) = arg.split_once('=') else {
                return Err(fail(
                    2,
                    format_args!(
                        "--message `{arg}` has no `=`; write TOPIC=PAYLOAD, e.g. \
                         `orders.new=42`"
                    ),
                ));
            };
            // The contract's check of a published topic: concrete,
            // `.`-separated, non-empty segments, no wildcard.
            Request::new(Domain::Msg, Action::Publish, topic).map_err(|why| {
                fail(
                    2,
                    format_args!(
                        "--message `{arg}`: `{topic}` is not a topic to publish on: {why}; a \
                         message goes to one concrete topic: `.`-separated, non-empty segments \
                         without the wildcards `*` or `>` (those are for `subscribe`)"
                    ),
                )
            })?;
            Ok((topic.to_owned(), payload.to_owned()))
        })
        .collect()
}

/// The policy file (if any) with the command-line rules added to the
/// table of each of `names`.
/// Reads the `--policy` file, before anything is built: a missing file or
/// a mistake in it is reported with its path, line and column.
fn read_policy(args: &Args) -> Result<Policy, Exit> {
    match &args.policy {
        Some(path) => Policy::from_toml_file(path).map_err(|e| fail(2, e)),
        // An empty policy file rather than the builder, so load errors say
        // how to write the rule in a policy file.
        None => Policy::from_toml_str("").map_err(|e| fail(2, e)),
    }
}

/// Adds the command-line rules to `policy` for every component. They are
/// added in code, not merged into the file's text, so messages keep the
/// file's own lines and an added rule is never given a line of its own.
fn build_policy(policy: Policy, names: &[&str], rules: &ExtraRules) -> Result<Policy, Exit> {
    let mut builder = policy.into_builder();
    for name in names {
        for grant in &rules.grants {
            builder = builder.grant(name, grant.clone());
        }
        for deny in &rules.denies {
            builder = builder.deny(name, deny.clone());
        }
        for (root, dir) in &rules.mounts {
            builder = builder
                .mount(name, root, dir.clone())
                .map_err(|e| fail(2, format_args!("--mount {root}={}: {e}", dir.display())))?;
        }
    }
    Ok(builder.build())
}

/// Publishes one `--message` from the host.
fn publish(
    broker: &dyn Broker,
    over_nats: bool,
    source: &str,
    topic: &str,
    payload: &str,
) -> Result<(), Exit> {
    let count = broker
        .publish(source, topic, payload.as_bytes().to_vec())
        .map_err(|e| fail(2, format_args!("--message `{topic}={payload}`: {e}")))?;
    match count {
        _ if over_nats => {
            println!("publish {topic} {payload:?} from `{source}` -> sent to the NATS server");
        }
        0 => println!(
            "publish {topic} {payload:?} from `{source}`: no component subscribes to `{topic}`; \
             add it to `subscribe` of a component in the policy"
        ),
        1 => println!("publish {topic} {payload:?} from `{source}` -> 1 subscriber"),
        n => println!("publish {topic} {payload:?} from `{source}` -> {n} subscribers"),
    }
    Ok(())
}

/// Delivers queued messages and requests one at a time, round-robin over
/// `instances`, until every mailbox is empty, printing each delivery and
/// the decisions its handler caused.
fn deliver(
    runtime: &Runtime,
    last: &LastDelivery,
    instances: &mut [Instance],
    report: &mut Reporter,
) -> Result<(), Exit> {
    let max_attempts = runtime.broker().config().max_attempts;
    let mut count = 0;
    loop {
        let mut progressed = false;
        for instance in instances.iter_mut() {
            let result = instance.deliver_pending(1);
            let taken = last.take();
            let worked = taken.is_some() || result.as_ref().is_ok_and(|d| !d.is_empty());
            if !worked {
                report.flush();
                result.map_err(|e| runtime_failed("delivery", &e))?;
                continue;
            }
            progressed = true;
            count += 1;
            let to = instance.name();
            match &taken {
                // Work the runtime did not report as a delivery.
                None => println!("delivery to `{}`", printable(to)),
                Some(Taken::Message {
                    topic,
                    source,
                    payload,
                    attempts,
                }) => {
                    let attempt = if *attempts > 0 {
                        format!(" (attempt {} of {max_attempts})", attempts + 1)
                    } else {
                        String::new()
                    };
                    println!(
                        "message {} {payload:?} from `{}` to `{}`{attempt}",
                        printable(topic),
                        printable(source),
                        printable(to)
                    );
                }
                Some(Taken::Request { source, payload }) => {
                    println!(
                        "request {payload:?} from `{}` to `{}`",
                        printable(source),
                        printable(to)
                    );
                }
            }
            report.flush();
            let done = match result {
                Ok(done) => done,
                Err(error) => return Err(runtime_failed("delivery", &error)),
            };
            if done.delivered > 0 {
                println!("  -> handled");
            } else if done.dead_lettered > 0 {
                println!(
                    "  -> the handler failed on the last attempt; the message is dead-lettered \
                     (to `airssys.dead-letter.{to}`, see the notes)"
                );
            } else if done.failed > 0 {
                println!("  -> the handler failed; the message will be delivered again");
            } else if done.answered > 0 {
                println!("  -> answered");
            } else if done.expired > 0 {
                println!("  -> dropped: the requester stopped waiting");
            }
        }
        if !progressed {
            return Ok(());
        }
        if count >= MAX_DELIVERIES {
            return Err(fail(
                1,
                format_args!(
                    "stopped after {MAX_DELIVERIES} deliveries with messages still queued; do \
                     the components keep messaging each other?"
                ),
            ));
        }
    }
}

/// A delivery as taken from a mailbox, for printing.
#[derive(Debug)]
enum Taken {
    Message {
        topic: String,
        source: String,
        payload: String,
        attempts: u32,
    },
    Request {
        source: String,
        payload: String,
    },
}

/// What the runtime reported of the last delivery
/// ([`RuntimeBuilder::on_delivery`](airssys_runtime::RuntimeBuilder::on_delivery)),
/// so each can be printed with what its handler did.
#[derive(Debug, Clone, Default)]
struct LastDelivery(Arc<Mutex<Option<Taken>>>);

impl LastDelivery {
    fn record(&self, record: &DeliveryRecord<'_>) {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let taken = match record.kind {
            DeliveryKind::Message { topic } => Taken::Message {
                topic: topic.to_owned(),
                source: record.source.to_owned(),
                payload: text(record.payload),
                attempts: record.attempt.saturating_sub(1),
            },
            _ => Taken::Request {
                source: record.source.to_owned(),
                payload: text(record.payload),
            },
        };
        *crate::sync::lock(&self.0) = Some(taken);
    }

    fn take(&self) -> Option<Taken> {
        crate::sync::lock(&self.0).take()
    }
}

/// Reports a refused load; `denies` are the `--deny` flags of a command
/// that has `--grant`/`--deny` (`None` for `serve`, which has neither).
pub(super) fn load_refused(wasm: &Path, error: &LoadError, denies: Option<&[String]>) -> Exit {
    // The component's own strings (a name in a wasmtime message) are
    // escaped; the runtime's line structure is kept.
    let text = printable_lines(&error.to_string(), "");
    match error {
        LoadError::Io { .. } | LoadError::Invalid { .. } => fail(2, text),
        LoadError::MissingCapabilities { .. } => {
            eprintln!("error: the host refused to load {}: {text}", wasm.display());
            if denies.is_some() && text.contains("no policy grant covers") {
                eprintln!(
                    "hint: or pass `--grant PATTERN` for each missing capability, for this run \
                     only"
                );
            }
            for deny in denies.unwrap_or_default() {
                let deny = Capability::parse(deny).map_or_else(|_| deny.clone(), |d| d.to_string());
                if text.contains(&format!("deny rule `{deny}`")) {
                    eprintln!("note: `{deny}` is the `--deny {deny}` given on the command line");
                }
            }
            1
        }
        _ => fail(
            1,
            format_args!("the host refused to load {}: {text}", wasm.display()),
        ),
    }
}

fn runtime_failed(stage: &str, error: &RuntimeError) -> Exit {
    fail(
        1,
        format_args!(
            "{stage} failed: {}",
            printable_lines(&error.to_string(), "  | ")
        ),
    )
}

/// A multi-line text carrying component strings: each line made
/// [`printable`], every line after the first starting with `marker`. A
/// trap's backtrace names the component's own functions, so its lines are
/// marked `  | ` and none can pass for a line of the report; a load
/// error's lines (the runtime's, around validated names) are kept as they
/// are.
fn printable_lines(text: &str, marker: &str) -> String {
    text.split('\n')
        .map(|line| printable(line).into_owned())
        .collect::<Vec<_>>()
        .join(&format!("\n{marker}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_goes_to_one_concrete_topic() {
        let topics =
            |args: &[&str]| parse_messages(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        assert_eq!(
            topics(&["orders.new=42"]).ok(),
            Some(vec![("orders.new".to_owned(), "42".to_owned())])
        );
        for bad in [
            "=42",
            "orders.*=1",
            "orders.>=1",
            "orders..new=1",
            ".orders=1",
            "a b=1",
        ] {
            assert_eq!(topics(&[bad]).err(), Some(2), "{bad}");
        }
    }
}
