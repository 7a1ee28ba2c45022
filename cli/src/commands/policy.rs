//! `airssys policy diff OLD.toml NEW.toml [--format text|json]` and
//! `airssys policy propose --audit FILE [--component NAME] [--output FILE]`.
//!
//! `diff` prints, per component, the grants and deny rules gained and
//! lost between two host policies, decided by subset between patterns
//! ([`airssys_contract::authority::diff_policies`] over
//! [`airssys_runtime::Policy::authority`]). Exit 0, or 2 when a policy
//! does not read.
//!
//! `propose` reads the JSON-lines audit file of `airssys run --observe
//! NAME --audit FILE` and writes the narrowest policy covering what the
//! component was seen doing ([`airssys_contract::authority::propose`]).
//! Exit 0; 2 when the file does not read or records no observed component
//! of that name.

use std::path::{Path, PathBuf};

use airssys_contract::authority::{Observation, diff_policies, propose};
use airssys_contract::capability::{Capability, Domain};
use airssys_runtime::Policy;
use serde::Deserialize;

use super::Format;

/// `airssys policy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Per component, the capabilities two host policies grant and deny,
    /// gained and lost (by subset between patterns).
    Diff(DiffArgs),
    /// Write the narrowest policy covering what a component did in an
    /// `airssys run --observe NAME --audit FILE` run.
    Propose(ProposeArgs),
}

/// Arguments of `airssys policy diff`.
#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    /// The old policy (TOML).
    old: PathBuf,
    /// The new policy (TOML).
    new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Arguments of `airssys policy propose`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProposeArgs {
    /// The audit file written by `airssys run --observe NAME --audit FILE`.
    #[arg(long, value_name = "FILE")]
    audit: PathBuf,
    /// The observed component (needed when the file holds several).
    #[arg(long, value_name = "NAME")]
    component: Option<String>,
    /// Write the policy here instead of to stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Runs the subcommand and returns the exit code.
pub(crate) fn run(command: Command) -> u8 {
    let result = match command {
        Command::Diff(args) => policy_diff(&args),
        Command::Propose(args) => policy_propose(&args),
    };
    match result {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("error: {message}");
            2
        }
    }
}

fn policy_diff(args: &DiffArgs) -> Result<(), String> {
    let read = |path: &Path| Policy::from_toml_file(path).map_err(|e| e.to_string());
    let (old, new) = (read(&args.old)?, read(&args.new)?);
    let diff = diff_policies(&old.authority(), &new.authority());
    args.format.print(&diff, ToString::to_string)
}

/// The first line `airssys run --observe NAME --audit FILE` writes to the
/// audit file: the component's manifest, so the proposal never reaches
/// beyond it.
#[derive(Debug, serde::Serialize, Deserialize)]
pub(crate) struct ObserveHeader {
    /// The observed component.
    pub(crate) component: String,
    /// Its version.
    pub(crate) version: String,
    /// Its required capabilities.
    pub(crate) requires: Vec<String>,
    /// Its optional capabilities.
    pub(crate) optional: Vec<String>,
}

/// One line of the audit file, by its fields (see `docs/runtime.md`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Line {
    Observe {
        observe: ObserveHeader,
    },
    Decision {
        component: String,
        capability: String,
        resource: String,
        verdict: String,
        rule: String,
    },
    Dropped {
        component: String,
        dropped: u64,
    },
    /// Records the audit file did not take in time (`airssys run` and
    /// `serve` drop them rather than hold a component's call).
    NotWritten {
        not_written: NotWritten,
    },
}

/// The counts of a [`Line::NotWritten`] record.
#[derive(Debug, Deserialize)]
struct NotWritten {
    allowed: u64,
    refused: u64,
}

fn policy_propose(args: &ProposeArgs) -> Result<(), String> {
    let file = args.audit.display();
    let text = std::fs::read_to_string(&args.audit)
        .map_err(|e| format!("cannot read audit file {file}: {e}"))?;
    let mut headers: Vec<ObserveHeader> = Vec::new();
    let mut decisions: Vec<(String, Observation)> = Vec::new();
    let mut dropped: Vec<(String, u64)> = Vec::new();
    let mut not_written = 0;
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw)
            .map_err(|e| format!("{file}:{}: not an audit record: {e}", i + 1))?;
        match line {
            Line::Observe { observe } => headers.push(observe),
            Line::Decision {
                component,
                capability,
                resource,
                verdict,
                rule,
            } => {
                let observation = observation(&capability, resource, &verdict, rule)
                    .map_err(|e| format!("{file}:{}: {e}", i + 1))?;
                decisions.push((component, observation));
            }
            Line::Dropped {
                component,
                dropped: n,
            } => dropped.push((component, n)),
            Line::NotWritten { not_written: n } => not_written += n.allowed + n.refused,
        }
    }
    if not_written > 0 {
        eprintln!(
            "warning: {not_written} decision(s) were not written to {file} (the audit file was \
             blocked and its queue full); the observation is incomplete: run the observation \
             again with the audit file on a disk that keeps up"
        );
    }
    let name = match &args.component {
        Some(name) => name.clone(),
        None => {
            let mut names: Vec<&str> = headers.iter().map(|h| h.component.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            match names.as_slice() {
                [one] => (*one).to_owned(),
                [] => return Err(no_observation(&file.to_string(), None)),
                many => {
                    let names: Vec<String> = many
                        .iter()
                        .map(|n| format!("`{}`", airssys_contract::text::printable(n)))
                        .collect();
                    return Err(format!(
                        "{file} holds observations of several components ({}); pick one with \
                         --component NAME",
                        names.join(", ")
                    ));
                }
            }
        }
    };
    // The last run of the component says what its manifest declares now.
    let header = headers
        .iter()
        .rev()
        .find(|h| h.component == name)
        .ok_or_else(|| no_observation(&file.to_string(), Some(&name)))?;
    let parse = |list: &[String]| -> Result<Vec<Capability>, String> {
        list.iter()
            .map(|c| {
                c.parse()
                    .map_err(|e| format!("{file}: the recorded manifest of `{name}`: `{c}`: {e}"))
            })
            .collect()
    };
    let (requires, optional) = (parse(&header.requires)?, parse(&header.optional)?);
    let observed: Vec<Observation> = decisions
        .into_iter()
        .filter(|(c, _)| *c == name)
        .map(|(_, o)| o)
        .collect();
    let lost: u64 = dropped
        .iter()
        .filter(|(c, _)| *c == name)
        .map(|(_, n)| n)
        .sum();
    if lost > 0 {
        eprintln!(
            "warning: {lost} refusal(s) of `{name}` were not recorded \
             (limits.audit_denials_per_second); the list of requests not granted is incomplete"
        );
    }
    let proposal = propose(&name, &requires, &optional, &observed);
    let toml = proposal.to_toml(&file.to_string());
    match &args.output {
        Some(path) => std::fs::write(path, &toml)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => print!("{toml}"),
    }
    Ok(())
}

fn no_observation(file: &str, name: Option<&str>) -> String {
    let which = name.map_or_else(|| "a component".to_owned(), |n| format!("`{n}`"));
    let run_name = name.unwrap_or("NAME");
    format!(
        "{file} records no observed run of {which}; record one with `airssys run --observe \
         {run_name} --audit {file} COMPONENT`"
    )
}

/// A decision line as an [`Observation`].
fn observation(
    capability: &str,
    resource: String,
    verdict: &str,
    rule: String,
) -> Result<Observation, String> {
    let bad = || format!("`{capability}` is not `domain:action`");
    let (domain, action) = capability.split_once(':').ok_or_else(bad)?;
    let domain = Domain::from_name(domain).ok_or_else(bad)?;
    let action = domain.action(action).ok_or_else(bad)?;
    Ok(Observation {
        domain,
        action,
        resource,
        allowed: verdict == "allow",
        rule,
    })
}
