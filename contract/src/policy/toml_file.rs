//! Reading a policy from TOML text: every error with its line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::capability::Capability;
use serde::Deserialize;
use toml::Spanned;

use super::programs::{ProgramFile, check_program_path};
use super::{ComponentPolicy, DigestPin, Limits, Policy, PolicyError, PolicyRule, check_mount};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow_unannotated: bool,
    #[serde(default)]
    defaults: Option<TableFile>,
    #[serde(default)]
    components: BTreeMap<Spanned<String>, TableFile>,
    #[serde(default)]
    nats: Option<Spanned<super::nats::NatsFile>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default)]
    grants: Vec<Spanned<String>>,
    #[serde(default)]
    denies: Vec<Spanned<String>>,
    #[serde(default)]
    config: BTreeMap<String, ScalarFile>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    mounts: BTreeMap<Spanned<String>, String>,
    #[serde(default)]
    subscribe: Vec<Spanned<String>>,
    #[serde(default)]
    sha256: Option<Spanned<String>>,
    #[serde(default)]
    programs: BTreeMap<Spanned<String>, ProgramFile>,
    #[serde(default)]
    signed_by: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    instances: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    memory_bytes: Option<u64>,
    cpu_time_ms: Option<u64>,
    storage_bytes: Option<u64>,
    max_children: Option<u32>,
    held_bytes: Option<u64>,
    max_pending: Option<u32>,
    max_handles: Option<u32>,
    max_net_in_flight: Option<u32>,
    net_timeout_ms: Option<u64>,
    max_instances: Option<u32>,
    max_core_instances: Option<u32>,
    max_memories: Option<u32>,
    max_tables: Option<u32>,
    log_lines_per_second: Option<u64>,
    log_bytes_per_second: Option<u64>,
    audit_denials_per_second: Option<u64>,
}

impl LimitsFile {
    fn into_limits(self) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes,
            cpu_time: self.cpu_time_ms.map(Duration::from_millis),
            storage_bytes: self.storage_bytes,
            max_children: self.max_children,
            held_bytes: self.held_bytes,
            max_pending: self.max_pending,
            max_handles: self.max_handles,
            max_net_in_flight: self.max_net_in_flight,
            net_timeout: self.net_timeout_ms.map(Duration::from_millis),
            max_instances: self.max_instances,
            max_core_instances: self.max_core_instances,
            max_memories: self.max_memories,
            max_tables: self.max_tables,
            log_lines_per_second: self.log_lines_per_second,
            log_bytes_per_second: self.log_bytes_per_second,
            audit_denials_per_second: self.audit_denials_per_second,
        }
    }
}

/// A configuration value: strings as written, other scalars as TOML text.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScalarFile {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl ScalarFile {
    fn into_string(self) -> String {
        match self {
            ScalarFile::String(s) => s,
            ScalarFile::Integer(i) => i.to_string(),
            ScalarFile::Float(f) => f.to_string(),
            ScalarFile::Bool(b) => b.to_string(),
        }
    }
}

/// serde's "unknown field `grant`, expected one of `grants`, ..." with
/// "did you mean `grants`?" appended when one of the keys is close.
fn with_did_you_mean(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let keys = expected.split('`').skip(1).step_by(2);
    match crate::suggest::closest(field, keys) {
        Some(key) => format!("{message}; did you mean `{key}`?"),
        None => message.to_owned(),
    }
}

pub(super) fn parse(text: &str, path: Option<&Path>) -> Result<Policy, PolicyError> {
    let invalid = |offset: usize, message: String| {
        let (line, column) = line_column(text, offset);
        PolicyError::Invalid {
            path: path.map(Path::to_path_buf),
            line,
            column,
            message,
        }
    };
    let file: PolicyFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        invalid(offset, with_did_you_mean(e.message().trim()))
    })?;
    let table = |t: TableFile, line: Option<u32>| -> Result<ComponentPolicy, PolicyError> {
        let rules = |list: Vec<Spanned<String>>| -> Result<Vec<PolicyRule>, PolicyError> {
            list.into_iter()
                .map(|s| {
                    let span = s.span();
                    Capability::parse(s.get_ref())
                        .map(|capability| PolicyRule {
                            capability,
                            line: Some(line_column(text, span.start).0),
                        })
                        // +1: the span starts at the opening quote.
                        .map_err(|e| invalid(span.start + 1 + e.offset, e.to_string()))
                })
                .collect()
        };
        // `line` is `None` for `[defaults]`, where a pin makes no sense.
        let sha256 = match (t.sha256, line) {
            (None, _) => None,
            (Some(pin), None) => {
                return Err(invalid(
                    pin.span().start,
                    "`sha256` pins the file of one component; write it in that component's \
                     [components.<name>] table, not in [defaults]"
                        .to_owned(),
                ));
            }
            (Some(pin), Some(_)) => {
                let span = pin.span();
                let digest = pin.get_ref().parse().map_err(|e| {
                    invalid(span.start, format!("`sha256 = {:?}`: {e}", pin.get_ref()))
                })?;
                Some(DigestPin {
                    digest,
                    line: Some(line_column(text, span.start).0),
                })
            }
        };
        let signed_by = match t.signed_by {
            None => None,
            Some(list) => {
                let at = list.span().start;
                let keys = list
                    .into_inner()
                    .into_iter()
                    .map(|k| {
                        k.get_ref().parse().map_err(|e| {
                            invalid(
                                k.span().start,
                                format!(
                                    "`signed_by`: {e}; write the public key file's 64 hex \
                                     digits (`airssys key generate` writes it)"
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if keys.is_empty() {
                    return Err(invalid(
                        at,
                        "`signed_by` is empty: list at least one trusted public key, or remove \
                         the key"
                            .to_owned(),
                    ));
                }
                Some(super::SignedBy {
                    keys,
                    line: Some(line_column(text, at).0),
                })
            }
        };
        let mut mounts = BTreeMap::new();
        for (root, host_dir) in t.mounts {
            let host_dir = PathBuf::from(host_dir);
            check_mount(root.get_ref(), &host_dir).map_err(|m| invalid(root.span().start, m))?;
            mounts.insert(root.into_inner(), host_dir);
        }
        let instances = match t.instances {
            None => None,
            Some(n) => Some(
                u32::try_from(*n.get_ref())
                    .ok()
                    .filter(|n| (1..=super::MAX_SERVED_INSTANCES).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            n.span().start,
                            format!(
                                "`instances = {}`: a component runs 1 to {} instances at once",
                                n.get_ref(),
                                super::MAX_SERVED_INSTANCES
                            ),
                        )
                    })?,
            ),
        };
        let mut programs = BTreeMap::new();
        for (program, rule) in t.programs {
            let start = program.span().start;
            check_program_path(program.get_ref()).map_err(|m| invalid(start, m))?;
            let header = Some(line_column(text, start).0);
            let rule = rule.into_rule(header, |at| line_column(text, at).0, invalid)?;
            programs.insert(program.into_inner(), rule);
        }
        Ok(ComponentPolicy {
            grants: rules(t.grants)?,
            denies: rules(t.denies)?,
            config: t
                .config
                .into_iter()
                .map(|(k, v)| (k, v.into_string()))
                .collect(),
            env: t.env,
            limits: t.limits.into_limits(),
            mounts,
            subscribe: t
                .subscribe
                .into_iter()
                .map(|s| {
                    let span = s.span();
                    super::subscription(s.get_ref())
                        .map(|capability| PolicyRule {
                            capability,
                            line: Some(line_column(text, span.start).0),
                        })
                        // The error offset counts the `msg:subscribe:` prefix.
                        .map_err(|e| {
                            let offset = e.offset.saturating_sub("msg:subscribe:".len());
                            invalid(span.start + 1 + offset, e.to_string())
                        })
                })
                .collect::<Result<_, _>>()?,
            programs,
            line,
            sha256,
            signed_by,
            instances,
        })
    };
    let defaults = match file.defaults {
        Some(t) => table(t, None)?,
        None => ComponentPolicy::default(),
    };
    let mut components = BTreeMap::new();
    for (name, t) in file.components {
        let line = line_column(text, name.span().start).0;
        components.insert(name.into_inner(), table(t, Some(line))?);
    }
    let nats = match file.nats {
        None => None,
        Some(table) => {
            let start = table.span().start;
            let dir = path.and_then(Path::parent);
            let line = line_column(text, start).0;
            Some(
                table
                    .into_inner()
                    .into_settings(dir, line)
                    .map_err(|m| invalid(start, m))?,
            )
        }
    };
    Ok(Policy {
        nats,
        allow_unannotated: file.allow_unannotated,
        defaults,
        components,
        source: path.map(Path::to_path_buf),
        from_toml: true,
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_misspelt_key_gets_a_did_you_mean() {
        let err = super::parse("[components.x]\ngrant = [\"log:write\"]\n", None)
            .expect_err("unknown key");
        assert!(err.to_string().contains("did you mean `grants`?"), "{err}");
    }

    #[test]
    fn instances_is_read_with_its_fallback_and_bounds() {
        let policy = super::parse(
            "[defaults]\ninstances = 3\n[components.a]\ninstances = 2\n[components.b]\n",
            None,
        )
        .expect("valid policy");
        assert_eq!(policy.instances_for("a"), 2);
        assert_eq!(policy.instances_for("b"), 3);
        assert_eq!(super::super::Policy::default().instances_for("a"), 1);
        let built = super::super::Policy::builder()
            .instances("a", 5)
            .instances("b", 1000)
            .build();
        assert_eq!(built.instances_for("a"), 5);
        assert_eq!(built.instances_for("b"), 64);
        for bad in ["0", "65", "-1"] {
            let err = super::parse(&format!("[components.a]\ninstances = {bad}\n"), None)
                .expect_err("out of bounds");
            let text = err.to_string();
            assert!(
                text.contains("`instances = ") && text.contains("1 to 64"),
                "{text}"
            );
            assert!(text.contains("line 2"), "{text}");
        }
    }
}
