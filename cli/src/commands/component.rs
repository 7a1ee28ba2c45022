//! A built component as `inspect` and `manifest` see it: its decoded
//! world, its manifest, the language it was written in, and what its
//! imports say about its manifest (least privilege).

use std::path::Path;

use airssys_contract::capability::{Action, Capability, Domain};
use airssys_contract::manifest::{Manifest, ManifestError, Placement, languages};
use airssys_contract::model::{CapabilityTemplate, Contract, ImportUsage, TemplatePart, Wording};
use wit_component::DecodedWasm;
use wit_parser::{Resolve, WorldId};

/// A component read from disk and decoded.
pub(crate) struct Decoded {
    /// The file's bytes.
    pub(crate) bytes: Vec<u8>,
    /// The component's world, decoded.
    pub(crate) resolve: Resolve,
    /// Its id in `resolve`.
    pub(crate) world: WorldId,
    /// The manifest it carries, or why it cannot be read.
    pub(crate) manifest: Result<Option<Manifest>, ManifestError>,
    /// Where its manifest sections sit.
    pub(crate) placements: Vec<Placement>,
    /// Languages its `producers` sections name.
    pub(crate) languages: Vec<String>,
}

/// Reads and decodes the component at `path`.
///
/// # Errors
///
/// One sentence naming `path`: unreadable, a core module, not wasm, a WIT
/// package, undecodable.
pub(crate) fn read(path: &Path) -> Result<Decoded, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    super::inspect::check_is_component(&shown.to_string(), &bytes)?;
    let (resolve, world) = match wit_component::decode(&bytes) {
        Ok(DecodedWasm::Component(resolve, world)) => (resolve, world),
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err(format!(
                "{shown} is a WIT package encoded as wasm, not a component"
            ));
        }
        Err(e) => return Err(format!("{shown} is not a valid component: {e:#}")),
    };
    let manifest = Manifest::from_wasm(&bytes);
    let placements = Manifest::placements(&bytes).unwrap_or_default();
    let languages = languages(&bytes).unwrap_or_default();
    Ok(Decoded {
        bytes,
        resolve,
        world,
        manifest,
        placements,
        languages,
    })
}

/// How the user of a component changes its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FixStyle {
    /// In `#[airssys::component(..)]`, then rebuild (a Rust component whose
    /// manifest the macro emitted, or a Rust one without a manifest).
    Macro,
    /// In a `Component.toml`, attached with `airssys manifest attach`
    /// (every other component).
    Toml,
}

impl Decoded {
    /// Where this component's manifest is edited: the macro for Rust
    /// components built with it, a `Component.toml` for the others.
    pub(crate) fn fix_style(&self) -> FixStyle {
        fix_style(&self.languages, &self.placements)
    }

    /// What the component's imports can use.
    pub(crate) fn usage(&self) -> ImportUsage {
        Contract::embedded().import_usage(&self.resolve, self.world)
    }

    /// "`Python`" etc. for messages; empty when unknown.
    pub(crate) fn language(&self) -> Option<&str> {
        self.languages
            .iter()
            .find(|l| *l != "Rust")
            .or(self.languages.first())
            .map(String::as_str)
    }
}

/// Where the manifest of the component `bytes` is edited (see
/// [`FixStyle`]); a binary that does not parse counts as not Rust.
pub(crate) fn fix_style_of(bytes: &[u8]) -> FixStyle {
    fix_style(
        &languages(bytes).unwrap_or_default(),
        &Manifest::placements(bytes).unwrap_or_default(),
    )
}

fn fix_style(languages: &[String], placements: &[Placement]) -> FixStyle {
    let rust = languages.iter().any(|l| l == "Rust");
    if rust && !placements.contains(&Placement::TopLevel) {
        FixStyle::Macro
    } else {
        FixStyle::Toml
    }
}

/// The least-privilege findings for a manifest and the imports of the
/// component it belongs to.
pub(crate) struct Privilege {
    /// Declared capabilities no imported function can use, each with the
    /// message the macro gives for the same mistake.
    pub(crate) unusable: Vec<(Capability, String)>,
    /// Imported functions no declared capability covers: every call is
    /// denied. `(interface, function, template)`.
    pub(crate) undeclared: Vec<(String, String, CapabilityTemplate)>,
    /// The contract world the component imports whole, if any.
    pub(crate) whole_world: Option<String>,
}

/// Compares `manifest` with what `decoded`'s imports can use. `origin` is
/// appended to each capability in messages (` (from Component.toml)`).
pub(crate) fn privilege(decoded: &Decoded, manifest: &Manifest, origin: &str) -> Privilege {
    let usage = decoded.usage();
    let subject = format!("component `{}`", manifest.name);
    let owner = format!("`{}`", manifest.name);
    let (remedy, handler_remedy) = match decoded.fix_style() {
        FixStyle::Macro => (
            "select a world that imports such a function with `world = \"..\"`",
            "select a world that exports the handler with `world = \"..\"`",
        ),
        FixStyle::Toml => (
            "build the component against a world that imports such a function (`airssys wit \
             export DIR --world airssys:ext/component` has them all)",
            "export `airssys:core/handler` from the component",
        ),
    };
    let wording = Wording {
        subject: &subject,
        owner: &owner,
        remedy,
        handler_remedy,
    };
    let unusable = manifest
        .capabilities()
        .filter_map(|c| {
            usage
                .unusable_message(c, origin, &wording)
                .map(|m| (c.clone(), m))
        })
        .collect();
    let declared: Vec<&Capability> = manifest.capabilities().collect();
    let undeclared = usage
        .undeclared(&declared)
        .map(|g| (g.interface.clone(), g.function.clone(), g.template.clone()))
        .collect();
    Privilege {
        unusable,
        undeclared,
        whole_world: usage.whole_worlds.first().cloned(),
    }
}

impl Privilege {
    /// The report lines, each starting with `over-privileged:`,
    /// `never allowed:` or `note:`; `style` decides the fix lines.
    pub(crate) fn lines(&self, style: FixStyle) -> Vec<String> {
        let mut out: Vec<String> = self
            .unusable
            .iter()
            .map(|(_, message)| format!("over-privileged: {message}"))
            .collect();
        if self.undeclared.is_empty() {
            return out;
        }
        if let Some(world) = &self.whole_world {
            // The imports are the world's, not the code's: which functions
            // it calls is unknown, so no function is named.
            let mut pairs: Vec<(Domain, Action, String)> = Vec::new();
            for (_, _, t) in &self.undeclared {
                if !pairs
                    .iter()
                    .any(|(d, a, _)| (*d, *a) == (t.domain, t.action))
                {
                    pairs.push((t.domain, t.action, shape(t)));
                }
            }
            let names: Vec<String> = pairs.iter().map(|(d, a, _)| format!("{d}:{a}")).collect();
            out.push(format!(
                "note: the component imports every function of `{world}` (componentize-py and \
                 componentize-js import the whole world, whatever the code calls), so its imports \
                 do not show which host functions it uses; calls needing {} will be denied, as \
                 the manifest declares none of them",
                names.join(", ")
            ));
            out.push(format!(
                "  fix: only if the code makes such calls, {}",
                add_line(
                    style,
                    &pairs.iter().map(|(_, _, s)| s.clone()).collect::<Vec<_>>()
                )
            ));
            return out;
        }
        for (interface, function, template) in &self.undeclared {
            out.push(format!(
                "never allowed: `{interface}` function `{function}` needs `{template}`, and the \
                 manifest declares no `{}:{}` capability: every call will be denied",
                template.domain, template.action
            ));
            out.push(format!("  fix: {}", add_line(style, &[shape(template)])));
        }
        out
    }
}

/// How to declare `patterns`, in the component's language.
pub(crate) fn add_line(style: FixStyle, patterns: &[String]) -> String {
    let list = patterns
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let fill = if patterns.iter().any(|p| p.contains('<')) {
        " (each `<..>` replaced by a real resource or pattern)"
    } else {
        ""
    };
    match style {
        FixStyle::Macro => format!(
            "add {list}{fill} to `requires` or `optional` in `#[airssys::component(..)]` and \
             rebuild"
        ),
        FixStyle::Toml => format!(
            "add {list}{fill} to `optional` under [capabilities] in Component.toml, then \
             `airssys manifest attach COMPONENT.wasm --manifest Component.toml --replace -o \
             COMPONENT.wasm`"
        ),
    }
}

/// A template as a pattern to fill in: `kv:delete:{self}/{key}` →
/// `kv:delete:<name>/<key>`.
fn shape(template: &CapabilityTemplate) -> String {
    let mut out = format!("{}:{}", template.domain, template.action);
    if !template.resource.is_empty() {
        out.push(':');
    }
    for part in &template.resource {
        match part {
            TemplatePart::Literal(text) => out.push_str(text),
            TemplatePart::Param(name) => out.push_str(&format!("<{name}>")),
            TemplatePart::Handle => out.push_str("<name>"),
        }
    }
    out
}
