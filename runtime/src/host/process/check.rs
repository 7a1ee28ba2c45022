//! What `spawn` checks after its guard (`proc:spawn:{program}` against the
//! grants as written) and before anything runs: the program's resolved
//! path against `/proc/` and the deny rules, the arguments and the
//! environment against the policy's program rules.

use std::path::{Path, PathBuf};

use airssys_contract::capability::{Action, Domain, ResourcePattern};

use super::super::bindings::airssys::ext::process::{Error, KeyValue};
use super::super::state::HostState;
use crate::policy::{ChildLimits, ProgramRule, is_loader_variable, resolve, rules_for, shown};

/// A spawn that passed every check: what will run, and how.
#[derive(Debug)]
#[cfg_attr(not(unix), allow(dead_code))] // nothing runs there
pub(super) struct Launch {
    /// The path the component asked for (granted as written): the
    /// child's `argv[0]` and the `{self}` of `proc:signal`.
    pub(super) program: String,
    /// The file that runs: `program` with every symlink resolved, checked
    /// against the deny rules, and executed by this path.
    pub(super) resolved: PathBuf,
    /// The arguments, checked against the program's argument rules.
    pub(super) args: Vec<String>,
    /// The environment, each name passed by a program rule.
    pub(super) env: Vec<(String, String)>,
    /// The stricter of the applying rules' rlimits.
    pub(super) rlimits: ChildLimits,
}

impl HostState {
    /// Checks a spawn the guard has let through.
    ///
    /// # Errors
    ///
    /// `denied` for a `/proc/` path, a program that resolves to a denied
    /// one, arguments no rule allows, a variable no rule passes;
    /// `not-found` when the program does not exist; `invalid-input` for
    /// NUL bytes, malformed or loader variables.
    pub(super) fn check_launch(
        &self,
        program: String,
        args: Vec<String>,
        env: Vec<KeyValue>,
    ) -> Result<Launch, Error> {
        let name = self.name();
        if args.iter().any(|a| a.contains('\0')) {
            return Err(Error::InvalidInput(
                "an argument contains a NUL byte".into(),
            ));
        }
        check_env_syntax(&env)?;
        if is_under_proc(Path::new(&program)) {
            return Err(Error::Denied(format!(
                "component `{name}` may not run `{program}`: paths under `/proc/` name \
                 processes, not programs, and are refused; grant the program by its own path"
            )));
        }
        let resolved = resolve(&program).ok_or_else(|| {
            Error::NotFound(format!("cannot run `{program}`: no program at that path"))
        })?;
        if is_under_proc(&resolved) {
            return Err(Error::Denied(format!(
                "component `{name}` may not run `{program}`: it resolves to `{}`, under `/proc/`, \
                 which is refused",
                resolved.display()
            )));
        }
        self.check_denies(&program, &resolved)?;
        let rules = rules_for(&self.info.programs, &program, &resolved);
        for (path, rule) in &rules {
            rule.check_args(&args).map_err(|why| {
                Error::Denied(format!(
                    "component `{name}` may not run `{program}` with arguments {}: they fit none \
                     of the argument lists in `args` of {}: {why}; add an argument list there to \
                     allow it",
                    shown_args(&args),
                    table(name, path, rule),
                ))
            })?;
        }
        for KeyValue { key, .. } in &env {
            let refusing = match rules.as_slice() {
                [] => None,
                some => match some.iter().find(|(_, rule)| !rule.passes_env(key)) {
                    Some(refusing) => Some(*refusing),
                    None => continue,
                },
            };
            let (path, rule) = match refusing {
                Some((path, rule)) => (path, Some(rule)),
                None => (program.as_str(), None),
            };
            let at = rule.map_or_else(
                || format!("[components.{name}.programs.\"{path}\"]"),
                |rule| table(name, path, rule),
            );
            let key = shown(key);
            return Err(Error::Denied(format!(
                "component `{name}` may not set {key} in the environment of `{program}`: passing \
                 a variable to a child is a right of its own (an `env:read` grant does not give \
                 it); add {key} to `env` of {at} in the host policy"
            )));
        }
        let rlimits = rules
            .iter()
            .fold(ChildLimits::default(), |limits, (_, rule)| {
                limits.min(rule.child_limits())
            });
        Ok(Launch {
            program,
            resolved,
            args,
            env: env.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            rlimits,
        })
    }

    /// Refuses `resolved` when a `proc:spawn` deny rule names it, by its
    /// own path or by any path that resolves to it.
    fn check_denies(&self, program: &str, resolved: &Path) -> Result<(), Error> {
        for deny in self.info.grants.denies() {
            if (deny.domain(), deny.action()) != (Domain::Proc, Action::Spawn) {
                continue;
            }
            // A deny without a path refuses every program: the guard has.
            let Some(ResourcePattern::Program(denied)) = deny.resource() else {
                continue;
            };
            if Path::new(denied) == resolved || resolve(denied).is_some_and(|d| d == resolved) {
                return Err(Error::Denied(format!(
                    "component `{}` may not run `{program}`: it resolves to `{}`, which the host \
                     policy denies with `{deny}`",
                    self.name(),
                    resolved.display()
                )));
            }
        }
        Ok(())
    }
}

/// Names, values: no NUL, a name non-empty without `=`; loader variables
/// are refused whatever the policy says.
fn check_env_syntax(env: &[KeyValue]) -> Result<(), Error> {
    for KeyValue { key, value } in env {
        if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
            return Err(Error::InvalidInput(format!(
                "environment variable {}: a name must be non-empty without `=` or NUL, a value \
                 without NUL",
                shown(key)
            )));
        }
        if is_loader_variable(key) {
            return Err(Error::InvalidInput(format!(
                "environment variable `{key}` is refused: dynamic loader variables (`LD_*`, \
                 `DYLD_*`) are never passed to a child"
            )));
        }
    }
    Ok(())
}

fn is_under_proc(path: &Path) -> bool {
    path.starts_with("/proc")
}

/// `[components.<name>.programs."<path>"] (policy line N)`.
fn table(name: &str, path: &str, rule: &ProgramRule) -> String {
    let line = rule
        .line()
        .map_or_else(String::new, |l| format!(" (policy line {l})"));
    format!("[components.{name}.programs.\"{path}\"]{line}")
}

/// The arguments for a message, each quoted and cut, at most eight.
fn shown_args(args: &[String]) -> String {
    const MAX: usize = 8;
    let mut list: Vec<String> = args.iter().take(MAX).map(|a| shown(a)).collect();
    if args.len() > MAX {
        list.push(format!("… ({} in all)", args.len()));
    }
    format!("[{}]", list.join(", "))
}
