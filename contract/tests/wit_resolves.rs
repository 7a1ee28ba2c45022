//! The shipped contract in `wit/` resolves with wit-parser and follows the
//! contract's rules: `@since` on every item, one error variant with
//! `denied(string)` and `other(string)` in every interface that has
//! functions, and exactly one `@capability` line on every host function.

use std::collections::BTreeSet;
use std::path::PathBuf;

use airssys_contract::capability::Domain;
use wit_parser::{
    Docs, Function, FunctionKind, InterfaceId, PackageId, Resolve, Stability, Type, TypeDefKind,
    TypeOwner, WorldItem,
};

/// The version every item of the 1.0.0 packages is stable since.
const SINCE: &str = "1.0.0";

/// The prefix of a capability line in a doc comment.
const CAPABILITY_PREFIX: &str = "@capability";

fn wit_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

fn load() -> Resolve {
    load_with_root().0
}

/// The resolved contract and its root package (`airssys:ext`).
fn load_with_root() -> (Resolve, PackageId) {
    let mut resolve = Resolve::default();
    match resolve.push_dir(wit_dir()) {
        Ok((root, _)) => (resolve, root),
        Err(err) => panic!("wit/ does not resolve:\n{}", resolve.render_error(&err)),
    }
}

/// `Some(problem)` unless `stability` is `@since(version = 1.0.0)`.
fn since_problem(what: &str, stability: &Stability) -> Option<String> {
    match stability {
        Stability::Stable { since, .. } if since.to_string() == SINCE => None,
        other => Some(format!(
            "{what}: expected @since(version = {SINCE}), found {other:?}"
        )),
    }
}

fn interface_label(resolve: &Resolve, id: InterfaceId) -> String {
    resolve
        .id_of(id)
        .unwrap_or_else(|| format!("anonymous interface {id:?}"))
}

/// The `@capability` lines of a doc comment.
fn capability_lines(docs: &Docs) -> Vec<&str> {
    docs.contents
        .as_deref()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with(CAPABILITY_PREFIX))
        .collect()
}

/// Interfaces imported (directly or through `use`) by at least one world:
/// the host side.
fn imported_interfaces(resolve: &Resolve) -> BTreeSet<InterfaceId> {
    resolve
        .worlds
        .iter()
        .flat_map(|(_, world)| world.imports.values())
        .filter_map(|item| match item {
            WorldItem::Interface { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

/// Interfaces exported by at least one world: the component side.
fn exported_interfaces(resolve: &Resolve) -> BTreeSet<InterfaceId> {
    resolve
        .worlds
        .iter()
        .flat_map(|(_, world)| world.exports.values())
        .filter_map(|item| match item {
            WorldItem::Interface { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

fn report(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn wit_dir_resolves_with_both_packages() {
    let resolve = load();
    let packages: BTreeSet<String> = resolve
        .packages
        .iter()
        .map(|(_, p)| p.name.to_string())
        .collect();
    let expected: BTreeSet<String> = ["airssys:core@1.0.0", "airssys:ext@1.0.0"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(packages, expected);
}

#[test]
fn expected_worlds_exist() {
    let (resolve, root) = load_with_root();
    assert_eq!(resolve.packages[root].name.to_string(), "airssys:ext@1.0.0");
    for world in [
        "airssys:core/host@1.0.0",
        "airssys:core/component@1.0.0",
        "airssys:ext/host@1.0.0",
        "airssys:ext/component@1.0.0",
    ] {
        resolve
            .select_world(&[root], Some(world))
            .unwrap_or_else(|err| panic!("world {world} is missing: {err}"));
    }
}

#[test]
fn every_item_is_stable_since_1_0_0() {
    let resolve = load();
    let mut problems = Vec::new();
    let mut checked = 0usize;
    for (id, interface) in &resolve.interfaces {
        let label = interface_label(&resolve, id);
        problems.extend(since_problem(
            &format!("interface {label}"),
            &interface.stability,
        ));
        for (name, ty) in &interface.types {
            problems.extend(since_problem(
                &format!("type {label}.{name}"),
                &resolve.types[*ty].stability,
            ));
            checked += 1;
        }
        for (name, func) in &interface.functions {
            problems.extend(since_problem(
                &format!("function {label}.{name}"),
                &func.stability,
            ));
            checked += 1;
        }
        checked += 1;
    }
    for (_, world) in &resolve.worlds {
        let label = format!("world {}", world.name);
        problems.extend(since_problem(&label, &world.stability));
        for (key, item) in world.imports.iter().chain(world.exports.iter()) {
            let what = format!("{label}: item {}", resolve.name_world_key(key));
            match item {
                WorldItem::Interface { stability, .. } => {
                    problems.extend(since_problem(&what, stability))
                }
                WorldItem::Function(f) => problems.extend(since_problem(&what, &f.stability)),
                WorldItem::Type { .. } => {}
            }
        }
        checked += 1;
    }
    report(&problems);
    assert!(checked > 50, "only {checked} items checked: is wit/ empty?");
}

/// Whether `kind` is a variant with a `denied(string)` and an
/// `other(string)` case.
fn is_error_variant(kind: &TypeDefKind) -> bool {
    let TypeDefKind::Variant(variant) = kind else {
        return false;
    };
    let has_string_case = |name: &str| {
        variant
            .cases
            .iter()
            .any(|case| case.name == name && case.ty == Some(Type::String))
    };
    has_string_case("denied") && has_string_case("other")
}

#[test]
fn every_interface_with_functions_has_one_error_variant() {
    let resolve = load();
    let mut problems = Vec::new();
    for (id, interface) in &resolve.interfaces {
        let has_functions = !interface.functions.is_empty();
        let error_variants: Vec<&str> = interface
            .types
            .iter()
            .filter(|(_, ty)| {
                let def = &resolve.types[**ty];
                def.owner == TypeOwner::Interface(id) && is_error_variant(&def.kind)
            })
            .map(|(name, _)| name.as_str())
            .collect();
        let label = interface_label(&resolve, id);
        if has_functions && error_variants != ["error"] {
            problems.push(format!(
                "interface {label}: expected exactly one error variant named `error` with \
                 `denied(string)` and `other(string)`, found {error_variants:?}"
            ));
        }
        if !has_functions && !error_variants.is_empty() {
            problems.push(format!(
                "interface {label}: error variant {error_variants:?} but no functions"
            ));
        }
    }
    report(&problems);
}

/// Whether `func` returns `result<_, error>` with `error` this interface's
/// error variant.
fn returns_interface_error(resolve: &Resolve, interface: InterfaceId, func: &Function) -> bool {
    let Some(Type::Id(result)) = func.result else {
        return false;
    };
    let TypeDefKind::Result(result) = &resolve.types[result].kind else {
        return false;
    };
    let Some(Type::Id(err)) = result.err else {
        return false;
    };
    let def = &resolve.types[err];
    def.owner == TypeOwner::Interface(interface)
        && def.name.as_deref() == Some("error")
        && is_error_variant(&def.kind)
}

/// Checks the text after `@capability`: `none`, `handle` (methods only),
/// or `domain:action[:resource]` with a known domain and action, whose
/// `{name}` placeholders name a `string` parameter or, in a method, `self`.
fn check_requirement(requirement: &str, func: &Function) -> Result<(), String> {
    let is_method = matches!(func.kind, FunctionKind::Method(_));
    match requirement {
        "none" => return Ok(()),
        "handle" if is_method => return Ok(()),
        "handle" => return Err("`handle` on a function that is not a method".into()),
        _ => {}
    }
    let mut parts = requirement.splitn(3, ':');
    let domain_name = parts.next().unwrap_or_default();
    let domain = Domain::from_name(domain_name)
        .ok_or_else(|| format!("unknown domain `{domain_name}` ({})", Domain::name_list()))?;
    let action = parts.next().unwrap_or_default();
    domain.action(action).ok_or_else(|| {
        format!(
            "unknown action `{action}` for `{domain_name}` ({})",
            domain.action_list()
        )
    })?;
    let mut rest = parts.next().unwrap_or_default();
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| "unclosed `{`".to_string())?;
        let name = &rest[open + 1..open + close];
        if name == "self" {
            if !is_method {
                return Err("`{self}` outside a method".into());
            }
        } else {
            match func.params.iter().find(|p| p.name == name) {
                Some(param) if param.ty == Type::String => {}
                Some(_) => return Err(format!("parameter `{name}` is not a `string`")),
                None => return Err(format!("no parameter named `{name}`")),
            }
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

#[test]
fn every_host_function_has_exactly_one_capability_line() {
    let resolve = load();
    let imported = imported_interfaces(&resolve);
    let mut problems = Vec::new();
    let mut annotated = 0usize;
    for &id in &imported {
        let label = interface_label(&resolve, id);
        for (name, func) in &resolve.interfaces[id].functions {
            let lines = capability_lines(&func.docs);
            let [line] = lines.as_slice() else {
                problems.push(format!(
                    "{label}.{name}: expected exactly one `@capability` line, found {}",
                    lines.len()
                ));
                continue;
            };
            annotated += 1;
            let requirement = line[CAPABILITY_PREFIX.len()..].trim();
            if requirement.is_empty() || line.as_bytes().get(CAPABILITY_PREFIX.len()) != Some(&b' ')
            {
                problems.push(format!("{label}.{name}: malformed line `{line}`"));
            }
            if let Err(problem) = check_requirement(requirement, func) {
                problems.push(format!("{label}.{name}: `{line}`: {problem}"));
            }
            if requirement != "none" && !returns_interface_error(&resolve, id, func) {
                problems.push(format!(
                    "{label}.{name}: `@capability {requirement}` but the result is not \
                     `result<_, error>` with this interface's error variant"
                ));
            }
        }
    }
    report(&problems);
    assert!(
        annotated > 40,
        "only {annotated} host functions: is wit/ empty?"
    );
}

#[test]
fn component_side_functions_carry_no_capability() {
    let resolve = load();
    let imported = imported_interfaces(&resolve);
    let exported = exported_interfaces(&resolve);
    assert!(!exported.is_empty(), "no world exports an interface");
    let mut problems = Vec::new();
    for &id in &exported {
        let label = interface_label(&resolve, id);
        if imported.contains(&id) {
            problems.push(format!("{label} is both imported and exported"));
        }
        for (name, func) in &resolve.interfaces[id].functions {
            if !capability_lines(&func.docs).is_empty() {
                problems.push(format!(
                    "{label}.{name}: exported functions are not host functions and carry no \
                     `@capability` line"
                ));
            }
        }
    }
    report(&problems);
}

#[test]
fn no_async_functions() {
    // The contract waits through `airssys:core/poll` pollables, not
    // component-model async (see docs/decisions/async.md).
    let resolve = load();
    let async_funcs: Vec<String> = resolve
        .interfaces
        .iter()
        .flat_map(|(id, i)| {
            let label = interface_label(&resolve, id);
            i.functions
                .values()
                .filter(|f| f.kind.is_async())
                .map(move |f| format!("{label}.{}", f.name))
        })
        .collect();
    assert!(async_funcs.is_empty(), "async functions: {async_funcs:?}");
}
