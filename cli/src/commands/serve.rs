//! `airssys serve <COMPONENT>... --policy FILE [--listen ADDR]
//! [--storage PATH] [--allow-remote] [--token-file FILE]
//! [--drain-timeout SECS] [--queue N] [--max-connections N]
//! [--max-connections-per-address N] [--nats URL [--nats-* ...]]`.
//!
//! Builds (crate directories) and reads the components as `airssys run`
//! does, loads them under the policy file (printing what each was
//! granted), starts the runtime's `Server` and answers HTTP on `--listen`
//! (routes in `crate::serve::http`) until SIGINT or SIGTERM: then it
//! stops accepting, lets the calls in flight finish within
//! `--drain-timeout`, shuts the server down, prints its report and exits
//! 0; a second SIGINT/SIGTERM exits at once with 130. SIGHUP reloads the
//! policy file (a bad file changes nothing and says why).
//!
//! Listening beyond loopback needs `--allow-remote` and a token; the token
//! comes from `--token-file` or `AIRSSYS_SERVE_TOKEN`, never from the
//! command line. With a token, every request needs
//! `Authorization: Bearer <token>`; admin calls always need it.
//!
//! Exit codes: 0 after a graceful shutdown; 1 a component was refused at
//! load time, or the server could not start; 2 invalid input (arguments,
//! the policy file, the token, an address refused or in use, a crate that
//! does not build); 130 a second signal during the drain.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airssys_contract::text::printable;
use airssys_runtime::{
    AuditRecord, ComponentSource, Policy, Runtime, RuntimeBuilder, Server, ServerConfig,
};

use super::run::{
    Exit, Input, Reporter, component_logs, describe, fail, load_refused, read_components,
};
use crate::output::{self, Kind, Output, Stream};
use crate::serve::backend::ServerBackend;
use crate::serve::http::{self, Ingress, Token};
use crate::serve::{Backend, Failure};

/// The address `airssys serve` listens on by default.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// How long connections get after the drain deadline to write their last
/// answer.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The environment variable holding the bearer token.
pub(crate) const TOKEN_ENV: &str = "AIRSSYS_SERVE_TOKEN";

/// Arguments of `airssys serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  airssys serve examples/kv-counter --policy examples/kv-counter/policy.toml
  curl -X POST --data increment http://127.0.0.1:7878/v1/components/kv-counter/request
  airssys serve app.wasm --policy policy.toml --listen 127.0.0.1:0 --storage data.redb
  AIRSSYS_SERVE_TOKEN=s3cret airssys serve app.wasm --policy policy.toml
  airssys serve app.wasm --policy policy.toml --listen 0.0.0.0:7878 --allow-remote \\
      --token-file /etc/airssys/token --drain-timeout 10 --queue 128
  airssys serve app.wasm --policy policy.toml --nats nats://127.0.0.1:4222 \\
      --nats-creds /etc/airssys/host-a.creds

Routes: POST /v1/components/NAME/request, POST /v1/topics/TOPIC,
GET /v1/health, GET /v1/components, GET /metrics, POST /v1/admin/reload.
Signals: SIGINT/SIGTERM drain and exit 0 (again: exit at once), SIGHUP
reloads the policy file. See docs/serve.md.")]
pub(crate) struct Args {
    /// Built components (`.wasm`) or directories of component crates
    /// (built for `wasm32-wasip2` first), all served by one runtime.
    #[arg(required = true, value_name = "COMPONENT")]
    components: Vec<PathBuf>,
    /// The host policy (TOML, see docs/policy.md); SIGHUP and
    /// `POST /v1/admin/reload` read it again.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// The address to answer HTTP on; port 0 picks a free port (the
    /// `listening on` line names it). Beyond loopback only with
    /// `--allow-remote` and a token.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Keep storage in this redb file (default: in memory, gone at exit;
    /// with --nats, the NATS server's key-value bucket `airssys`).
    #[arg(long, value_name = "PATH")]
    storage: Option<PathBuf>,
    /// Allow an address other than loopback (needs a token).
    #[arg(long)]
    allow_remote: bool,
    /// Read the bearer token from FILE (else from the environment
    /// variable AIRSSYS_SERVE_TOKEN); every request must then carry
    /// `Authorization: Bearer <token>`.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Seconds the calls in flight get to finish after SIGINT/SIGTERM
    /// (at most 86400).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(0..=86_400)
    )]
    drain_timeout: u64,
    /// Requests that may wait per component beyond those in flight; one
    /// more is answered 429.
    #[arg(long, value_name = "N", default_value_t = 64)]
    queue: usize,
    /// HTTP connections served at once; the next waits until one closes.
    #[arg(
        long,
        value_name = "N",
        default_value_t = http::MAX_CONNECTIONS as u64,
        value_parser = clap::value_parser!(u64).range(1..=65_536)
    )]
    max_connections: u64,
    /// HTTP connections one client address (an IPv6 /64) may hold at
    /// once; one more is closed at once (default: an eighth of
    /// --max-connections, at least 1). Behind a reverse proxy, set it to
    /// --max-connections.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=65_536)
    )]
    max_connections_per_address: Option<u64>,
    /// NATS: `--nats URL` and its options (docs/distributed.md).
    #[command(flatten)]
    nats: super::nats::NatsArgs,
    /// Append every capability decision to FILE as JSON lines (the audit
    /// log; see docs/runtime.md).
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Observe the component NAME: while served under the policy file
    /// given at start, it is granted everything its manifest declares
    /// (except `net` rules naming addresses), and its manifest and every
    /// request go to the `--audit` file, for `airssys policy propose`
    /// (docs/least-privilege.md). A reload applies the file as written
    /// and ends the observation.
    #[arg(long, value_name = "NAME", requires = "audit")]
    observe: Option<String>,
    /// Where compiled components are cached (see `airssys cache`).
    #[command(flatten)]
    cache: super::cache::CacheArgs,
}

/// Runs `airssys serve`; returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    let mut output = None;
    let code = match run_inner(&args, &mut output) {
        Ok(code) | Err(code) => code,
    };
    // Everything queued comes out before the process exits; an output
    // still blocked after this bound loses the rest (the process holds
    // nothing else by now). The audit file first: its note on what it
    // dropped goes to the output.
    if let Some(audit) = output::AuditFile::running() {
        audit.finish(EXIT_FLUSH);
    }
    if let Some(output) = output {
        output.finish(EXIT_FLUSH);
    }
    code
}

/// How long `serve` waits at exit for a blocked output to take what is
/// queued.
const EXIT_FLUSH: Duration = Duration::from_secs(10);

/// Prints `text` on stdout through the output queue (a host message).
fn say(text: String) {
    output::line(Stream::Stdout, Kind::Host, text);
}

/// Prints `text` on stderr through the output queue (a host message).
fn warn(text: String) {
    output::line(Stream::Stderr, Kind::Host, text);
}

fn run_inner(args: &Args, output: &mut Option<Output>) -> Result<Exit, Exit> {
    // Arguments first, so a mistake fails before a slow build.
    let token = read_token(args.token_file.as_deref())?;
    check_address(args.listen, args.allow_remote, token.is_some())?;
    let policy = Policy::from_toml_file(&args.policy).map_err(|e| fail(2, e))?;
    let nats = args.nats.plan(policy.nats())?;
    let listener = std::net::TcpListener::bind(args.listen).map_err(|e| {
        fail(
            2,
            format_args!(
                "cannot listen on {}: {e}; pick another address with --listen (port 0 picks a \
                 free one)",
                args.listen
            ),
        )
    })?;
    let address = listener
        .local_addr()
        .map_err(|e| fail(2, format_args!("cannot read the address listened on: {e}")))?;

    let inputs = read_components(&args.components)?;
    let policy = super::observe::when_asked(
        policy,
        args.observe.as_deref(),
        &inputs,
        args.audit.as_deref(),
    )?;
    check_loads(&inputs, &policy, args.queue, args.cache.dir().as_deref())?;

    // From here on every line goes through one bounded queue to one
    // writer thread: a blocked stdout or stderr holds no component call
    // (src/output.rs).
    *output = Output::start();
    // The components' log records and the runtime's notes, from every
    // worker thread, printed as `airssys run` prints them.
    component_logs::install_global(LogLines(Vec::new()));
    let mut builder = Runtime::builder().policy(policy).on_audit(print_denial);
    builder = match &args.storage {
        Some(path) => builder.storage_path(path),
        None => builder.in_memory_storage(),
    };
    if let Some(dir) = args.cache.dir() {
        builder = builder.compile_cache(dir);
    }
    if let Some(path) = &args.audit {
        // Written by a thread of its own through a bounded queue: a file
        // that blocks holds no component call (src/output.rs).
        let audit = output::AuditFile::open(path).map_err(|e| {
            fail(
                2,
                format_args!("--audit {}: cannot open the audit log: {e}", path.display()),
            )
        })?;
        builder = builder.audit(audit);
    }
    let mut watch = None;
    if let Some(plan) = nats {
        let shown = plan.shown_url();
        let link = plan.connect()?;
        say(format!("messages and requests over NATS ({shown})"));
        if args.storage.is_none() {
            builder = builder.storage_backend(super::run::nats_storage(&link.broker)?);
            say(format!(
                "storage in the NATS key-value bucket `{}`",
                airssys_runtime::storage::DEFAULT_KV_BUCKET
            ));
        }
        builder = builder.broker(link.broker);
        watch = Some(link.watch);
    }
    let first = inputs.first().map(|i| i.name.clone()).unwrap_or_default();
    let server = start(builder, inputs, args.queue)?;
    let backend: Arc<dyn Backend> =
        Arc::new(ServerBackend::new(server, args.policy.clone()).with_nats(watch));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fail(2, format_args!("cannot start the HTTP runtime: {e}")))?;
    let drain = Duration::from_secs(args.drain_timeout);
    let bounds = http::Bounds::new(
        usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        args.max_connections_per_address
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    );
    let ingress = Ingress::new(Arc::clone(&backend), token, bounds);
    let code = runtime.block_on(async {
        let set_up = listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
            .and_then(|listener| Ok((listener, Signals::new()?)));
        match set_up {
            Ok((listener, signals)) => {
                serve(listener, signals, address, &first, backend, ingress, drain).await
            }
            Err(e) => {
                let stopping = Arc::clone(&backend);
                let _ =
                    tokio::task::spawn_blocking(move || stopping.shutdown(Duration::ZERO)).await;
                fail(2, format_args!("cannot serve on {address}: {e}"))
            }
        }
    });
    // Calls the drain gave up on may still hold blocking threads.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(code)
}

/// The token of `--token-file`, else of `AIRSSYS_SERVE_TOKEN`, if any.
fn read_token(file: Option<&Path>) -> Result<Option<Token>, Exit> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            fail(
                2,
                format_args!("cannot read the token file {}: {e}", file.display()),
            )
        })?;
        warn_if_others_can_read(file);
        return Token::new(&text).map(Some).ok_or_else(|| {
            fail(
                2,
                format_args!(
                    "the token file {} is empty; write the token in it (one line)",
                    file.display()
                ),
            )
        });
    }
    match std::env::var(TOKEN_ENV) {
        Ok(text) => Token::new(&text).map(Some).ok_or_else(|| {
            fail(
                2,
                format_args!("{TOKEN_ENV} is set but empty; set it to the token, or unset it"),
            )
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(fail(
            2,
            format_args!("{TOKEN_ENV} is not UTF-8 text; set it to the token"),
        )),
    }
}

/// Warns when users other than the owner may read the token file.
#[cfg(unix)]
fn warn_if_others_can_read(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(file)
        && metadata.permissions().mode() & 0o044 != 0
    {
        eprintln!(
            "warning: the token file {} can be read by other users of this machine; \
             `chmod 600 {}`",
            file.display(),
            file.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_others_can_read(_file: &Path) {}

/// Refuses an address beyond loopback unless `--allow-remote` and a token
/// are both given.
fn check_address(address: SocketAddr, allow_remote: bool, token: bool) -> Result<(), Exit> {
    if address.ip().is_loopback() || (allow_remote && token) {
        return Ok(());
    }
    let missing = match (allow_remote, token) {
        (false, false) => {
            "pass --allow-remote and a token (--token-file FILE or the environment \
                           variable AIRSSYS_SERVE_TOKEN)"
        }
        (false, true) => "pass --allow-remote",
        _ => {
            "give a token with --token-file FILE or the environment variable \
              AIRSSYS_SERVE_TOKEN"
        }
    };
    Err(fail(
        2,
        format_args!(
            "refusing to listen on {address}: it is not a loopback address, so anyone who can \
             reach this machine could call the components; {missing} (or listen on \
             127.0.0.1)"
        ),
    ))
}

/// Loads every component into a scratch runtime under `policy` to print
/// what it is granted, and to refuse a component the policy does not
/// cover with the same messages as `airssys run`.
fn check_loads(
    inputs: &[Input],
    policy: &Policy,
    queue: usize,
    cache: Option<&Path>,
) -> Result<(), Exit> {
    let mut builder = Runtime::builder()
        .policy(policy.clone())
        .in_memory_storage();
    if let Some(dir) = cache {
        builder = builder.compile_cache(dir);
    }
    let runtime = builder
        .build()
        .map_err(|e| fail(2, format_args!("cannot start the runtime: {e}")))?;
    let mut out = String::new();
    for input in inputs {
        let component = runtime
            .load(&input.bytes)
            .map_err(|e| load_refused(&input.wasm, &e, None))?;
        describe(&mut out, &component, &input.wasm, runtime.policy());
        let _ = writeln!(
            out,
            "  served by {} instance(s) (`instances` in the policy), {queue} request(s) queued at \
             most",
            policy.instances_for(&input.name)
        );
    }
    print!("{out}");
    Ok(())
}

/// Starts the server with `inputs`.
fn start(builder: RuntimeBuilder, inputs: Vec<Input>, queue: usize) -> Result<Server, Exit> {
    let sources = inputs
        .into_iter()
        .map(|input| ComponentSource {
            origin: input.wasm,
            bytes: input.bytes,
        })
        .collect();
    Server::start(builder, sources, ServerConfig::default().queue_bound(queue))
        .map_err(|e| fail(1, format_args!("cannot start serving: {e}")))
}

/// The audit hook: every refused host call, on stderr.
fn print_denial(record: &AuditRecord<'_>) {
    if let AuditRecord::Decision(decision) = record
        && !decision.is_allowed()
    {
        let mut request = format!("{}:{}", decision.domain, decision.action);
        if !decision.resource.is_empty() {
            let _ = write!(request, ":{}", decision.resource);
        }
        output::component_line(
            Stream::Stderr,
            Kind::Audit,
            Some(decision.component),
            format!(
                "DENY `{}` {} ({}): {}",
                printable(decision.component),
                printable(&request),
                printable(decision.function),
                printable(&decision.rule.to_string())
            ),
        );
    }
}

/// Where `component_logs` writes: the JSON lines of one record, printed
/// as `airssys run` prints them once complete, through the output queue.
/// Every clone starts empty, so records written on different threads
/// never mix.
struct LogLines(Vec<u8>);

impl Clone for LogLines {
    fn clone(&self) -> LogLines {
        LogLines(Vec::new())
    }
}

impl std::io::Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        if let Some(end) = self.0.iter().rposition(|b| *b == b'\n') {
            let lines: Vec<u8> = self.0.drain(..=end).collect();
            for record in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                // Queued as the component's (a flooding component loses
                // its own lines, not its neighbours').
                let Ok(record) = serde_json::from_slice::<serde_json::Value>(record) else {
                    continue;
                };
                let component = record["component"].as_str().filter(|c| !c.is_empty());
                if let Some(line) = Reporter::render_record(&record) {
                    output::component_line(Stream::Stdout, Kind::Log, component, line);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serves until SIGINT or SIGTERM, then drains; returns the exit code.
async fn serve(
    listener: tokio::net::TcpListener,
    mut signals: Signals,
    address: SocketAddr,
    first: &str,
    backend: Arc<dyn Backend>,
    ingress: Ingress,
    drain: Duration,
) -> Exit {
    let guarded = if ingress.has_token() {
        "every request needs `Authorization: Bearer <token>`"
    } else {
        "no token: loopback only, admin calls refused"
    };
    say(format!("listening on http://{address} ({guarded})"));
    say(format!(
        "  try: curl -X POST --data hello http://{address}/v1/components/{}/request",
        printable(first)
    ));
    // The instances start (and run `init`) on the server's threads; say
    // when every component serves, or which failed to start.
    let watched = Arc::clone(&backend);
    tokio::spawn(async move {
        let mut told = std::collections::HashSet::new();
        while !watched.ready() {
            for failure in watched.failures() {
                if told.insert(failure.clone()) {
                    warn(format!("not serving: {failure}"));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        say("ready: every component serves (GET /v1/health answers 200)".to_owned());
    });
    let ingress = Arc::new(ingress);
    let mut which = "";
    let graceful = http::accept_until(listener, ingress, async {
        which = signals.stop(&backend).await;
    })
    .await;
    say(format!(
        "{which}: no longer accepting; draining the calls in flight for at most {} s (send \
         SIGINT or SIGTERM again to exit at once)",
        drain.as_secs()
    ));
    // The server stops intake and finishes what is in flight while the
    // connections drain (each answers its call in flight, then closes).
    let drained = async {
        let backend = Arc::clone(&backend);
        let stopped = tokio::task::spawn_blocking(move || backend.shutdown(drain));
        let connections = tokio::time::timeout(drain + CLOSE_GRACE, graceful.shutdown());
        let (report, _) = tokio::join!(stopped, connections);
        report
    };
    tokio::select! {
        report = drained => match report {
            Ok(report) => {
                say(format!("shutdown: {report}"));
                0
            }
            Err(e) => fail(1, format_args!("the shutdown failed: {e}")),
        },
        which = signals.stop(&backend) => {
            warn(format!("{which} again: exiting at once"));
            // At once, but not before this line is out, unless the
            // output is blocked.
            if let Some(audit) = output::AuditFile::running() {
                audit.finish(Duration::from_secs(1));
            }
            if let Some(output) = Output::running() {
                output.finish(Duration::from_secs(1));
            }
            std::process::exit(130);
        }
    }
}

/// The signals `airssys serve` acts on.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    /// Waits for SIGINT or SIGTERM and names it; reloads the policy on
    /// every SIGHUP meanwhile.
    #[cfg(unix)]
    async fn stop(&mut self, backend: &Arc<dyn Backend>) -> &'static str {
        loop {
            tokio::select! {
                _ = self.interrupt.recv() => return "SIGINT",
                _ = self.terminate.recv() => return "SIGTERM",
                _ = self.hangup.recv() => reload(backend).await,
            }
        }
    }

    #[cfg(not(unix))]
    async fn stop(&mut self, _backend: &Arc<dyn Backend>) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// SIGHUP: reloads the policy file and prints what changed, or why
/// nothing did.
async fn reload(backend: &Arc<dyn Backend>) {
    let backend = Arc::clone(backend);
    let reloaded = tokio::task::spawn_blocking(move || backend.reload())
        .await
        .unwrap_or_else(|e| {
            Err(Failure {
                status: 500,
                message: format!("the reload failed: {e}"),
            })
        });
    crate::serve::print_reload("SIGHUP", &reloaded);
}
