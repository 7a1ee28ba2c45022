//! Program rules: what a component may do with a program it is granted
//! (`proc:spawn:<path>`), beyond starting it. See [`ProgramRule`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::capability::{Action, Capability, Domain, GrantSet, Request, ResourcePattern};
use serde::Deserialize;
use toml::Spanned;

use super::{Policy, PolicyError};

/// How a `{pattern}` placeholder matches: case-sensitive, `*` and `?`
/// never match `/`.
const PATTERN_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// What a component may do with a program it is granted
/// (`proc:spawn:<path>`), beyond starting it. Written per program under
/// `[components.<name>.programs."<path>"]` (or `[defaults.programs."<path>"]`):
///
/// ```toml
/// [components.builder]
/// grants = ["proc:spawn:/usr/bin/git"]
///
/// [components.builder.programs."/usr/bin/git"]
/// args = [
///     ["status", "--porcelain"],
///     ["log", "--oneline", "-n", "{[0-9]*}"],
///     ["show", "{}"],
///     ["diff", "--stat", "{...}"],
/// ]
/// env = ["LANG", "GIT_AUTHOR_NAME"]
/// rlimits = { processes = 64, cpu_seconds = 30, address_space_bytes = 2147483648 }
/// ```
///
/// - `args`: the argument lists (after the program name) the component may
///   pass, one list of words per allowed shape; an argument list is
///   accepted when one shape matches it. A word is a literal argument,
///   `{}` (any one argument that is not an option, i.e. does not begin
///   with `-`), `{pattern}` (one argument matching a glob: `*` within one
///   `/`-separated part, `**` across parts, `?` one character, `[abc]` one
///   of; not an option unless the pattern itself begins with `-`; never an
///   argument with a `..` part), or `{...}` (any remaining arguments,
///   options included; last word only). `{{` and `}}` write literal braces.
///   Without `args` the program takes any arguments: full code execution
///   as the host user for any shell, interpreter, or program with an
///   "execute this" option, reported when the component loads
///   ([`ProcessNotice`]).
/// - `env`: the variables the component may set in the child's
///   environment, by exact name. Nothing else is passed; `env:read` grants
///   only let the component read variables, never set them in a child.
/// - `rlimits`: kernel resource limits applied to the child before it
///   starts (inherited by its own children).
///
/// A rule applies to a spawn when its path is the program asked for or
/// resolves to the same file (symlinks and `/bin` → `/usr/bin` aliases
/// included); when several apply, each must accept the spawn.
///
/// # Examples
///
/// ```
/// use airssys_contract::policy::{ChildLimits, ProgramRule};
///
/// let git = ProgramRule::new()
///     .allow_args(&["status", "--porcelain"])?
///     .allow_args(&["log", "-n", "{[0-9]*}"])?
///     .pass_env("LANG")?
///     .rlimits(ChildLimits::new().cpu_seconds(30));
/// assert!(git.check_args(&["log".into(), "-n".into(), "5".into()]).is_ok());
/// assert!(git.check_args(&["-c".into(), "alias.x=!sh".into()]).is_err());
/// # Ok::<(), airssys_contract::policy::PolicyError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProgramRule {
    /// `None`: any arguments.
    args: Option<Vec<ArgShape>>,
    env: BTreeSet<String>,
    rlimits: ChildLimits,
    line: Option<u32>,
}

/// One allowed argument list: words matched one to one against the
/// arguments, or a prefix of them when it ends with `{...}`.
#[derive(Debug, Clone)]
pub struct ArgShape {
    /// Each word as written, and what it matches.
    words: Vec<(String, Word)>,
    line: Option<u32>,
}

#[derive(Debug, Clone)]
enum Word {
    /// Exactly this argument (braces unescaped).
    Literal(String),
    /// `{}`: any one argument that is not an option.
    One,
    /// `{pattern}`.
    Pattern(glob::Pattern),
    /// `{...}`: any remaining arguments (last word only).
    Rest,
}

/// Kernel resource limits set on a child before it starts; its own
/// children inherit them. `None` leaves the host's limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildLimits {
    /// `RLIMIT_NPROC` (`processes`): processes and threads the child may
    /// create. The kernel counts every process of the host's user, not
    /// only the child's, and does not apply it to root.
    pub processes: Option<u64>,
    /// `RLIMIT_CPU` (`cpu_seconds`): CPU seconds; the child gets `SIGXCPU`
    /// at the limit and `SIGKILL` one second later.
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_AS` (`address_space_bytes`): virtual memory of each process.
    pub address_space_bytes: Option<u64>,
}

impl ChildLimits {
    /// No limit set.
    pub fn new() -> ChildLimits {
        ChildLimits::default()
    }

    /// Sets `processes`.
    pub fn processes(mut self, count: u64) -> ChildLimits {
        self.processes = Some(count);
        self
    }

    /// Sets `cpu_seconds`.
    pub fn cpu_seconds(mut self, seconds: u64) -> ChildLimits {
        self.cpu_seconds = Some(seconds);
        self
    }

    /// Sets `address_space_bytes`.
    pub fn address_space_bytes(mut self, bytes: u64) -> ChildLimits {
        self.address_space_bytes = Some(bytes);
        self
    }

    /// The stricter of `self` and `other`, field by field.
    pub fn min(self, other: ChildLimits) -> ChildLimits {
        let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ChildLimits {
            processes: min(self.processes, other.processes),
            cpu_seconds: min(self.cpu_seconds, other.cpu_seconds),
            address_space_bytes: min(self.address_space_bytes, other.address_space_bytes),
        }
    }
}

impl ProgramRule {
    /// A rule that constrains nothing yet: any arguments (until the first
    /// [`ProgramRule::allow_args`]), no environment, no rlimits.
    pub fn new() -> ProgramRule {
        ProgramRule::default()
    }

    /// Allows one more argument list shape (see [`ProgramRule`] for the
    /// words); `&[]` allows running the program without arguments.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Program`] for an ambiguous or malformed word.
    pub fn allow_args<S: AsRef<str>>(mut self, words: &[S]) -> Result<Self, PolicyError> {
        let shape = ArgShape::parse(words.iter().map(AsRef::as_ref), None)
            .map_err(|(_, message)| PolicyError::Program(message))?;
        self.args.get_or_insert_with(Vec::new).push(shape);
        Ok(self)
    }

    /// Lets the component set the variable `name` in the child's
    /// environment.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Program`] when `name` is not a plain variable name or
    /// is a dynamic loader variable.
    pub fn pass_env(mut self, name: &str) -> Result<Self, PolicyError> {
        check_env_name(name).map_err(PolicyError::Program)?;
        self.env.insert(name.to_owned());
        Ok(self)
    }

    /// Sets the child's kernel resource limits.
    pub fn rlimits(mut self, limits: ChildLimits) -> Self {
        self.rlimits = limits;
        self
    }

    /// The allowed argument list shapes; `None` when any arguments are
    /// allowed.
    pub fn arg_shapes(&self) -> Option<&[ArgShape]> {
        self.args.as_deref()
    }

    /// Whether this rule lets any argument list through (no `args`, or a
    /// shape that is only `{...}`).
    pub fn allows_any_arguments(&self) -> bool {
        self.args.as_ref().is_none_or(|shapes| {
            shapes
                .iter()
                .any(|s| matches!(s.words[..], [(_, Word::Rest)]))
        })
    }

    /// The variables the component may set in the child.
    pub fn env(&self) -> impl Iterator<Item = &str> {
        self.env.iter().map(String::as_str)
    }

    /// Whether the component may set `name` in the child.
    pub fn passes_env(&self, name: &str) -> bool {
        self.env.contains(name)
    }

    /// The child's kernel resource limits.
    pub fn child_limits(&self) -> ChildLimits {
        self.rlimits
    }

    /// The 1-based line of the rule's table, when read from a file.
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// Checks `args` (without the program name) against the shapes.
    ///
    /// # Errors
    ///
    /// Why no shape matches: each shape as written, with the first
    /// argument it refuses.
    pub fn check_args(&self, args: &[String]) -> Result<(), String> {
        let Some(shapes) = &self.args else {
            return Ok(());
        };
        let mut reasons = Vec::new();
        for shape in shapes {
            match shape.check(args) {
                Ok(()) => return Ok(()),
                Err(why) => reasons.push(format!("`{shape}`: {why}")),
            }
        }
        const SHOWN: usize = 8;
        let more = reasons.len().saturating_sub(SHOWN);
        reasons.truncate(SHOWN);
        if more > 0 {
            reasons.push(format!("and {more} more"));
        }
        Err(reasons.join("; "))
    }
}

impl ArgShape {
    /// Parses the words of one shape; the error carries the index of the
    /// offending word.
    fn parse<'a>(
        words: impl ExactSizeIterator<Item = &'a str>,
        line: Option<u32>,
    ) -> Result<ArgShape, (usize, String)> {
        let count = words.len();
        let words = words
            .enumerate()
            .map(|(i, text)| {
                parse_word(text, i + 1 == count)
                    .map(|word| (text.to_owned(), word))
                    .map_err(|m| (i, m))
            })
            .collect::<Result<_, _>>()?;
        Ok(ArgShape { words, line })
    }

    /// The 1-based line the shape was written on, when read from a file.
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    fn check(&self, args: &[String]) -> Result<(), String> {
        for (i, (text, word)) in self.words.iter().enumerate() {
            if matches!(word, Word::Rest) {
                return Ok(());
            }
            match args.get(i) {
                None => return Err(format!("argument {} is missing, expected `{text}`", i + 1)),
                Some(arg) if !word.matches(arg) => {
                    return Err(format!(
                        "argument {} is {}, expected `{text}`",
                        i + 1,
                        shown(arg)
                    ));
                }
                Some(_) => {}
            }
        }
        match args.get(self.words.len()) {
            None => Ok(()),
            Some(extra) => Err(format!(
                "argument {} ({}) is one too many",
                self.words.len() + 1,
                shown(extra)
            )),
        }
    }
}

impl fmt::Display for ArgShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.words.is_empty() {
            return f.write_str("(no arguments)");
        }
        let words: Vec<&str> = self.words.iter().map(|(text, _)| text.as_str()).collect();
        f.write_str(&words.join(" "))
    }
}

impl Word {
    fn matches(&self, arg: &str) -> bool {
        match self {
            Word::Literal(literal) => literal == arg,
            Word::One => !arg.starts_with('-'),
            Word::Pattern(pattern) => {
                (!arg.starts_with('-') || pattern.as_str().starts_with('-'))
                    && !arg.split('/').any(|part| part == "..")
                    && pattern.matches_with(arg, PATTERN_OPTIONS)
            }
            Word::Rest => true,
        }
    }
}

/// An argument for a message: quoted with control characters escaped
/// (the component chose it; it may be written for the operator's
/// terminal), cut at 64 characters.
pub fn shown(arg: &str) -> String {
    const MAX: usize = 64;
    match arg.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &arg[..cut]),
        None => format!("{arg:?}"),
    }
}

/// One word of a shape. Anything that could be read two ways is an error.
fn parse_word(text: &str, last: bool) -> Result<Word, String> {
    if text == "{...}" {
        if last {
            return Ok(Word::Rest);
        }
        return Err(
            "`{...}` (any remaining arguments) must be the last word of an argument list".into(),
        );
    }
    if text.starts_with('{') && !text.starts_with("{{") {
        let Some(inner) = text[1..].strip_suffix('}') else {
            return Err(format!(
                "`{text}` starts a placeholder but does not end with `}}`; a placeholder is a \
                 whole word such as `{{}}` or `{{*.txt}}`, and `{{{{` writes a literal `{{`"
            ));
        };
        if inner.contains(['{', '}']) {
            return Err(format!(
                "`{text}`: braces inside a placeholder are ambiguous (alternatives such as \
                 `{{a,b}}` are not supported; write one argument list per alternative)"
            ));
        }
        if inner.is_empty() {
            return Ok(Word::One);
        }
        if !inner.contains(['*', '?', '[']) {
            return Err(format!(
                "`{text}` is not a placeholder: write `{inner}` for that literal word, `{{}}` for \
                 any one argument, or a pattern with `*`, `?` or `[...]` such as `{{{inner}*}}`"
            ));
        }
        return glob::Pattern::new(inner)
            .map(Word::Pattern)
            .map_err(|e| format!("pattern `{inner}`: {} (at character {})", e.msg, e.pos + 1));
    }
    let mut literal = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, '{' | '}') {
            if chars.peek() != Some(&c) {
                return Err(format!(
                    "`{text}`: a single `{c}` inside a word is ambiguous; write `{c}{c}` for a \
                     literal `{c}`, or make the whole word a placeholder such as `{{}}`"
                ));
            }
            chars.next();
        }
        literal.push(c);
    }
    Ok(Word::Literal(literal))
}

/// A variable a component may be allowed to pass: a plain name, never a
/// dynamic loader variable.
fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0', '*']) {
        return Err(format!(
            "`{name}` is not a variable name: list each variable a component may set in a child \
             by its exact name (no `=`, NUL or `*`)"
        ));
    }
    if is_loader_variable(name) {
        return Err(format!(
            "`{name}` is a dynamic loader variable (`LD_*`, `DYLD_*`): it is never passed to a \
             child"
        ));
    }
    Ok(())
}

/// Whether `name` is a dynamic loader variable (never passed to a child).
pub fn is_loader_variable(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("LD_") || upper.starts_with("DYLD_")
}

/// Checks a program path as `proc` grants name programs: absolute,
/// normalized, no wildcards.
pub(crate) fn check_program_path(path: &str) -> Result<(), String> {
    Capability::parse(&format!("proc:spawn:{path}"))
        .map(drop)
        .map_err(|e| format!("program `{path}`: {e}"))
}

/// The file `path` names, every symlink resolved; `None` when it does not
/// exist.
pub fn resolve(path: &str) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// The rules among `rules` that apply to a spawn of `asked`, which
/// resolved to `resolved`: written for that path, or for a path that
/// resolves to the same file.
pub fn rules_for<'a>(
    rules: &'a BTreeMap<String, ProgramRule>,
    asked: &str,
    resolved: &Path,
) -> Vec<(&'a str, &'a ProgramRule)> {
    rules
        .iter()
        .filter(|(path, _)| {
            path.as_str() == asked
                || Path::new(path) == resolved
                || resolve(path).is_some_and(|p| p == resolved)
        })
        .map(|(path, rule)| (path.as_str(), rule))
        .collect()
}

/// Something about a component's process rights the operator should know,
/// reported when it loads (the runtime's `LoadedComponent::process_notices`,
/// a `tracing` warning with target `airssys::load`) and by
/// `airssys inspect --policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessNotice {
    /// A granted program has no argument rules: whatever arguments the
    /// component passes, it runs.
    AnyArguments {
        /// The component.
        component: String,
        /// The program path as granted.
        program: String,
    },
    /// `proc:spawn` is granted without a path: any program, any arguments.
    AnyProgram {
        /// The component.
        component: String,
    },
    /// The component may read variables and spawn programs, but no program
    /// rule lets it pass a variable: what `env:read` once allowed now
    /// needs `env` under the program's rule.
    EnvNotPassed {
        /// The component.
        component: String,
    },
}

impl fmt::Display for ProcessNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessNotice::AnyArguments { component, program } => write!(
                f,
                "component `{component}` may run `{program}` with any arguments: full code \
                 execution as the host user; constrain it with `args` under \
                 [components.{component}.programs.\"{program}\"] (docs/policy.md, \"Programs\")"
            ),
            ProcessNotice::AnyProgram { component } => write!(
                f,
                "component `{component}` may run any program (`proc:spawn` without a path) with \
                 any arguments: full code execution as the host user; grant programs by path and \
                 constrain them with `args` (docs/policy.md, \"Programs\")"
            ),
            ProcessNotice::EnvNotPassed { component } => write!(
                f,
                "component `{component}` holds `env:read` grants and may spawn programs, but \
                 reading a variable no longer lets it set that variable in a child \
                 (docs/decisions/containment-process.md); list the variables it may pass under \
                 `env` of [components.{component}.programs.\"<path>\"]"
            ),
        }
    }
}

impl Policy {
    /// The program rules of `name`: `[defaults.programs]` with its own
    /// rules replacing those for the same path.
    pub fn programs_for(&self, name: &str) -> BTreeMap<String, ProgramRule> {
        let mut out = self.defaults.programs.clone();
        if let Some(own) = self.components.get(name) {
            out.extend(own.programs.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// What the operator should know about the process rights `grants`
    /// (the effective grant of component `name`) give under this policy:
    /// programs that run with any arguments, and `env:read` grants that no
    /// longer pass variables to children.
    pub fn process_notices(&self, name: &str, grants: &GrantSet) -> Vec<ProcessNotice> {
        let rules = self.programs_for(name);
        let mut notices = Vec::new();
        let mut spawns = false;
        for capability in grants.allows() {
            if (capability.domain(), capability.action()) != (Domain::Proc, Action::Spawn) {
                continue;
            }
            match capability.resource() {
                None => {
                    spawns = true;
                    notices.push(ProcessNotice::AnyProgram {
                        component: name.to_owned(),
                    });
                }
                Some(ResourcePattern::Program(program)) => {
                    let allowed = Request::new(Domain::Proc, Action::Spawn, program)
                        .is_ok_and(|r| grants.check(&r).is_allowed());
                    if !allowed {
                        continue;
                    }
                    spawns = true;
                    let resolved = resolve(program).unwrap_or_else(|| PathBuf::from(program));
                    let constrained = rules_for(&rules, program, &resolved)
                        .iter()
                        .any(|(_, rule)| !rule.allows_any_arguments());
                    if !constrained {
                        notices.push(ProcessNotice::AnyArguments {
                            component: name.to_owned(),
                            program: program.clone(),
                        });
                    }
                }
                Some(_) => {}
            }
        }
        let reads_env = grants
            .allows()
            .iter()
            .any(|c| c.domain() == Domain::Env && c.action() == Action::Read);
        if spawns && reads_env && rules.values().all(|r| r.env.is_empty()) {
            notices.push(ProcessNotice::EnvNotPassed {
                component: name.to_owned(),
            });
        }
        notices
    }
}

/// `[components.<name>.programs."<path>"]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProgramFile {
    #[serde(default)]
    args: Option<Spanned<Vec<Vec<Spanned<String>>>>>,
    #[serde(default)]
    env: Vec<Spanned<String>>,
    #[serde(default)]
    rlimits: Option<Spanned<RlimitsFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RlimitsFile {
    processes: Option<u64>,
    cpu_seconds: Option<u64>,
    address_space_bytes: Option<u64>,
}

impl ProgramFile {
    /// The rule, checked; `invalid(offset, message)` makes the error for a
    /// byte offset in the text, `line(offset)` the 1-based line.
    pub(super) fn into_rule(
        self,
        header_line: Option<u32>,
        line: impl Fn(usize) -> u32,
        invalid: impl Fn(usize, String) -> PolicyError,
    ) -> Result<ProgramRule, PolicyError> {
        let args = match self.args {
            None => None,
            Some(list) => {
                let start = list.span().start;
                let list = list.into_inner();
                if list.is_empty() {
                    return Err(invalid(
                        start,
                        "`args = []` would allow no argument list at all: write `args = [[]]` to \
                         allow running the program without arguments only, or remove `args` to \
                         allow any arguments (full code execution)"
                            .into(),
                    ));
                }
                let mut shapes = Vec::with_capacity(list.len());
                for words in list {
                    let at = words.first().map(|w| line(w.span().start));
                    let texts: Vec<&str> = words.iter().map(|w| w.get_ref().as_str()).collect();
                    let shape = ArgShape::parse(texts.into_iter(), at)
                        // +1: the span starts at the opening quote.
                        .map_err(|(i, m)| invalid(words[i].span().start + 1, m))?;
                    shapes.push(shape);
                }
                Some(shapes)
            }
        };
        let mut env = BTreeSet::new();
        for name in self.env {
            check_env_name(name.get_ref()).map_err(|m| invalid(name.span().start + 1, m))?;
            env.insert(name.into_inner());
        }
        let rlimits = match self.rlimits {
            None => ChildLimits::default(),
            Some(r) => {
                let start = r.span().start;
                let r = r.into_inner();
                if r.cpu_seconds == Some(0) || r.address_space_bytes == Some(0) {
                    return Err(invalid(
                        start,
                        "`rlimits`: `cpu_seconds` and `address_space_bytes` must be at least 1 \
                         (leave a limit out to keep the host's)"
                            .into(),
                    ));
                }
                ChildLimits {
                    processes: r.processes,
                    cpu_seconds: r.cpu_seconds,
                    address_space_bytes: r.address_space_bytes,
                }
            }
        };
        Ok(ProgramRule {
            args,
            env,
            rlimits,
            line: header_line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(shapes: &[&[&str]]) -> ProgramRule {
        shapes.iter().fold(ProgramRule::new(), |r, s| {
            r.allow_args(s).expect("valid shape")
        })
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn literal_words_match_exactly_and_lengths_must_agree() {
        let r = rule(&[&["status", "--porcelain"], &[]]);
        assert!(r.check_args(&args(&["status", "--porcelain"])).is_ok());
        assert!(r.check_args(&args(&[])).is_ok());
        let why = r.check_args(&args(&["status"])).expect_err("too short");
        assert!(
            why.contains("argument 2 is missing, expected `--porcelain`"),
            "{why}"
        );
        let why = r
            .check_args(&args(&["status", "--porcelain", "x"]))
            .expect_err("too long");
        assert!(why.contains("argument 3 (\"x\") is one too many"), "{why}");
    }

    #[test]
    fn option_injection_is_refused_by_every_placeholder() {
        let r = rule(&[&["log", "{}"], &["show", "{*}"]]);
        assert!(r.check_args(&args(&["log", "HEAD"])).is_ok());
        for injected in ["--output=/etc/passwd", "-c", "-"] {
            assert!(
                r.check_args(&args(&["log", injected])).is_err(),
                "{injected}"
            );
            assert!(
                r.check_args(&args(&["show", injected])).is_err(),
                "{injected}"
            );
        }
        // A pattern that starts with `-` opts in.
        let r = rule(&[&["log", "{-n[0-9]*}"]]);
        assert!(r.check_args(&args(&["log", "-n5"])).is_ok());
        assert!(r.check_args(&args(&["log", "-c"])).is_err());
    }

    #[test]
    fn patterns_stay_within_path_parts_and_refuse_dot_dot() {
        let r = rule(&[&["cat", "{/srv/data/*}"], &["tree", "{/srv/data/**}"]]);
        assert!(r.check_args(&args(&["cat", "/srv/data/a.txt"])).is_ok());
        assert!(r.check_args(&args(&["cat", "/srv/data/a/b"])).is_err());
        assert!(r.check_args(&args(&["cat", "/srv/data/.."])).is_err());
        assert!(r.check_args(&args(&["tree", "/srv/data/a/b"])).is_ok());
        assert!(
            r.check_args(&args(&["tree", "/srv/data/../../etc/passwd"]))
                .is_err()
        );
    }

    #[test]
    fn rest_takes_anything_after_a_prefix() {
        let r = rule(&[&["diff", "--stat", "{...}"]]);
        assert!(r.check_args(&args(&["diff", "--stat"])).is_ok());
        assert!(
            r.check_args(&args(&["diff", "--stat", "-x", "--y=1"]))
                .is_ok()
        );
        assert!(r.check_args(&args(&["diff"])).is_err());
        assert!(!r.allows_any_arguments());
        assert!(rule(&[&["{...}"]]).allows_any_arguments());
        assert!(ProgramRule::new().allows_any_arguments());
    }

    #[test]
    fn escaped_braces_are_literal() {
        let r = rule(&[&["-exec", "echo", "{{}}", ";"], &["HEAD@{{1}}"]]);
        assert!(r.check_args(&args(&["-exec", "echo", "{}", ";"])).is_ok());
        assert!(r.check_args(&args(&["HEAD@{1}"])).is_ok());
    }

    #[test]
    fn ambiguous_words_are_refused_with_a_reason() {
        for (word, expected) in [
            ("{...}", "must be the last word"),
            ("{abc", "does not end with `}`"),
            ("a{b", "a single `{` inside a word"),
            ("a}", "a single `}` inside a word"),
            ("{url}", "is not a placeholder"),
            ("{a,{b}}", "braces inside a placeholder"),
            ("{[a-}", "pattern `[a-`"),
        ] {
            let err = ProgramRule::new()
                .allow_args(&[word, "x"])
                .expect_err(word)
                .to_string();
            assert!(err.contains(expected), "{word}: {err}");
        }
    }

    #[test]
    fn refusals_quote_arguments_safely() {
        let r = rule(&[&["status"]]);
        let why = r
            .check_args(&args(&["\u{1b}[2J", &"x".repeat(100)]))
            .expect_err("refused");
        assert!(why.contains(r#""\u{1b}[2J""#), "{why}");
        assert!(!why.contains('\u{1b}'), "{why}");
    }

    #[test]
    fn env_names_are_exact_and_never_loader_variables() {
        assert!(ProgramRule::new().pass_env("LANG").is_ok());
        for bad in ["", "A=B", "GIT_*", "LD_PRELOAD", "dyld_insert_libraries"] {
            assert!(ProgramRule::new().pass_env(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn child_limits_combine_to_the_stricter() {
        let a = ChildLimits::new().cpu_seconds(5).processes(10);
        let b = ChildLimits::new()
            .cpu_seconds(3)
            .address_space_bytes(1 << 20);
        assert_eq!(
            a.min(b),
            ChildLimits::new()
                .cpu_seconds(3)
                .processes(10)
                .address_space_bytes(1 << 20)
        );
    }

    #[test]
    fn toml_rules_parse_with_positions() {
        let policy = Policy::from_toml_str(
            r#"
[components.builder]
grants = ["proc:spawn:/usr/bin/git"]

[components.builder.programs."/usr/bin/git"]
args = [["status"], ["log", "-n", "{[0-9]*}"]]
env = ["LANG"]
rlimits = { cpu_seconds = 30, processes = 64 }

[defaults.programs."/bin/true"]
args = [[]]
"#,
        )
        .expect("valid policy");
        let rules = policy.programs_for("builder");
        let git = &rules["/usr/bin/git"];
        assert_eq!(git.line(), Some(5));
        assert_eq!(git.arg_shapes().map(<[_]>::len), Some(2));
        assert_eq!(git.arg_shapes().and_then(|s| s[1].line()), Some(6));
        assert!(git.passes_env("LANG"));
        assert_eq!(
            git.child_limits(),
            ChildLimits::new().cpu_seconds(30).processes(64)
        );
        assert!(rules.contains_key("/bin/true"), "defaults apply");
    }

    #[test]
    fn toml_errors_point_at_the_word() {
        for (text, (line, column), expected) in [
            (
                "[components.a.programs.\"/bin/sh\"]\nargs = [[\"-c\", \"{...}\", \"x\"]]\n",
                (2, 17),
                "must be the last word",
            ),
            (
                "[components.a.programs.\"/bin/sh\"]\nargs = []\n",
                (2, 8),
                "`args = []`",
            ),
            (
                "[components.a.programs.\"/bin/sh\"]\nenv = [\"LD_PRELOAD\"]\n",
                (2, 9),
                "dynamic loader variable",
            ),
            (
                "[components.a.programs.\"bin/sh\"]\n",
                (1, 24),
                "program `bin/sh`",
            ),
            (
                "[components.a.programs.\"/bin/sh\"]\nrlimits = { cpu = 1 }\n",
                (2, 13),
                "unknown field `cpu`",
            ),
        ] {
            let err = Policy::from_toml_str(text).expect_err(text);
            let PolicyError::Invalid {
                line: l,
                column: c,
                message,
                ..
            } = &err
            else {
                panic!("expected Invalid, got {err:?}");
            };
            assert!(message.contains(expected), "{text}: {message}");
            assert_eq!((*l, *c), (line, column), "{text}: {message}");
        }
    }

    #[test]
    fn notices_name_unconstrained_programs_and_env_reads() {
        let policy = Policy::from_toml_str(
            r#"
[components.a.programs."/bin/echo"]
args = [["hi"]]
"#,
        )
        .expect("valid policy");
        let grants = GrantSet::builder()
            .allow("proc:spawn:/bin/echo".parse().expect("cap"))
            .allow("proc:spawn:/bin/sh".parse().expect("cap"))
            .allow("env:read:HOME".parse().expect("cap"))
            .build();
        let notices = policy.process_notices("a", &grants);
        assert_eq!(
            notices,
            [
                ProcessNotice::AnyArguments {
                    component: "a".into(),
                    program: "/bin/sh".into()
                },
                ProcessNotice::EnvNotPassed {
                    component: "a".into()
                },
            ]
        );
        assert!(notices[0].to_string().contains("full code execution"));
        let any = GrantSet::builder()
            .allow("proc:spawn".parse().expect("cap"))
            .build();
        assert_eq!(
            policy.process_notices("a", &any),
            [ProcessNotice::AnyProgram {
                component: "a".into()
            }]
        );
    }
}
