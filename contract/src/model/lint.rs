//! The contract lint: one small function per rule, every problem reported
//! in one pass with its file and line.

use std::fmt;

use wit_parser::{Resolve, Type, TypeDefKind, TypeId};

use super::requirement::{annotation_lines, parse_requirement};
use super::{Contract, HostFunction, Interface, Location, Requirement, TemplatePart, WitType};
use crate::wit_text::{dealias, type_text};

/// A contract problem found by [`Contract::lint`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Problem {
    /// Where the problem is.
    pub location: Location,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    /// `file:line: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl Contract {
    /// Checks every host interface and function; returns all problems,
    /// ordered by file and line (empty when the contract is clean).
    ///
    /// Rules: each host function has exactly one `@capability` line that
    /// parses (known domain and action); a template names only string
    /// parameters of the function; `{self}` and `@capability handle` only
    /// on resource methods; a function with a capability template returns
    /// `result<_, E>` with `E` a variant that has a `denied` case; each
    /// error variant of a host interface (`error`, `*-error`) has
    /// `denied(string)` and `other(string)` cases.
    pub fn lint(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for interface in &self.interfaces {
            error_variants(self, interface, &mut problems);
            let wit = &self.resolve.interfaces[interface.id];
            for function in &interface.functions {
                let Some(wit_fn) = wit.functions.get(&function.name) else {
                    continue;
                };
                let mut cx = FunctionCx {
                    contract: self,
                    interface,
                    function,
                    wit_fn,
                    problems: &mut problems,
                };
                cx.annotation();
                match &function.requirement {
                    Requirement::Capability(_) => {
                        cx.template_params();
                        cx.handle_in_template();
                        cx.result_carries_denied();
                    }
                    Requirement::Handle => cx.handle_annotation(),
                    Requirement::None | Requirement::Invalid => {}
                }
            }
        }
        problems.sort_by(|a, b| a.location.cmp(&b.location));
        problems
    }
}

struct FunctionCx<'a> {
    contract: &'a Contract,
    interface: &'a Interface,
    function: &'a HostFunction,
    wit_fn: &'a wit_parser::Function,
    problems: &'a mut Vec<Problem>,
}

impl FunctionCx<'_> {
    fn resolve(&self) -> &Resolve {
        &self.contract.resolve
    }

    /// "function `bucket.get` in `airssys:core/storage@1.0.0`".
    fn who(&self) -> String {
        format!(
            "function `{}` in `{}`",
            self.function.display_name(),
            self.interface.qualified_name()
        )
    }

    fn report(&mut self, line: u32, message: String) {
        self.problems.push(Problem {
            location: Location {
                file: self.function.location.file.clone(),
                line,
            },
            message,
        });
    }

    /// Rule: exactly one `@capability` line, and it parses.
    fn annotation(&mut self) {
        let args = annotation_lines(&self.function.docs);
        let found = self
            .contract
            .sources
            .annotation_lines(&self.function.location);
        let fn_line = self.function.location.line;
        // The k-th annotation's line; the function's own line when the
        // source text does not line up with the parsed docs.
        let line_of = |k: usize| {
            if found.len() == args.len() {
                found[k]
            } else {
                fn_line
            }
        };
        match args.as_slice() {
            [] => {
                let message = format!(
                    "{} has no `@capability` line; add `/// @capability domain:action[:resource]` \
                     (or `none`, or `handle` for a resource method) to its doc comment",
                    self.who()
                );
                self.report(fn_line, message);
            }
            [one] => {
                if let Err(reason) = parse_requirement(one) {
                    let message = format!("{}: {reason}", self.who());
                    self.report(line_of(0), message);
                }
            }
            many => {
                let message = format!(
                    "{} has {} `@capability` lines; keep exactly one",
                    self.who(),
                    many.len()
                );
                self.report(line_of(1), message);
            }
        }
    }

    fn annotation_line(&self) -> u32 {
        let found = self
            .contract
            .sources
            .annotation_lines(&self.function.location);
        match found.as_slice() {
            [one] => *one,
            _ => self.function.location.line,
        }
    }

    /// Rule: every `{param}` names a string parameter of the function.
    fn template_params(&mut self) {
        let Requirement::Capability(template) = &self.function.requirement else {
            return;
        };
        for name in template.params() {
            let param = self.function.params.iter().find(|p| p.name == name);
            let message = match param {
                None => {
                    let names: Vec<_> = self
                        .function
                        .params
                        .iter()
                        .map(|p| format!("`{}`", p.name))
                        .collect();
                    let has = if names.is_empty() {
                        "it has no parameters".to_owned()
                    } else {
                        format!("its parameters are {}", names.join(", "))
                    };
                    format!(
                        "{}: template `{template}` names `{{{name}}}`, which is not a parameter; {has}",
                        self.who()
                    )
                }
                Some(p) if *p.ty.dealias() != WitType::String => format!(
                    "{}: template `{template}` names `{{{name}}}`, whose type is `{}`; \
                     only `string` parameters can complete a capability",
                    self.who(),
                    p.ty
                ),
                Some(_) => continue,
            };
            let line = self.annotation_line();
            self.report(line, message);
        }
    }

    /// Rule: `{self}` only in a resource method's template.
    fn handle_in_template(&mut self) {
        let Requirement::Capability(template) = &self.function.requirement else {
            return;
        };
        if template.resource.contains(&TemplatePart::Handle) && !self.function.is_method() {
            let message = format!(
                "{}: template `{template}` uses `{{self}}`, but only a resource method has a handle",
                self.who()
            );
            let line = self.annotation_line();
            self.report(line, message);
        }
    }

    /// Rule: `@capability handle` only on a resource method.
    fn handle_annotation(&mut self) {
        if !self.function.is_method() {
            let message = format!(
                "{}: `@capability handle` needs a resource method (authorized by its handle); \
                 this function has no handle",
                self.who()
            );
            let line = self.annotation_line();
            self.report(line, message);
        }
    }

    /// Rule: a function that checks a capability can report `denied`.
    fn result_carries_denied(&mut self) {
        let Requirement::Capability(template) = &self.function.requirement else {
            return;
        };
        let Err(reason) = denial_variant(self.resolve(), self.wit_fn.result) else {
            return;
        };
        let result = self
            .function
            .result
            .as_ref()
            .map_or_else(|| "nothing".to_owned(), ToString::to_string);
        let message = format!(
            "{} requires `{template}` but its result `{result}` cannot carry `denied`: {reason}; \
             return `result<_, E>` where `E` is a variant with a `denied(string)` case",
            self.who()
        );
        let line = self.function.location.line;
        self.report(line, message);
    }
}

/// The error variant of a `result<_, E>` result when it has a `denied`
/// case; otherwise why not.
fn denial_variant(resolve: &Resolve, result: Option<Type>) -> Result<TypeId, String> {
    let Some(result) = result else {
        return Err("the function returns nothing".to_owned());
    };
    let Type::Id(id) = dealias(resolve, result) else {
        return Err("it is not a `result`".to_owned());
    };
    let TypeDefKind::Result(r) = &resolve.types[id].kind else {
        return Err("it is not a `result`".to_owned());
    };
    let Some(err) = r.err else {
        return Err("the `result` has no error type".to_owned());
    };
    let err_text = type_text(resolve, err);
    let Type::Id(err_id) = dealias(resolve, err) else {
        return Err(format!("its error type `{err_text}` is not a variant"));
    };
    let TypeDefKind::Variant(variant) = &resolve.types[err_id].kind else {
        return Err(format!("its error type `{err_text}` is not a variant"));
    };
    if variant.cases.iter().any(|c| c.name == "denied") {
        Ok(err_id)
    } else {
        Err(format!(
            "its error variant `{err_text}` has no `denied` case"
        ))
    }
}

/// Rule: an interface's error variants (`error`, `*-error`) have
/// `denied(string)` and `other(string)` cases.
fn error_variants(contract: &Contract, interface: &Interface, problems: &mut Vec<Problem>) {
    let resolve = &contract.resolve;
    for (name, &id) in &resolve.interfaces[interface.id].types {
        if name != "error" && !name.ends_with("-error") {
            continue;
        }
        let def = &resolve.types[id];
        let TypeDefKind::Variant(variant) = &def.kind else {
            continue;
        };
        for case in ["denied", "other"] {
            let ok = variant.cases.iter().any(|c| {
                c.name == case && c.ty.is_some_and(|t| dealias(resolve, t) == Type::String)
            });
            if !ok {
                problems.push(Problem {
                    location: contract.sources.location(&resolve.source_map, def.span),
                    message: format!(
                        "error variant `{name}` of `{}` lacks a `{case}(string)` case",
                        interface.qualified_name()
                    ),
                });
            }
        }
    }
}
