//! The comparison engine: walks two resolved WIT package sets (or two
//! interfaces) and records every change with its rule.
//!
//! Types are compared structurally: aliases are followed, anonymous types
//! (lists, options, results, tuples, handles) are compared part by part,
//! and named records, variants, enums, flags and resources are matched by
//! their place (package, interface, name) and compared once where they are
//! defined, so one edit is reported once (`type_compare.rs`). A world's
//! `include` statements are read from its source for their gates
//! (`includes.rs`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use semver::Version;
use wit_parser::{
    Docs, Function, FunctionKind, InterfaceId, PackageId, Resolve, Span, Stability, Type,
    TypeDefKind, TypeId, WorldId, WorldItem, WorldKey,
};

mod includes;
mod type_compare;

use super::keyed::{Keyed, diff_keyed, entries};
use super::report::{Change, Finding, ItemLocation};
use super::rules::{Bump, ChangeRule, HygieneRule};
use super::types::{TypeKey, dealias, definition_text, is_nominal, kind_noun, type_key, type_text};
use includes::includes_in_source;

/// How messages name the two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wording {
    /// `airssys wit diff`: OLD and NEW.
    Diff,
    /// Load time: the component (OLD) and the host (NEW).
    Link,
}

impl Wording {
    fn pair(self, what: &str, old: &str, new: &str) -> String {
        match self {
            Wording::Diff => format!("{what} was `{old}`, is now `{new}`"),
            Wording::Link => {
                format!("the component expects {what} `{old}`, the host has `{new}`")
            }
        }
    }

    fn removed(self, what: &str) -> String {
        match self {
            Wording::Diff => format!("{what} was removed"),
            Wording::Link => format!("{what} is imported by the component but the host lacks it"),
        }
    }

    fn added(self, what: &str) -> String {
        match self {
            Wording::Diff => format!("{what} was added"),
            Wording::Link => format!("{what} exists only in the host"),
        }
    }
}

/// Which resolve a span belongs to.
#[derive(Debug, Clone, Copy)]
enum SideSpan {
    Old(Span),
    New(Span),
}

/// One difference found inside an item, before it gets its location.
#[derive(Debug)]
struct Found {
    rule: ChangeRule,
    message: String,
    span: Option<SideSpan>,
}

/// The context of the item being compared.
#[derive(Debug, Clone)]
struct Scope {
    package: String,
    interface: Option<String>,
    world: Option<String>,
    /// The new version of the package, for `@since` hygiene.
    new_version: Option<Version>,
    /// An enclosing item is `@unstable`.
    unstable: bool,
    /// Prefix of every message ("interface airssys:core/storage@1.0.0: ").
    prefix: String,
}

/// Rules for one kind of member list (record fields, params, cases, ...).
struct MemberRules {
    noun: &'static str,
    plural: &'static str,
    added: ChangeRule,
    removed: ChangeRule,
    renamed: ChangeRule,
    reordered: ChangeRule,
    type_changed: Option<ChangeRule>,
}

/// One named member of a list: field, case, flag or parameter.
struct Member<'a> {
    name: &'a str,
    ty: Option<Type>,
    span: Span,
}

pub(crate) struct Engine<'a> {
    old: &'a Resolve,
    new: &'a Resolve,
    old_root: Option<&'a Path>,
    new_root: Option<&'a Path>,
    wording: Wording,
    /// OLD type key → NEW type key for types detected as renamed.
    renames: HashMap<TypeKey, TypeKey>,
    /// (package key, interface name) → how the package's own worlds use
    /// the interface, in OLD or NEW (see [`Audiences`]).
    audiences: HashMap<(String, String), Audiences>,
    pub(crate) changes: Vec<Change>,
    pub(crate) hygiene: Vec<Finding>,
}

fn package_key(resolve: &Resolve, id: PackageId) -> String {
    let name = &resolve.packages[id].name;
    format!("{}:{}", name.namespace, name.name)
}

/// Pairs the packages of OLD with those of NEW: by `namespace:name`,
/// versions aside, so a release's new version is compared with the old
/// one. A name that either side holds in more than one version is paired
/// by exact version instead (`namespace:name@version`), so a package set
/// holding `t:q@1.0.0` and `t:q@1.8.0` compares each with its twin.
pub(crate) fn paired_packages(
    old: &Resolve,
    new: &Resolve,
) -> Vec<Keyed<String, PackageId, PackageId>> {
    let mut count: HashMap<String, (usize, usize)> = HashMap::new();
    for (id, _) in old.packages.iter() {
        count.entry(package_key(old, id)).or_default().0 += 1;
    }
    for (id, _) in new.packages.iter() {
        count.entry(package_key(new, id)).or_default().1 += 1;
    }
    let keys = |resolve: &Resolve| -> Vec<(String, PackageId)> {
        resolve
            .packages
            .iter()
            .map(|(id, p)| {
                let key = package_key(resolve, id);
                let repeated = count.get(&key).is_some_and(|&(o, n)| o > 1 || n > 1);
                match (&p.name.version, repeated) {
                    (Some(v), true) => (format!("{key}@{v}"), id),
                    _ => (key, id),
                }
            })
            .collect()
    };
    diff_keyed(keys(old), keys(new))
}

/// Which audiences a package's own worlds give one of its interfaces: a
/// world that imports it has importers, one that exports it exporters.
#[derive(Debug, Clone, Copy, Default)]
struct Audiences {
    /// Some world of the package imports the interface.
    imported: bool,
    /// Some world of the package exports the interface.
    exported: bool,
}

/// How the worlds of `package` use each of its own interfaces (after
/// `include`s, as wit-parser elaborates worlds), by interface name.
fn package_audiences(resolve: &Resolve, package: PackageId) -> HashMap<String, Audiences> {
    let mut out: HashMap<String, Audiences> = HashMap::new();
    for world in resolve.packages[package].worlds.values() {
        let world = &resolve.worlds[*world];
        for (items, exported) in [(&world.imports, false), (&world.exports, true)] {
            for item in items.values() {
                let WorldItem::Interface { id, .. } = item else {
                    continue;
                };
                let iface = &resolve.interfaces[*id];
                let (Some(name), Some(owner)) = (&iface.name, iface.package) else {
                    continue;
                };
                if owner != package {
                    continue;
                }
                let entry = out.entry(name.clone()).or_default();
                if exported {
                    entry.exported = true;
                } else {
                    entry.imported = true;
                }
            }
        }
    }
    out
}

fn stability_is_unstable(s: &Stability) -> bool {
    matches!(s, Stability::Unstable { .. })
}

fn deprecated(s: &Stability) -> Option<&Version> {
    match s {
        Stability::Stable { deprecated, .. } | Stability::Unstable { deprecated, .. } => {
            deprecated.as_ref()
        }
        Stability::Unknown => None,
    }
}

fn since(s: &Stability) -> Option<&Version> {
    match s {
        Stability::Stable { since, .. } => Some(since),
        _ => None,
    }
}

fn params_of(f: &Function) -> Vec<Member<'_>> {
    f.params
        .iter()
        .map(|p| Member {
            name: &p.name,
            ty: Some(p.ty),
            span: p.span,
        })
        .collect()
}

/// A function's display noun and name: ("method", "bucket.get").
fn func_label(f: &Function) -> (&'static str, String) {
    let noun = match f.kind {
        FunctionKind::Freestanding | FunctionKind::AsyncFreestanding => "function",
        FunctionKind::Method(_) | FunctionKind::AsyncMethod(_) => "method",
        FunctionKind::Static(_) | FunctionKind::AsyncStatic(_) => "static function",
        FunctionKind::Constructor(_) => "constructor",
    };
    let name = f
        .name
        .rsplit(']')
        .next()
        .unwrap_or(f.name.as_str())
        .to_string();
    (noun, name)
}

fn func_added_removed(f: &Function) -> (ChangeRule, ChangeRule) {
    match f.kind {
        FunctionKind::Freestanding | FunctionKind::AsyncFreestanding => {
            (ChangeRule::FuncAdded, ChangeRule::FuncRemoved)
        }
        FunctionKind::Method(_) | FunctionKind::AsyncMethod(_) => {
            (ChangeRule::MethodAdded, ChangeRule::MethodRemoved)
        }
        FunctionKind::Static(_) | FunctionKind::AsyncStatic(_) => {
            (ChangeRule::StaticAdded, ChangeRule::StaticRemoved)
        }
        FunctionKind::Constructor(_) => {
            (ChangeRule::ConstructorAdded, ChangeRule::ConstructorRemoved)
        }
    }
}

fn func_shape(f: &Function) -> (bool, u8) {
    let k = match f.kind {
        FunctionKind::Freestanding | FunctionKind::AsyncFreestanding => 0,
        FunctionKind::Method(_) | FunctionKind::AsyncMethod(_) => 1,
        FunctionKind::Static(_) | FunctionKind::AsyncStatic(_) => 2,
        FunctionKind::Constructor(_) => 3,
    };
    (f.kind.is_async(), k)
}

fn func_shape_text(f: &Function) -> String {
    let (noun, _) = func_label(f);
    if f.kind.is_async() {
        format!("async {noun}")
    } else {
        noun.to_string()
    }
}

fn type_noun(resolve: &Resolve, id: TypeId) -> &'static str {
    match &resolve.types[id].kind {
        TypeDefKind::Resource => "resource",
        kind @ (TypeDefKind::Record(_)
        | TypeDefKind::Variant(_)
        | TypeDefKind::Enum(_)
        | TypeDefKind::Flags(_)) => kind.as_str(),
        _ => "type",
    }
}

/// `owner.name` of a type reference after aliases (`types.entry`).
fn qualified_text(resolve: &Resolve, ty: Type) -> String {
    match dealias(resolve, ty) {
        Type::Id(id) => match type_key(resolve, id) {
            Some((_, owner, name)) if !owner.is_empty() => format!("{owner}.{name}"),
            _ => type_text(resolve, Type::Id(id)),
        },
        other => type_text(resolve, other),
    }
}

impl<'a> Engine<'a> {
    pub(crate) fn new(
        old: &'a Resolve,
        new: &'a Resolve,
        old_root: Option<&'a Path>,
        new_root: Option<&'a Path>,
        wording: Wording,
    ) -> Self {
        Engine {
            old,
            new,
            old_root,
            new_root,
            wording,
            renames: HashMap::new(),
            audiences: HashMap::new(),
            changes: Vec::new(),
            hygiene: Vec::new(),
        }
    }

    // ----- locations and recording -------------------------------------

    fn file_line(&self, span: Option<SideSpan>) -> (Option<String>, Option<u32>) {
        let (resolve, root, span) = match span {
            Some(SideSpan::Old(s)) => (self.old, self.old_root, s),
            Some(SideSpan::New(s)) => (self.new, self.new_root, s),
            None => return (None, None),
        };
        let Some(loc) = resolve.source_map.resolve_span(span) else {
            return (None, None);
        };
        let rendered = resolve.source_map.render_location(span);
        let line = rendered
            .rsplit(':')
            .nth(1)
            .and_then(|l| l.parse::<u32>().ok());
        let path = Path::new(loc.path);
        let shown = root
            .and_then(|r| {
                let base = if r.is_file() { r.parent()? } else { r };
                path.strip_prefix(base).ok()
            })
            .unwrap_or(path);
        (Some(shown.display().to_string().replace('\\', "/")), line)
    }

    fn record(&mut self, scope: &Scope, item: Option<String>, found: Found, unstable: bool) {
        let (file, line) = self.file_line(found.span);
        let verdicts = found.rule.impacts();
        let (bump, because) = self.bump_for(scope, found.rule);
        self.changes.push(Change {
            rule: found.rule,
            location: ItemLocation {
                package: scope.package.clone(),
                interface: scope.interface.clone(),
                world: scope.world.clone(),
                item,
                file,
                line,
            },
            message: format!("{}{}{because}", scope.prefix, found.message),
            importers: verdicts.importers,
            exporters: verdicts.exporters,
            bindings: verdicts.bindings,
            bump,
            unstable: unstable
                && !matches!(
                    found.rule,
                    ChangeRule::ItemStabilized | ChangeRule::ItemDestabilized
                ),
        });
    }

    /// The bump a change requires: the rule's own, raised to a breaking
    /// bump when the change is inside an interface that the package's own
    /// worlds import or export and it breaks that audience (a function
    /// added to an exported interface breaks every exporter built against
    /// OLD). Interfaces no world of the package uses keep the rule's bump.
    /// The second value says why, when the bump was raised.
    fn bump_for(&self, scope: &Scope, rule: ChangeRule) -> (Bump, String) {
        let own = rule.bump();
        let (Some(interface), None) = (&scope.interface, &scope.world) else {
            return (own, String::new());
        };
        let key = (scope.package.clone(), interface.clone());
        let Some(used) = self.audiences.get(&key) else {
            return (own, String::new());
        };
        let verdicts = rule.impacts();
        let broken = if used.exported && verdicts.exporters.is_breaking() {
            Some("exports")
        } else if used.imported && verdicts.importers.is_breaking() {
            Some("imports")
        } else {
            None
        };
        match broken {
            Some(how) if own < Bump::Major => (
                Bump::Major,
                format!(
                    " (a world of this package {how} `{interface}`, and this breaks \
                     components that {}: a breaking bump)",
                    if how == "exports" {
                        "export it"
                    } else {
                        "import it"
                    }
                ),
            ),
            _ => (own, String::new()),
        }
    }

    fn finding(
        &mut self,
        scope: &Scope,
        item: Option<String>,
        rule: HygieneRule,
        message: String,
        span: SideSpan,
    ) {
        let (file, line) = self.file_line(Some(span));
        self.hygiene.push(Finding {
            rule,
            location: ItemLocation {
                package: scope.package.clone(),
                interface: scope.interface.clone(),
                world: scope.world.clone(),
                item,
                file,
                line,
            },
            message: format!("{}{}", scope.prefix, message),
        });
    }

    /// Records an added item and checks its `@since`.
    fn added(
        &mut self,
        scope: &Scope,
        item: String,
        rule: ChangeRule,
        what: &str,
        stability: &Stability,
        span: Span,
    ) {
        self.added_checked(scope, item, rule, what, stability, span, true);
    }

    /// Records an added item; checks its `@since` when `check_since`.
    #[allow(clippy::too_many_arguments)]
    fn added_checked(
        &mut self,
        scope: &Scope,
        item: String,
        rule: ChangeRule,
        what: &str,
        stability: &Stability,
        span: Span,
        check_since: bool,
    ) {
        let unstable = scope.unstable || stability_is_unstable(stability);
        let found = Found {
            rule,
            message: self.wording.added(what),
            span: Some(SideSpan::New(span)),
        };
        self.record(scope, Some(item.clone()), found, unstable);
        if unstable || self.wording == Wording::Link || !check_since {
            return;
        }
        match (since(stability), &scope.new_version) {
            (None, _) => self.finding(
                scope,
                Some(item),
                HygieneRule::SinceMissing,
                format!("{what} is new but has no `@since`"),
                SideSpan::New(span),
            ),
            (Some(s), Some(v)) if s != v => self.finding(
                scope,
                Some(item),
                HygieneRule::SinceMismatch,
                format!("{what} is new in {v} but says `@since(version = {s})`"),
                SideSpan::New(span),
            ),
            _ => {}
        }
    }

    /// Records a removed item and checks it was deprecated first.
    fn removed(
        &mut self,
        scope: &Scope,
        item: String,
        rule: ChangeRule,
        what: &str,
        stability: &Stability,
        span: Span,
    ) {
        let unstable = scope.unstable || stability_is_unstable(stability);
        let found = Found {
            rule,
            message: self.wording.removed(what),
            span: Some(SideSpan::Old(span)),
        };
        self.record(scope, Some(item.clone()), found, unstable);
        if !unstable && self.wording == Wording::Diff && deprecated(stability).is_none() {
            self.finding(
                scope,
                Some(item),
                HygieneRule::RemovedWithoutDeprecation,
                format!("{what} was removed without a prior `@deprecated`"),
                SideSpan::Old(span),
            );
        }
    }

    /// Docs, `@since`, `@deprecated` and `@unstable` changes of one item.
    #[allow(clippy::too_many_arguments)]
    fn annotations(
        &mut self,
        scope: &Scope,
        item: Option<String>,
        what: &str,
        (old_docs, new_docs): (&Docs, &Docs),
        (old_s, new_s): (&Stability, &Stability),
        span: Span,
    ) {
        if self.wording == Wording::Link {
            return;
        }
        let unstable =
            scope.unstable || stability_is_unstable(old_s) || stability_is_unstable(new_s);
        let span = Some(SideSpan::New(span));
        let push = |this: &mut Self, rule: ChangeRule, message: String| {
            this.record(
                scope,
                item.clone(),
                Found {
                    rule,
                    message,
                    span,
                },
                unstable,
            );
        };
        if old_docs.contents.as_deref().map(str::trim)
            != new_docs.contents.as_deref().map(str::trim)
        {
            push(
                self,
                ChangeRule::DocsChanged,
                format!("the documentation of {what} changed"),
            );
        }
        match (stability_is_unstable(old_s), stability_is_unstable(new_s)) {
            (true, false) => push(
                self,
                ChangeRule::ItemStabilized,
                format!("{what} is no longer `@unstable`"),
            ),
            (false, true) => push(
                self,
                ChangeRule::ItemDestabilized,
                format!("{what} became `@unstable`"),
            ),
            _ => {
                if since(old_s) != since(new_s) {
                    let show =
                        |v: Option<&Version>| v.map_or("none".to_string(), Version::to_string);
                    let msg = self.wording.pair(
                        &format!("the `@since` of {what}"),
                        &show(since(old_s)),
                        &show(since(new_s)),
                    );
                    push(self, ChangeRule::SinceChanged, msg);
                }
            }
        }
        if deprecated(old_s) != deprecated(new_s) {
            let show = |v: Option<&Version>| v.map_or("none".to_string(), Version::to_string);
            let msg = self.wording.pair(
                &format!("the `@deprecated` of {what}"),
                &show(deprecated(old_s)),
                &show(deprecated(new_s)),
            );
            push(self, ChangeRule::DeprecationChanged, msg);
        }
    }

    // ----- functions ---------------------------------------------------

    fn function(&mut self, scope: &Scope, old: &Function, new: &Function) {
        let (noun, name) = func_label(new);
        let what = format!("{noun} `{name}`");
        let unstable = scope.unstable
            || stability_is_unstable(&old.stability)
            || stability_is_unstable(&new.stability);
        let mut found = Vec::new();
        if func_shape(old) != func_shape(new) {
            found.push(Found {
                rule: ChangeRule::FuncKindChanged,
                message: self.wording.pair(
                    "the kind",
                    &func_shape_text(old),
                    &func_shape_text(new),
                ),
                span: None,
            });
        }
        let (op, np) = (params_of(old), params_of(new));
        found.extend(self.members(
            &MemberRules {
                noun: "parameter",
                plural: "parameters",
                added: ChangeRule::FuncParamAdded,
                removed: ChangeRule::FuncParamRemoved,
                renamed: ChangeRule::FuncParamRenamed,
                reordered: ChangeRule::FuncParamsReordered,
                type_changed: Some(ChangeRule::FuncParamTypeChanged),
            },
            &op,
            &np,
        ));
        let same_result = match (old.result, new.result) {
            (None, None) => true,
            (Some(a), Some(b)) => self.same_type(a, b),
            _ => false,
        };
        if !same_result {
            let show =
                |r: &Resolve, t: Option<Type>| t.map_or("nothing".to_string(), |t| type_text(r, t));
            found.push(Found {
                rule: ChangeRule::FuncResultChanged,
                message: self.wording.pair(
                    "the result",
                    &show(self.old, old.result),
                    &show(self.new, new.result),
                ),
                span: None,
            });
        }
        for mut f in found {
            f.message = format!("{what}: {}", f.message);
            f.span = f.span.or(Some(SideSpan::New(new.span)));
            self.record(scope, Some(name.clone()), f, unstable);
        }
        self.annotations(
            scope,
            Some(name),
            &what,
            (&old.docs, &new.docs),
            (&old.stability, &new.stability),
            new.span,
        );
    }

    // ----- interfaces --------------------------------------------------

    fn interface(&mut self, scope: &Scope, old: InterfaceId, new: InterfaceId) {
        let (oi, ni) = (&self.old.interfaces[old], &self.new.interfaces[new]);
        let mut scope = scope.clone();
        scope.unstable |=
            stability_is_unstable(&oi.stability) || stability_is_unstable(&ni.stability);
        self.detect_renames(old, new);

        // Types, in NEW order, then the removed ones.
        for entry in diff_keyed(entries(&oi.types), entries(&ni.types)) {
            match entry {
                Keyed::Both(_, oid, nid) => self.typedef(&scope, oid, nid),
                Keyed::Added(name, nid) => {
                    if let Some((oname, oid)) = oi.types.iter().find(|(_, id)| {
                        type_key(self.old, **id).and_then(|k| self.renames.get(&k).cloned())
                            == type_key(self.new, nid)
                    }) {
                        let nd = &self.new.types[nid];
                        let what = format!("the name of a {}", type_noun(self.old, *oid));
                        let f = Found {
                            rule: ChangeRule::TypeRenamed,
                            message: self.wording.pair(&what, oname, name),
                            span: Some(SideSpan::New(nd.span)),
                        };
                        let unstable = scope.unstable || stability_is_unstable(&nd.stability);
                        self.record(&scope, Some(name.clone()), f, unstable);
                        self.typedef(&scope, *oid, nid);
                    } else {
                        let nd = &self.new.types[nid];
                        let rule = if nd.kind == TypeDefKind::Resource {
                            ChangeRule::ResourceAdded
                        } else {
                            ChangeRule::TypeAdded
                        };
                        let what = format!("{} `{name}`", type_noun(self.new, nid));
                        self.added(&scope, name.clone(), rule, &what, &nd.stability, nd.span);
                    }
                }
                Keyed::Removed(name, oid) => {
                    let renamed =
                        type_key(self.old, oid).is_some_and(|k| self.renames.contains_key(&k));
                    if renamed {
                        continue;
                    }
                    let od = &self.old.types[oid];
                    let rule = if od.kind == TypeDefKind::Resource {
                        ChangeRule::ResourceRemoved
                    } else {
                        ChangeRule::TypeRemoved
                    };
                    let what = format!("{} `{name}`", type_noun(self.old, oid));
                    self.removed(&scope, name.clone(), rule, &what, &od.stability, od.span);
                }
            }
        }

        // Functions: methods of a renamed resource keep their place.
        let old_fns: Vec<(String, &Function)> = oi
            .functions
            .values()
            .map(|f| (self.function_key(self.old, f, true), f))
            .collect();
        let new_fns: Vec<(String, &Function)> = ni
            .functions
            .values()
            .map(|f| (self.function_key(self.new, f, false), f))
            .collect();
        for entry in diff_keyed(old_fns, new_fns) {
            match entry {
                Keyed::Both(_, of, nf) => self.function(&scope, of, nf),
                Keyed::Added(_, nf) => {
                    let (noun, name) = func_label(nf);
                    let what = format!("{noun} `{name}`");
                    let rule = func_added_removed(nf).0;
                    self.added(&scope, name, rule, &what, &nf.stability, nf.span);
                }
                Keyed::Removed(_, of) => {
                    let (noun, name) = func_label(of);
                    let what = format!("{noun} `{name}`");
                    let rule = func_added_removed(of).1;
                    self.removed(&scope, name, rule, &what, &of.stability, of.span);
                }
            }
        }
        let iname = ni.name.clone().unwrap_or_default();
        let what = format!("interface `{iname}`");
        self.annotations(
            &scope,
            None,
            &what,
            (&oi.docs, &ni.docs),
            (&oi.stability, &ni.stability),
            ni.span,
        );
    }

    /// The name a function is matched by; OLD methods of a renamed resource
    /// use the resource's new name.
    fn function_key(&self, resolve: &Resolve, f: &Function, is_old: bool) -> String {
        let Some(res) = f.kind.resource() else {
            return f.name.clone();
        };
        let Some(key) = type_key(resolve, res) else {
            return f.name.clone();
        };
        let key = if is_old {
            self.renames.get(&key).cloned().unwrap_or(key)
        } else {
            key
        };
        let item = func_label(f).1;
        let method = item.split_once('.').map_or("", |(_, m)| m);
        let tag = f.name.split(']').next().unwrap_or_default();
        format!("{tag}]{}.{method}", key.2)
    }

    // ----- worlds ------------------------------------------------------

    fn world_key(&self, resolve: &Resolve, key: &WorldKey) -> String {
        match key {
            WorldKey::Name(n) => n.clone(),
            WorldKey::Interface(id) => {
                let iface = &resolve.interfaces[*id];
                let pkg = iface
                    .package
                    .map(|p| package_key(resolve, p))
                    .unwrap_or_default();
                format!("{pkg}/{}", iface.name.clone().unwrap_or_default())
            }
        }
    }

    fn world_item_identity(&self, resolve: &Resolve, item: &WorldItem) -> Option<String> {
        match item {
            WorldItem::Interface { id, .. } => {
                let iface = &resolve.interfaces[*id];
                let name = iface.name.as_ref()?;
                let pkg = iface
                    .package
                    .map(|p| package_key(resolve, p))
                    .unwrap_or_default();
                Some(format!("{pkg}/{name}"))
            }
            _ => None,
        }
    }

    /// Whether `item` of NEW's world `world` was copied there by an
    /// `include` that carries `@since`: then the item's `@since` is the
    /// include's, and wit-parser, which drops includes once it has copied
    /// their items, no longer shows it. The world's source text says which
    /// worlds it includes and with what gate ([`includes_in_source`]);
    /// the item counts as copied from one of them when that world holds
    /// an item declared at the same place (wit-parser copies items with
    /// their spans) or, for a named interface (whose span wit-parser does
    /// not keep), the same interface. Without readable source (WIT given
    /// as text), nothing counts as copied and every item is checked.
    fn included_with_since(&self, world: WorldId, item: &WorldItem) -> bool {
        let includes = includes_in_source(self.new, world);
        let span = item.span();
        let same = |other: &WorldItem| match (item, other) {
            (WorldItem::Interface { id: a, .. }, WorldItem::Interface { id: b, .. })
                if !span.is_known() =>
            {
                a == b
            }
            _ => span.is_known() && other.span() == span,
        };
        self.new.worlds.iter().any(|(id, w)| {
            id != world
                && includes.iter().any(|i| i.world == w.name && i.since)
                && (w.imports.values()).chain(w.exports.values()).any(same)
        })
    }

    fn world(&mut self, scope: &Scope, old: WorldId, new: WorldId) {
        let new_id = new;
        let (ow, nw) = (&self.old.worlds[old], &self.new.worlds[new]);
        let mut scope = scope.clone();
        scope.unstable |=
            stability_is_unstable(&ow.stability) || stability_is_unstable(&nw.stability);
        for (dir, added_rule, removed_rule) in [
            (
                "import",
                ChangeRule::WorldImportAdded,
                ChangeRule::WorldImportRemoved,
            ),
            (
                "export",
                ChangeRule::WorldExportAdded,
                ChangeRule::WorldExportRemoved,
            ),
        ] {
            let (om, nm) = if dir == "import" {
                (&ow.imports, &nw.imports)
            } else {
                (&ow.exports, &nw.exports)
            };
            let olds: Vec<(String, &WorldItem)> = om
                .iter()
                .map(|(k, v)| (self.world_key(self.old, k), v))
                .collect();
            let news: Vec<(String, &WorldItem)> = nm
                .iter()
                .map(|(k, v)| (self.world_key(self.new, k), v))
                .collect();
            for entry in diff_keyed(olds, news) {
                let what = format!("{dir} `{}`", entry.key());
                match entry {
                    Keyed::Both(key, old, new) if self.same_world_item_kind(old, new) => {
                        self.world_item(&scope, &key, old, new)
                    }
                    Keyed::Both(key, old, new) => {
                        let (os, ns) = (old.stability(self.old), new.stability(self.new));
                        self.removed(&scope, key.clone(), removed_rule, &what, os, old.span());
                        self.added(&scope, key, added_rule, &what, ns, new.span());
                    }
                    Keyed::Added(key, new) => {
                        let ns = new.stability(self.new);
                        // An item copied in by an `include` is checked
                        // where it is declared; the include's own
                        // `@since` is gone after resolution.
                        let declared_here = !self.included_with_since(new_id, new);
                        let rule = added_rule;
                        let span = new.span();
                        self.added_checked(&scope, key, rule, &what, ns, span, declared_here);
                    }
                    Keyed::Removed(key, old) => {
                        let os = old.stability(self.old);
                        self.removed(&scope, key, removed_rule, &what, os, old.span());
                    }
                }
            }
        }
        let what = format!("world `{}`", nw.name);
        self.annotations(
            &scope,
            None,
            &what,
            (&ow.docs, &nw.docs),
            (&ow.stability, &nw.stability),
            nw.span,
        );
    }

    fn same_world_item_kind(&self, o: &WorldItem, n: &WorldItem) -> bool {
        match (o, n) {
            (WorldItem::Interface { .. }, WorldItem::Interface { .. }) => {
                self.world_item_identity(self.old, o) == self.world_item_identity(self.new, n)
            }
            (WorldItem::Function(_), WorldItem::Function(_))
            | (WorldItem::Type { .. }, WorldItem::Type { .. }) => true,
            _ => false,
        }
    }

    fn world_item(&mut self, scope: &Scope, key: &str, o: &WorldItem, n: &WorldItem) {
        match (o, n) {
            // Named interfaces are compared with their package; inline ones
            // (`import x: interface { .. }`) here.
            (WorldItem::Interface { id: oid, .. }, WorldItem::Interface { id: nid, .. })
                if self.new.interfaces[*nid].name.is_none() =>
            {
                let mut s = scope.clone();
                s.interface = Some(key.to_string());
                s.prefix = format!("{}{key}: ", scope.prefix);
                self.interface(&s, *oid, *nid);
            }
            (WorldItem::Function(of), WorldItem::Function(nf)) => self.function(scope, of, nf),
            (WorldItem::Type { id: oid, .. }, WorldItem::Type { id: nid, .. }) => {
                self.typedef(scope, *oid, *nid)
            }
            _ => {}
        }
        if let (
            WorldItem::Interface {
                stability: os,
                docs: od,
                ..
            },
            WorldItem::Interface {
                stability: ns,
                docs: nd,
                span,
                ..
            },
        ) = (o, n)
        {
            let what = format!("the world item `{key}`");
            self.annotations(
                scope,
                Some(key.to_string()),
                &what,
                (od, nd),
                (os, ns),
                *span,
            );
        }
    }

    // ----- packages ----------------------------------------------------

    /// Compares every package of OLD with its pair in NEW (see
    /// [`paired_packages`]).
    pub(crate) fn packages(&mut self) {
        let (old, new) = (self.old, self.new);
        let scope = |package: String, new_version: Option<Version>| Scope {
            package,
            interface: None,
            world: None,
            new_version,
            unstable: false,
            prefix: String::new(),
        };
        for entry in paired_packages(old, new) {
            match entry {
                Keyed::Both(key, oid, nid) => {
                    for side in [package_audiences(old, oid), package_audiences(new, nid)] {
                        for (interface, used) in side {
                            let e = self.audiences.entry((key.clone(), interface)).or_default();
                            e.imported |= used.imported;
                            e.exported |= used.exported;
                        }
                    }
                    let scope = scope(key, new.packages[nid].name.version.clone());
                    self.package(&scope, oid, nid);
                }
                Keyed::Added(key, nid) => {
                    let np = &new.packages[nid];
                    let f = Found {
                        rule: ChangeRule::PackageAdded,
                        message: format!("package `{}` was added", np.name),
                        span: None,
                    };
                    self.record(&scope(key, np.name.version.clone()), None, f, false);
                }
                Keyed::Removed(key, oid) => {
                    let f = Found {
                        rule: ChangeRule::PackageRemoved,
                        message: format!("package `{}` was removed", old.packages[oid].name),
                        span: None,
                    };
                    self.record(&scope(key, None), None, f, false);
                }
            }
        }
    }

    fn package(&mut self, scope: &Scope, old: PackageId, new: PackageId) {
        let (op, np) = (&self.old.packages[old], &self.new.packages[new]);
        let (ov, nv) = (op.name.version.as_ref(), np.name.version.as_ref());
        if super::version::Track::of(ov) != super::version::Track::of(nv) {
            let show = |v: Option<&Version>| {
                v.map_or("unversioned".to_string(), |v| {
                    format!("{} (track {})", v, super::version::Track::of(Some(v)))
                })
            };
            let f = Found {
                rule: ChangeRule::PackageTrackChanged,
                message: format!(
                    "package `{}`: {}",
                    scope.package,
                    self.wording.pair("the version", &show(ov), &show(nv))
                ),
                span: None,
            };
            self.record(scope, None, f, false);
        }
        let what = format!("package `{}`", scope.package);
        if op.docs.contents.as_deref().map(str::trim) != np.docs.contents.as_deref().map(str::trim)
            && self.wording == Wording::Diff
        {
            let f = Found {
                rule: ChangeRule::DocsChanged,
                message: format!("the documentation of {what} changed"),
                span: None,
            };
            self.record(scope, None, f, false);
        }
        for entry in diff_keyed(entries(&op.interfaces), entries(&np.interfaces)) {
            let name = *entry.key();
            let mut s = scope.clone();
            s.interface = Some(name.clone());
            let what = format!("interface `{name}`");
            match entry {
                Keyed::Both(_, oid, nid) => self.interface(&s, oid, nid),
                Keyed::Added(_, nid) => {
                    let ni = &self.new.interfaces[nid];
                    let rule = ChangeRule::InterfaceAdded;
                    self.added(&s, name.clone(), rule, &what, &ni.stability, ni.span);
                }
                Keyed::Removed(_, oid) => {
                    let oi = &self.old.interfaces[oid];
                    let rule = ChangeRule::InterfaceRemoved;
                    self.removed(&s, name.clone(), rule, &what, &oi.stability, oi.span);
                }
            }
        }
        for entry in diff_keyed(entries(&op.worlds), entries(&np.worlds)) {
            let name = *entry.key();
            let mut s = scope.clone();
            s.world = Some(name.clone());
            let what = format!("world `{name}`");
            match entry {
                Keyed::Both(_, oid, nid) => {
                    s.prefix = format!("world `{name}`: ");
                    self.world(&s, oid, nid);
                }
                Keyed::Added(_, nid) => {
                    s.prefix.clear();
                    let nw = &self.new.worlds[nid];
                    let rule = ChangeRule::WorldAdded;
                    self.added(&s, name.clone(), rule, &what, &nw.stability, nw.span);
                }
                Keyed::Removed(_, oid) => {
                    let ow = &self.old.worlds[oid];
                    let rule = ChangeRule::WorldRemoved;
                    self.removed(&s, name.clone(), rule, &what, &ow.stability, ow.span);
                }
            }
        }
    }

    /// Compares one interface of OLD with one of NEW (link-time use).
    pub(crate) fn one_interface(&mut self, old: InterfaceId, new: InterfaceId, prefix: String) {
        let ni = &self.new.interfaces[new];
        let package = ni
            .package
            .map(|p| package_key(self.new, p))
            .unwrap_or_default();
        let scope = Scope {
            package,
            interface: ni.name.clone(),
            world: None,
            new_version: ni
                .package
                .and_then(|p| self.new.packages[p].name.version.clone()),
            unstable: false,
            prefix,
        };
        self.interface(&scope, old, new);
    }
}

/// The interface owning a type, if any.
struct TypeOwnerInterface(Option<InterfaceId>);

fn owner_interface(resolve: &Resolve, id: TypeId) -> TypeOwnerInterface {
    match resolve.types[id].owner {
        wit_parser::TypeOwner::Interface(i) => TypeOwnerInterface(Some(i)),
        _ => TypeOwnerInterface(None),
    }
}
