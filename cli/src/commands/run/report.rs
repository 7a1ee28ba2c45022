//! What `airssys run` prints as it goes: the capability decisions the
//! runtime reports (each denial with its fix, made concrete for this run),
//! in order with the component's log records and the runtime's notes
//! (`component_logs`, a tracing subscriber; `serve` prints through it too).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use airssys_contract::capability::Capability;
use airssys_contract::guard::{DecidedBy, refusal_advice};
use airssys_contract::text::printable;
use airssys_runtime::{AuditRecord, DecidingRule, LoadedComponent};

use super::Input;
use crate::commands::component::{self, FixStyle};

/// What happened during a call, in order: the capability decisions the
/// runtime reports to its audit hook
/// ([`RuntimeBuilder::on_audit`](airssys_runtime::RuntimeBuilder::on_audit))
/// and the JSON lines `component_logs` writes (the component's log records
/// and the runtime's notes).
#[derive(Clone, Default)]
pub(in crate::commands) struct AuditSink(Arc<Mutex<Vec<Event>>>);

/// One entry of an [`AuditSink`].
enum Event {
    /// Bytes of JSON lines, as written.
    Lines(Vec<u8>),
    /// A capability decision.
    Decision(Decision),
    /// Refusals the component's audit rate limit kept out.
    Dropped {
        component: String,
        dropped: u64,
        limit: &'static str,
    },
}

/// A capability decision, owned.
struct Decision {
    component: String,
    function: String,
    /// `domain:action`.
    capability: String,
    resource: String,
    allowed: bool,
    /// The deciding rule in words.
    rule: String,
    /// The deny rule that refused the call, if one did.
    deny_rule: Option<String>,
}

impl Write for AuditSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut events = self.lock();
        match events.last_mut() {
            Some(Event::Lines(bytes)) => bytes.extend_from_slice(buf),
            _ => events.push(Event::Lines(buf.to_vec())),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl AuditSink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        crate::sync::lock(&self.0)
    }

    /// The audit hook: keeps each record, in order with the lines.
    pub(super) fn record(&self, record: &AuditRecord<'_>) {
        let event = match record {
            AuditRecord::Decision(d) => Event::Decision(Decision {
                component: d.component.to_owned(),
                function: d.function.to_owned(),
                capability: format!("{}:{}", d.domain, d.action),
                resource: d.resource.to_owned(),
                allowed: d.is_allowed(),
                rule: d.rule.to_string(),
                deny_rule: match d.rule {
                    DecidingRule::DenyRule(pattern) => Some(pattern.to_string()),
                    _ => None,
                },
            }),
            AuditRecord::RateLimited(d) => Event::Dropped {
                component: d.component.to_owned(),
                dropped: d.dropped,
                limit: d.limit,
            },
            _ => return,
        };
        self.lock().push(event);
    }

    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.lock())
    }
}

/// Prints the capability decisions made since the last flush.
pub(in crate::commands) struct Reporter {
    sink: AuditSink,
    denials: usize,
    policy: Option<PathBuf>,
    /// Each component's manifest `requires` and `optional`.
    declared: BTreeMap<String, Vec<Capability>>,
    /// Where each component's manifest is edited (its language).
    fix_styles: BTreeMap<String, FixStyle>,
    /// Each component's effective grant (for near-miss hints).
    granted: BTreeMap<String, Vec<Capability>>,
    /// The `--deny` patterns, as given.
    cli_denies: Vec<String>,
}

impl Reporter {
    /// A reporter of the decisions `sink` keeps, with what it needs to
    /// write each denial's fix: the policy file, the `--deny` patterns,
    /// and each loaded component's manifest, language and grant.
    pub(super) fn new(
        sink: AuditSink,
        policy: Option<PathBuf>,
        loaded: &[LoadedComponent],
        inputs: &[Input],
        cli_denies: Vec<String>,
    ) -> Reporter {
        Reporter {
            sink,
            denials: 0,
            policy,
            fix_styles: loaded
                .iter()
                .zip(inputs)
                .map(|(c, i)| (c.name().to_owned(), component::fix_style_of(&i.bytes)))
                .collect(),
            declared: loaded
                .iter()
                .map(|c| {
                    let declared = c
                        .manifest()
                        .map(|m| m.requires.iter().chain(&m.optional).cloned().collect())
                        .unwrap_or_default();
                    (c.name().to_owned(), declared)
                })
                .collect(),
            granted: loaded
                .iter()
                .map(|c| (c.name().to_owned(), c.grants().allows().to_vec()))
                .collect(),
            cli_denies,
        }
    }

    /// The calls denied so far (refusals the audit rate limit dropped
    /// included).
    pub(super) fn denials(&self) -> usize {
        self.denials
    }

    /// Prints what happened since the last flush.
    pub(super) fn flush(&mut self) {
        let _ = std::io::stderr().flush();
        for event in self.sink.take() {
            match event {
                Event::Lines(bytes) => Self::print_lines(&bytes),
                Event::Decision(decision) => self.print_decision(&decision),
                Event::Dropped {
                    component,
                    dropped,
                    limit,
                } => {
                    // Refusals the audit rate limit kept out of the log
                    // still count as denials.
                    self.denials += usize::try_from(dropped).unwrap_or(usize::MAX);
                    println!(
                        "  note: {dropped} more refusal(s) of `{}` not shown: dropped from the \
                         audit log by {limit}",
                        printable(&component)
                    );
                }
            }
        }
    }

    /// The component's log records and the runtime's notes.
    fn print_lines(bytes: &[u8]) {
        for line in Self::render_lines(bytes) {
            println!("{line}");
        }
    }

    /// The lines [`Reporter::print_lines`] prints for `bytes`.
    pub(in crate::commands) fn render_lines(bytes: &[u8]) -> Vec<String> {
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
            .filter_map(|record| Self::render_record(&record))
            .collect()
    }

    /// The line printed for one parsed record (a log record, an output
    /// line or a note), if it is one.
    pub(in crate::commands) fn render_record(record: &serde_json::Value) -> Option<String> {
        // What the component controls is printed escaped.
        let raw = |k: &str| record[k].as_str().unwrap_or_default();
        if let Some(message) = record["log"].as_str() {
            let message = printable(message);
            return Some(match raw("stream") {
                stream @ ("stdout" | "stderr") => format!("  {stream}: {message}"),
                _ => format!(
                    "  log {} {}: {message}",
                    printable(raw("level")),
                    Self::who(record)
                ),
            });
        }
        record["note"]
            .as_str()
            .map(|message| format!("  note: {}", printable(message)))
    }

    /// Who a log record is printed as: its target, which the component
    /// chose, when that is the component's own name; otherwise
    /// `component (target)`, so that no component's record reads as
    /// another's (the name is the host's; both escaped).
    fn who(record: &serde_json::Value) -> String {
        let raw = |k: &str| record[k].as_str().unwrap_or_default();
        let (component, target) = (raw("component"), raw("target"));
        if component.is_empty() || component == target {
            printable(target).into_owned()
        } else {
            format!("{} ({})", printable(component), printable(target))
        }
    }

    fn print_decision(&mut self, decision: &Decision) {
        // What the component controls is printed escaped.
        let resource = printable(&decision.resource).into_owned();
        let capability = printable(&decision.capability).into_owned();
        let request = if resource.is_empty() {
            capability.clone()
        } else {
            format!("{capability}:{resource}")
        };
        let function = printable(&decision.function).into_owned();
        let function = function
            .rsplit_once('#')
            .map_or(function.as_str(), |(_, f)| f)
            .replace("[method]", "");
        let rule = printable(&decision.rule);
        if decision.allowed {
            println!("  allow {request} ({function})");
            return;
        }
        self.denials += 1;
        println!("  DENY  {request} ({function}): {rule}");
        let fix = self.fix(decision);
        println!("  fix: {}", printable(&fix));
    }

    /// How to let the component have what `decision` refused: the advice
    /// the component received (one source, [`refusal_advice`]), with the
    /// fix made concrete for this run.
    fn fix(&self, decision: &Decision) -> String {
        let (component, capability, resource) = (
            decision.component.as_str(),
            decision.capability.as_str(),
            decision.resource.as_str(),
        );
        let request = if resource.is_empty() {
            capability.to_owned()
        } else {
            format!("{capability}:{resource}")
        };
        let deny = decision.deny_rule.as_deref();
        let declared = self.declared.get(component).map(Vec::as_slice);
        let granted = self.granted.get(component).map_or(&[][..], Vec::as_slice);
        let advice = refusal_advice(component, &request, declared.or(Some(&[])), granted, deny);
        let fix = match &advice.decided_by {
            DecidedBy::DenyRule => {
                let deny = deny.unwrap_or_default();
                let from_flag = self
                    .cli_denies
                    .iter()
                    .any(|d| Capability::parse(d).is_ok_and(|d| d.to_string() == deny));
                match &self.policy {
                    _ if from_flag => format!(
                        "it came from `--deny {deny}` on the command line: drop that flag if \
                         this call should succeed"
                    ),
                    Some(path) => format!(
                        "remove `{deny}` from `denies` in {} if this call should succeed",
                        path.display()
                    ),
                    None => format!("drop `--deny {deny}` if this call should succeed"),
                }
            }
            DecidedBy::Policy(pattern) => match &self.policy {
                Some(path) => format!(
                    "add \"{pattern}\" to `grants` of [components.{component}] in {}, or pass \
                     `--grant {pattern}` for this run",
                    path.display()
                ),
                None => format!(
                    "pass `--grant {pattern}`, or a `--policy FILE` granting it in \
                     [components.{component}]"
                ),
            },
            DecidedBy::Manifest if self.fix_styles.get(component) == Some(&FixStyle::Toml) => {
                format!(
                    "declare a `{capability}` pattern covering `{request}` in `requires` or \
                     `optional` under [capabilities] in its Component.toml and attach it again \
                     (`airssys manifest attach COMPONENT.wasm --manifest Component.toml --replace \
                     -o COMPONENT.wasm`)"
                )
            }
            DecidedBy::Manifest | DecidedBy::NoGrant => advice.fix.clone(),
        };
        // The DENY line above already says why; this is the component's
        // advice, made concrete for this run.
        let mut text = fix;
        if !advice.hint.is_empty() {
            let _ = write!(text, " ({})", advice.hint);
        }
        text
    }
}

/// Passes the component's `logging` records (target `airssys::component`)
/// to the audit sink as `{"log": ..}` lines, and the runtime's messaging
/// warnings (a dead-lettered message and why) as `{"note": ..}` lines, so
/// they print in order with the capability decisions.
pub(in crate::commands) mod component_logs {
    use std::fmt::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    use super::AuditSink;

    /// The runtime's target for messaging warnings.
    const MESSAGING: &str = "airssys::messaging";
    /// The runtime's target for notes about a component's output (records
    /// dropped by a rate limit, output without a `log:write` grant).
    const OUTPUT: &str = "airssys::output";

    /// The subscriber; only component records are enabled.
    struct Logs<S> {
        next_span: AtomicU64,
        sink: S,
    }

    /// Keeps the subscriber installed while alive.
    pub(in crate::commands) struct Guard {
        _guard: tracing::subscriber::DefaultGuard,
    }

    /// Installs the subscriber for this thread.
    pub(in crate::commands) fn install(sink: AuditSink) -> Guard {
        Guard {
            _guard: tracing::subscriber::set_default(Logs {
                next_span: AtomicU64::new(1),
                sink,
            }),
        }
    }

    /// Installs the subscriber for the whole process (every thread, the
    /// server's workers too), writing to clones of `sink`, one per record;
    /// false when a subscriber is already installed.
    pub(in crate::commands) fn install_global(
        sink: impl std::io::Write + Clone + Send + Sync + 'static,
    ) -> bool {
        tracing::subscriber::set_global_default(Logs {
            next_span: AtomicU64::new(1),
            sink,
        })
        .is_ok()
    }

    #[derive(Default)]
    struct Fields {
        message: String,
        component: String,
        target: String,
        stream: String,
        error: String,
    }

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "component" => value.clone_into(&mut self.component),
                "target" => value.clone_into(&mut self.target),
                "stream" => value.clone_into(&mut self.stream),
                "message" => value.clone_into(&mut self.message),
                "error" => value.clone_into(&mut self.error),
                _ => {}
            }
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let mut text = String::new();
            let _ = write!(text, "{value:?}");
            self.record_str(field, &text);
        }
    }

    impl<S: std::io::Write + Clone + Send + Sync + 'static> Subscriber for Logs<S> {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.target() == "airssys::component"
                || metadata.target() == OUTPUT
                || (metadata.target() == MESSAGING && *metadata.level() <= tracing::Level::WARN)
        }

        fn new_span(&self, _span: &Attributes<'_>) -> Id {
            Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
        }

        fn record(&self, _span: &Id, _values: &Record<'_>) {}

        fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            if [MESSAGING, OUTPUT].contains(&event.metadata().target()) {
                let mut note = fields.message;
                if !fields.error.is_empty() {
                    let _ = write!(note, ": {}", fields.error);
                }
                let mut sink = self.sink.clone();
                let _ = writeln!(
                    sink,
                    "{}",
                    serde_json::json!({ "note": note, "component": fields.component })
                );
                return;
            }
            let target = if fields.target.is_empty() {
                fields.component.clone()
            } else {
                fields.target
            };
            let line = serde_json::json!({
                "log": fields.message,
                "component": fields.component,
                "level": event.metadata().level().as_str().to_ascii_lowercase(),
                "target": target,
                "stream": fields.stream,
            });
            let mut sink = self.sink.clone();
            let _ = writeln!(sink, "{line}");
        }

        fn enter(&self, _span: &Id) {}

        fn exit(&self, _span: &Id) {}
    }
}

#[cfg(test)]
mod tests {
    use super::Reporter;

    /// A component cannot print a record as another's by choosing its
    /// name as the record's target: the line names the component too.
    #[test]
    fn a_record_whose_target_is_another_components_name_names_its_component() {
        let lines = Reporter::render_lines(
            concat!(
                r#"{"log":"hi","component":"pong","level":"info","target":"ping","stream":"log"}"#,
                "\n",
                r#"{"log":"hi","component":"ping","level":"info","target":"ping","stream":"log"}"#,
                "\n",
                r#"{"log":"hi","component":"ping","level":"warn","target":"a\u001b[2Jb","stream":"log"}"#,
            )
            .as_bytes(),
        );
        assert_eq!(
            lines,
            [
                "  log info pong (ping): hi",
                "  log info ping: hi",
                "  log warn ping (a\\u{1b}[2Jb): hi",
            ]
        );
    }
}
