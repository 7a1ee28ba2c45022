//! `airssys cap check [--grant PATTERN]... [--deny PATTERN]... REQUEST`:
//! decide one capability request.
//!
//! Prints `allow` or `deny` on the first line and the deciding rule on the
//! second; exits 0 for allow, 1 for deny, 2 for an invalid pattern or
//! request (the error names the argument and puts a caret under the
//! offending bytes).

use airssys_contract::capability::{Capability, CapabilityError, GrantSet, Request};

/// Arguments of `airssys cap check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A capability to allow, e.g. `fs:read:/data/**` (repeatable).
    #[arg(long = "grant", value_name = "PATTERN")]
    grants: Vec<String>,
    /// A capability to deny; denies override grants (repeatable).
    #[arg(long = "deny", value_name = "PATTERN")]
    denies: Vec<String>,
    /// The concrete request, e.g. `fs:read:/data/app/config.toml`.
    request: String,
}

/// Runs the command and returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    match decide(&args) {
        Ok((allowed, explanation)) => {
            println!("{}", if allowed { "allow" } else { "deny" });
            println!("{explanation}");
            if allowed { 0 } else { 1 }
        }
        Err(message) => {
            eprintln!("{message}");
            2
        }
    }
}

/// The verdict and its explanation, or the error text for exit code 2.
fn decide(args: &Args) -> Result<(bool, String), String> {
    let parse_all = |flag: &str, list: &[String]| -> Result<Vec<Capability>, String> {
        list.iter()
            .enumerate()
            .map(|(i, text)| {
                Capability::parse(text)
                    .map_err(|e| report(&format!("{flag} #{} `{text}`", i + 1), text, &e))
            })
            .collect()
    };
    let allows = parse_all("--grant", &args.grants)?;
    let denies = parse_all("--deny", &args.denies)?;
    let request = Request::parse(&args.request)
        .map_err(|e| report(&format!("REQUEST `{}`", args.request), &args.request, &e))?;
    let set = GrantSet::new(allows, denies);
    let decision = set.check(&request);
    Ok((
        decision.is_allowed(),
        set.describe_request(&decision, &request),
    ))
}

/// Formats an error with the input and a caret line under the offending
/// bytes (control characters are shown escaped, and the caret follows).
fn report(argument: &str, input: &str, error: &CapabilityError) -> String {
    let shown = |s: &str| s.escape_debug().to_string();
    let start = error.offset.min(input.len());
    let end = (start + error.len).min(input.len());
    let column = input
        .get(..start)
        .map_or(start, |p| shown(p).chars().count());
    let width = input
        .get(start..end)
        .map_or(1, |p| shown(p).chars().count())
        .max(1);
    format!(
        "error: invalid {argument}: {error}\n  {}\n  {}{}",
        shown(input),
        " ".repeat(column),
        "^".repeat(width)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_under_the_offending_bytes() {
        let err = Capability::parse("fs:raed:/x").expect_err("bad action");
        let text = report("--grant #1", "fs:raed:/x", &err);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[1], "  fs:raed:/x");
        assert_eq!(lines[2], "     ^^^^");
        let err = Request::parse("fs:read:/a\0/b").expect_err("NUL");
        let text = report("REQUEST", "fs:read:/a\0/b", &err);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[1], "  fs:read:/a\\0/b");
        assert_eq!(lines[2], "            ^^");
    }
}
