//! `airssys wit doc [DIR] [-o OUT] [--check]`: a Markdown reference
//! generated from a WIT contract.
//!
//! OUT receives `index.md` (packages, worlds, interfaces) and one page per
//! interface, `<namespace>-<package>/<interface>.md`: its docs, a table of
//! functions (WIT signature and the capability each one requires), then
//! every type with its fields, cases or methods. The output depends only on
//! the WIT: no timestamps, no paths, packages and interfaces sorted by name,
//! items inside an interface in source order.
//!
//! Exit codes: 0 written (or, with `--check`, up to date); 1 with `--check`
//! when OUT is stale (each missing, stale or extra file is listed); 2 when
//! the WIT does not load or OUT cannot be read or written.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use airssys_contract::model::{ANNOTATION, Contract, Requirement, TemplatePart};
use airssys_contract::wit_text::{definition_text, type_text};
use wit_parser::{
    Function, FunctionKind, Handle, InterfaceId, PackageId, Resolve, Stability, Type, TypeDefKind,
    TypeId, WorldItem, WorldKey,
};

/// Arguments of `airssys wit doc`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The WIT directory to document (top-level `*.wit` files plus `deps/`);
    /// default: the contract embedded in airssys.
    dir: Option<PathBuf>,
    /// The output directory.
    #[arg(short, long, default_value = "docs/reference")]
    out: PathBuf,
    /// Write nothing; exit 1 when OUT differs from what would be generated.
    #[arg(long)]
    check: bool,
}

/// Runs the command and returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    let contract = match super::load_contract(args.dir.as_deref()) {
        Ok(contract) => contract,
        Err(code) => return code,
    };
    let contract = &*contract;
    let pages = generate(contract);
    let result = if args.check {
        check(&args, &pages)
    } else {
        write(&args.out, &pages)
    };
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        2
    })
}

/// Generates every page: relative path (`/`-separated) → Markdown.
pub(crate) fn generate(contract: &Contract) -> BTreeMap<String, String> {
    let doc = Doc::new(contract);
    let mut pages = BTreeMap::new();
    pages.insert("index.md".to_owned(), doc.index());
    for &pkg in &doc.packages {
        for &id in doc.resolve.packages[pkg].interfaces.values() {
            pages.insert(doc.page_path(id), doc.interface_page(id));
        }
    }
    pages
}

/// Compares OUT with `pages`; prints each difference.
fn check(args: &Args, pages: &BTreeMap<String, String>) -> Result<u8, String> {
    let out = &args.out;
    let existing = markdown_files(out)?;
    let mut findings = Vec::new();
    for (path, text) in pages {
        if !existing.contains(path) {
            findings.push(format!("missing: {}", out.join(path).display()));
        } else if std::fs::read_to_string(out.join(path)).ok().as_deref() != Some(text.as_str()) {
            findings.push(format!("stale: {}", out.join(path).display()));
        }
    }
    for path in existing.iter().filter(|p| !pages.contains_key(*p)) {
        findings.push(format!("extra: {}", out.join(path).display()));
    }
    if findings.is_empty() {
        println!(
            "ok: {} is up to date ({} files)",
            out.display(),
            pages.len()
        );
        return Ok(0);
    }
    for finding in &findings {
        println!("{finding}");
    }
    let dir = args
        .dir
        .as_ref()
        .map(|d| format!("{} ", d.display()))
        .unwrap_or_default();
    eprintln!(
        "error: the WIT reference in {} is out of date ({} file{}); regenerate it with `airssys wit doc {dir}-o {}`",
        out.display(),
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        out.display()
    );
    Ok(1)
}

/// Writes `pages` into `out`, leaving unchanged files untouched and
/// removing Markdown files that are no longer generated.
fn write(out: &Path, pages: &BTreeMap<String, String>) -> Result<u8, String> {
    let existing = markdown_files(out)?;
    let mut changed = 0;
    for (path, text) in pages {
        let file = out.join(path);
        if std::fs::read_to_string(&file).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        changed += 1;
    }
    let mut removed = 0;
    for path in existing.iter().filter(|p| !pages.contains_key(*p)) {
        let file = out.join(path);
        std::fs::remove_file(&file)
            .map_err(|e| format!("cannot remove {}: {e}", file.display()))?;
        println!("removed: {}", file.display());
        removed += 1;
    }
    println!(
        "wrote {} files to {} ({changed} changed, {removed} removed)",
        pages.len(),
        out.display()
    );
    Ok(0)
}

/// The `*.md` files below `dir`, relative and `/`-separated; empty when
/// `dir` does not exist.
fn markdown_files(dir: &Path) -> Result<BTreeSet<String>, String> {
    let mut found = BTreeSet::new();
    if !dir.exists() {
        return Ok(found);
    }
    if !dir.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        let entries =
            std::fs::read_dir(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let child = entry.path();
            if child.is_dir() {
                stack.push((child, format!("{rel}/")));
            } else if name.ends_with(".md") {
                found.insert(rel);
            }
        }
    }
    Ok(found)
}

/// The generator's view of one contract.
struct Doc<'a> {
    resolve: &'a Resolve,
    /// Packages sorted by name.
    packages: Vec<PackageId>,
    /// Host interfaces (imported by components).
    host: HashSet<InterfaceId>,
    /// Output directory of each package.
    package_dirs: HashMap<PackageId, String>,
    /// The requirement of each host function, by interface and WIT name.
    requirements: HashMap<(InterfaceId, String), &'a Requirement>,
}

impl<'a> Doc<'a> {
    fn new(contract: &'a Contract) -> Doc<'a> {
        let resolve = contract.resolve();
        let mut packages: Vec<PackageId> = resolve.packages.iter().map(|(id, _)| id).collect();
        packages.sort_by_key(|id| resolve.packages[*id].name.to_string());
        let mut package_dirs = HashMap::new();
        for &id in &packages {
            let name = &resolve.packages[id].name;
            let same_name = packages
                .iter()
                .filter(|&&o| {
                    let other = &resolve.packages[o].name;
                    other.namespace == name.namespace && other.name == name.name
                })
                .count();
            let mut dir = format!("{}-{}", name.namespace, name.name);
            if let (true, Some(version)) = (same_name > 1, &name.version) {
                write!(dir, "-{version}").ok();
            }
            package_dirs.insert(id, dir);
        }
        Doc {
            resolve,
            packages,
            host: contract.interfaces().iter().map(|i| i.id).collect(),
            package_dirs,
            requirements: contract
                .interfaces()
                .iter()
                .flat_map(|i| {
                    i.functions
                        .iter()
                        .map(|f| ((i.id, f.name.clone()), &f.requirement))
                })
                .collect(),
        }
    }

    /// `airssys-core/storage.md`.
    fn page_path(&self, id: InterfaceId) -> String {
        let iface = &self.resolve.interfaces[id];
        let dir = iface
            .package
            .and_then(|p| self.package_dirs.get(&p))
            .map_or("world", String::as_str);
        format!("{dir}/{}.md", iface.name.as_deref().unwrap_or("unnamed"))
    }

    /// `airssys:core/storage@1.0.0`.
    fn interface_name(&self, id: InterfaceId) -> String {
        self.resolve
            .id_of(id)
            .unwrap_or_else(|| "(unnamed interface)".to_owned())
    }

    fn index(&self) -> String {
        let mut md = String::new();
        md.push_str("# WIT reference\n\n");
        md.push_str(
            "Generated from the WIT contract by `airssys wit doc`; do not edit by hand. \
             Regenerate with `cargo run -p airssys-cli -- wit doc -o docs/reference`.\n\n",
        );
        md.push_str(
            "Each host function states the capability it requires. A template such as \
             `kv:read:{self}/{key}` is completed at call time: `{key}` is the value of the \
             parameter `key`, `{self}` the name the handle was opened with. `none` needs no \
             capability; `handle` is authorized by the capability checked when the handle was \
             opened.\n\n",
        );
        md.push_str("## Packages\n");
        for &pkg in &self.packages {
            let package = &self.resolve.packages[pkg];
            let _ = write!(md, "\n### `{}`\n\n", package.name);
            push_docs(&mut md, package.docs.contents.as_deref());
            let mut names: Vec<(&String, &InterfaceId)> = package.interfaces.iter().collect();
            names.sort();
            md.push_str("| Interface | Side | Functions | Summary |\n|---|---|---|---|\n");
            for (name, &id) in names {
                let iface = &self.resolve.interfaces[id];
                let side = if self.host.contains(&id) {
                    "host"
                } else {
                    "component"
                };
                let _ = writeln!(
                    md,
                    "| [`{name}`]({}) | {side} | {} | {} |",
                    self.page_path(id),
                    iface.functions.len(),
                    cell(&summary(iface.docs.contents.as_deref()))
                );
            }
        }
        md.push_str("\n## Worlds\n");
        let mut worlds: Vec<_> = self
            .resolve
            .worlds
            .iter()
            .map(|(id, world)| {
                let name = match world.package {
                    Some(p) => self.resolve.id_of_name(p, &world.name),
                    None => world.name.clone(),
                };
                (name, id)
            })
            .collect();
        worlds.sort();
        for (name, id) in worlds {
            let world = &self.resolve.worlds[id];
            let _ = write!(md, "\n### `{name}`\n\n");
            push_stability(&mut md, &world.stability);
            push_docs(&mut md, world.docs.contents.as_deref());
            for (label, items) in [("Imports", &world.imports), ("Exports", &world.exports)] {
                if items.is_empty() {
                    let _ = write!(md, "{label}: none.\n\n");
                    continue;
                }
                let _ = write!(md, "{label}:\n\n");
                for (key, item) in items {
                    let _ = writeln!(md, "- {}", self.world_item(key, item));
                }
                md.push('\n');
            }
        }
        finish(md)
    }

    fn world_item(&self, key: &WorldKey, item: &WorldItem) -> String {
        match item {
            WorldItem::Interface { id, .. } if self.resolve.interfaces[*id].name.is_none() => {
                let count = self.resolve.interfaces[*id].functions.len();
                format!(
                    "`{}`: an inline interface ({count} function{})",
                    self.resolve.name_world_key(key),
                    if count == 1 { "" } else { "s" }
                )
            }
            WorldItem::Interface { id, .. } => {
                let name = self.interface_name(*id);
                let link = format!("[`{name}`]({})", self.page_path(*id));
                match key {
                    WorldKey::Name(label) => format!("`{label}`: {link}"),
                    WorldKey::Interface(_) => link,
                }
            }
            WorldItem::Function(f) => format!("`{}: {}`", f.name, self.signature(f)),
            WorldItem::Type { id, .. } => format!(
                "type `{}`",
                self.resolve.types[*id].name.as_deref().unwrap_or("_")
            ),
        }
    }

    fn interface_page(&self, id: InterfaceId) -> String {
        let iface = &self.resolve.interfaces[id];
        let host = self.host.contains(&id);
        let mut md = format!("# `{}`\n\n", self.interface_name(id));
        let side = if host {
            "Host interface: components import it, the host provides it."
        } else {
            "Component interface: components export it, the host calls it."
        };
        let _ = write!(md, "[Index](../index.md) · {side}");
        if let Some(since) = stability_text(&iface.stability) {
            let _ = write!(md, " {}.", capitalize(&since));
        }
        md.push_str("\n\n");
        push_docs(&mut md, iface.docs.contents.as_deref());

        let functions = self.functions_in_order(id);
        if !functions.is_empty() {
            md.push_str("## Functions\n\n");
            md.push_str(&self.function_table(id, &functions, host, true));
            for f in &functions {
                self.function_section(&mut md, id, f, host);
            }
        }
        if !iface.types.is_empty() {
            md.push_str("## Types\n\n");
            for &ty in iface.types.values() {
                self.type_section(&mut md, id, ty, host);
            }
        }
        finish(md)
    }

    /// Freestanding functions first, then resource functions, each group in
    /// source order (as the contract model lists them).
    fn functions_in_order(&self, id: InterfaceId) -> Vec<&'a Function> {
        let mut functions: Vec<&Function> =
            self.resolve.interfaces[id].functions.values().collect();
        functions.sort_by_key(|f| (f.kind.resource().is_some(), f.span.start()));
        functions
    }

    fn function_table(
        &self,
        iface: InterfaceId,
        functions: &[&Function],
        host: bool,
        qualified: bool,
    ) -> String {
        let column = if qualified { "Function" } else { "Method" };
        let mut md = format!("| {column} | Signature | Capability |\n|---|---|---|\n");
        for f in functions {
            let name = self.function_name(f);
            let label = if qualified {
                name.clone()
            } else {
                f.item_name().to_owned()
            };
            let _ = writeln!(
                md,
                "| [`{label}`](#{}) | `{}` | {} |",
                slug(&format!("`{name}`")),
                self.signature(f),
                self.capability(iface, f, host)
            );
        }
        md.push('\n');
        md
    }

    fn function_section(&self, md: &mut String, iface: InterfaceId, f: &Function, host: bool) {
        let name = self.function_name(f);
        let _ = write!(md, "### `{name}`\n\n");
        let decl = match f.kind {
            FunctionKind::Constructor(_) => format!("{};", self.signature(f)),
            _ => format!("{}: {};", f.item_name(), self.signature(f)),
        };
        let _ = write!(md, "```wit\n{decl}\n```\n\n");
        if let Some(resource) = self.resource_name(f) {
            let what = match f.kind {
                FunctionKind::Constructor(_) => "Constructor",
                FunctionKind::Static(_) | FunctionKind::AsyncStatic(_) => "Static function",
                _ => "Method",
            };
            let _ = write!(
                md,
                "{what} of [`{resource}`](#{}). ",
                slug(&format!("`resource {resource}`"))
            );
        }
        let _ = write!(md, "**Capability:** {}", self.capability(iface, f, host));
        if let Some(since) = stability_text(&f.stability) {
            let _ = write!(md, " · {since}");
        }
        md.push_str("\n\n");
        if let Some(explained) = self.explain_template(iface, f) {
            let _ = write!(md, "{explained}\n\n");
        }
        push_docs(
            md,
            without_annotation(f.docs.contents.as_deref()).as_deref(),
        );
    }

    /// `bucket.get`, `bucket.constructor`, `open`.
    fn function_name(&self, f: &Function) -> String {
        match (self.resource_name(f), &f.kind) {
            (Some(r), FunctionKind::Constructor(_)) => format!("{r}.constructor"),
            (Some(r), _) => format!("{r}.{}", f.item_name()),
            (None, _) => f.name.clone(),
        }
    }

    fn resource_name(&self, f: &Function) -> Option<&'a str> {
        f.kind
            .resource()
            .and_then(|r| self.resolve.types[r].name.as_deref())
    }

    /// The WIT signature without the name: `func(key: string) -> bool`,
    /// `constructor(name: string)`, `static func()`, `async func()`.
    fn signature(&self, f: &Function) -> String {
        let skip = usize::from(matches!(
            f.kind,
            FunctionKind::Method(_) | FunctionKind::AsyncMethod(_)
        ));
        let params: Vec<String> = f
            .params
            .iter()
            .skip(skip)
            .map(|p| format!("{}: {}", p.name, type_text(self.resolve, p.ty)))
            .collect();
        let keyword = match f.kind {
            FunctionKind::Constructor(_) => "constructor",
            FunctionKind::Static(_) => "static func",
            FunctionKind::AsyncStatic(_) => "static async func",
            FunctionKind::AsyncFreestanding | FunctionKind::AsyncMethod(_) => "async func",
            FunctionKind::Freestanding | FunctionKind::Method(_) => "func",
        };
        let mut text = format!("{keyword}({})", params.join(", "));
        let result = match (&f.kind, &f.result) {
            // A plain constructor's result is the new handle, implicit in WIT.
            (FunctionKind::Constructor(r), Some(Type::Id(t))) if matches!(self.resolve.types[*t].kind, TypeDefKind::Handle(Handle::Own(o)) if o == *r) => {
                None
            }
            (_, result) => result.as_ref(),
        };
        if let Some(result) = result {
            let _ = write!(text, " -> {}", type_text(self.resolve, *result));
        }
        text
    }

    /// The capability cell: the template, `none`, `handle (...)`.
    fn capability(&self, iface: InterfaceId, f: &Function, host: bool) -> String {
        if !host {
            return "— (component export)".to_owned();
        }
        match self.requirement(iface, f) {
            Some(Requirement::None) => "none".to_owned(),
            Some(Requirement::Handle) => {
                "handle (authorized when the handle was opened)".to_owned()
            }
            Some(Requirement::Capability(t)) => format!("`{t}`"),
            Some(Requirement::Invalid) | None => {
                format!("**missing or invalid `{ANNOTATION}`** (see `airssys wit check`)")
            }
        }
    }

    fn requirement(&self, iface: InterfaceId, f: &Function) -> Option<&'a Requirement> {
        self.requirements.get(&(iface, f.name.clone())).copied()
    }

    /// "`{self}` is the name the bucket was opened with; `{key}` is the
    /// argument `key`."
    fn explain_template(&self, iface: InterfaceId, f: &Function) -> Option<String> {
        let Some(Requirement::Capability(t)) = self.requirement(iface, f) else {
            return None;
        };
        let parts: Vec<String> = t
            .resource
            .iter()
            .filter_map(|part| match part {
                TemplatePart::Handle => Some(format!(
                    "`{{self}}` is the name the {} was opened with",
                    self.resource_name(f).unwrap_or("handle")
                )),
                TemplatePart::Param(name) => Some(format!("`{{{name}}}` is the argument `{name}`")),
                TemplatePart::Literal(_) => None,
            })
            .collect();
        (!parts.is_empty()).then(|| format!("In the template, {}.", parts.join("; ")))
    }

    fn type_section(&self, md: &mut String, iface: InterfaceId, id: TypeId, host: bool) {
        let def = &self.resolve.types[id];
        let name = def.name.as_deref().unwrap_or("_");
        // `use other.{name}`: a reference to a type owned elsewhere.
        if let TypeDefKind::Type(Type::Id(target)) = def.kind {
            let target_def = &self.resolve.types[target];
            if let wit_parser::TypeOwner::Interface(owner) = target_def.owner
                && owner != iface
            {
                let _ = write!(md, "### `{name}`\n\n");
                let target_name = target_def.name.as_deref().unwrap_or("_");
                let _ = write!(
                    md,
                    "Used from [`{}`](../{}#{}): `use {}.{{{target_name}}}`.\n\n",
                    self.interface_name(owner),
                    self.page_path(owner),
                    slug(&format!("`{} {target_name}`", self.type_keyword(target))),
                    self.interface_name(owner),
                );
                return;
            }
        }
        let keyword = self.type_keyword(id);
        let _ = write!(md, "### `{keyword} {name}`\n\n");
        if let Some(since) = stability_text(&def.stability) {
            let _ = write!(md, "{}.\n\n", capitalize(&since));
        }
        push_docs(md, def.docs.contents.as_deref());
        match &def.kind {
            TypeDefKind::Record(record) => {
                md.push_str("| Field | Type | Description |\n|---|---|---|\n");
                for field in &record.fields {
                    let _ = writeln!(
                        md,
                        "| `{}` | `{}` | {} |",
                        field.name,
                        type_text(self.resolve, field.ty),
                        cell(field.docs.contents.as_deref().unwrap_or(""))
                    );
                }
                md.push('\n');
            }
            TypeDefKind::Variant(variant) => {
                md.push_str("| Case | Payload | Description |\n|---|---|---|\n");
                for case in &variant.cases {
                    let payload = case.ty.as_ref().map_or_else(
                        || "—".to_owned(),
                        |t| format!("`{}`", type_text(self.resolve, *t)),
                    );
                    let _ = writeln!(
                        md,
                        "| `{}` | {payload} | {} |",
                        case.name,
                        cell(case.docs.contents.as_deref().unwrap_or(""))
                    );
                }
                md.push('\n');
            }
            TypeDefKind::Enum(e) => {
                md.push_str("| Case | Description |\n|---|---|\n");
                for case in &e.cases {
                    let _ = writeln!(
                        md,
                        "| `{}` | {} |",
                        case.name,
                        cell(case.docs.contents.as_deref().unwrap_or(""))
                    );
                }
                md.push('\n');
            }
            TypeDefKind::Flags(flags) => {
                md.push_str("| Flag | Description |\n|---|---|\n");
                for flag in &flags.flags {
                    let _ = writeln!(
                        md,
                        "| `{}` | {} |",
                        flag.name,
                        cell(flag.docs.contents.as_deref().unwrap_or(""))
                    );
                }
                md.push('\n');
            }
            TypeDefKind::Resource => {
                let methods: Vec<&Function> = self
                    .functions_in_order(iface)
                    .into_iter()
                    .filter(|f| f.kind.resource() == Some(id))
                    .collect();
                if methods.is_empty() {
                    md.push_str("No methods.\n\n");
                } else {
                    md.push_str(&self.function_table(iface, &methods, host, false));
                }
            }
            _ => {
                let _ = write!(
                    md,
                    "```wit\ntype {name} = {};\n```\n\n",
                    definition_text(self.resolve, Type::Id(id))
                );
            }
        }
    }

    fn type_keyword(&self, id: TypeId) -> &'static str {
        match self.resolve.types[id].kind {
            TypeDefKind::Record(_) => "record",
            TypeDefKind::Variant(_) => "variant",
            TypeDefKind::Enum(_) => "enum",
            TypeDefKind::Flags(_) => "flags",
            TypeDefKind::Resource => "resource",
            _ => "type",
        }
    }
}

/// `since 1.0.0`, `unstable (feature x)`, with `, deprecated in v`.
fn stability_text(stability: &Stability) -> Option<String> {
    let (mut text, deprecated) = match stability {
        Stability::Unknown => return None,
        Stability::Stable { since, deprecated } => (format!("since {since}"), deprecated),
        Stability::Unstable {
            feature,
            deprecated,
        } => (format!("unstable (feature `{feature}`)"), deprecated),
    };
    if let Some(version) = deprecated {
        let _ = write!(text, ", deprecated in {version}");
    }
    Some(text)
}

fn push_stability(md: &mut String, stability: &Stability) {
    if let Some(text) = stability_text(stability) {
        let _ = write!(md, "{}.\n\n", capitalize(&text));
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Appends a doc comment as a Markdown block.
fn push_docs(md: &mut String, docs: Option<&str>) {
    let Some(docs) = docs.map(str::trim).filter(|d| !d.is_empty()) else {
        return;
    };
    md.push_str(docs);
    md.push_str("\n\n");
}

/// A function's docs without its `@capability` line (shown separately).
fn without_annotation(docs: Option<&str>) -> Option<String> {
    let docs = docs?;
    let lines: Vec<&str> = docs
        .lines()
        .filter(|line| {
            let rest = line.trim().strip_prefix(ANNOTATION);
            !rest.is_some_and(|r| r.is_empty() || r.starts_with(char::is_whitespace))
        })
        .collect();
    Some(lines.join("\n"))
}

/// The first paragraph of a doc comment, on one line.
fn summary(docs: Option<&str>) -> String {
    docs.unwrap_or("")
        .trim()
        .split("\n\n")
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Text fit for one table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The anchor GitHub gives a heading: lower-case, spaces to `-`, other
/// punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Ends a page with exactly one newline.
fn finish(mut md: String) -> String {
    let len = md.trim_end().len();
    md.truncate(len);
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_github() {
        assert_eq!(slug("`bucket.get`"), "bucketget");
        assert_eq!(slug("`record key-page`"), "record-key-page");
        assert_eq!(slug("`list-keys`"), "list-keys");
    }

    #[test]
    fn cells_are_one_line_and_escaped() {
        assert_eq!(cell("a\n  b | c\n"), "a b \\| c");
    }

    #[test]
    fn annotation_lines_are_dropped_from_docs() {
        let docs = "Reads.\n\n@capability kv:read:{key}\n@capabilityx stays";
        assert_eq!(
            without_annotation(Some(docs)).as_deref(),
            Some("Reads.\n\n@capabilityx stays")
        );
    }
}
