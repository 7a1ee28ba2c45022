//! The rule table: every kind of change the engine reports, with its stable
//! id and its verdict for importers, exporters and bindings.
//!
//! The table is the single source of the verdicts; `docs/versioning.md`
//! prints the same table (a test keeps the two in step).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Whether a change breaks one audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Impact {
    /// Code built against OLD keeps working with NEW.
    Compatible,
    /// Code built against OLD fails to link, or to compile, with NEW.
    Breaking,
}

impl Impact {
    /// `true` for [`Impact::Breaking`].
    pub fn is_breaking(self) -> bool {
        self == Impact::Breaking
    }

    /// The kebab-case name used in JSON and in the corpus files.
    pub fn as_str(self) -> &'static str {
        match self {
            Impact::Compatible => "compatible",
            Impact::Breaking => "breaking",
        }
    }
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A semver bump, ordered from none to major.
///
/// On a `0.N` track, "major" means a new `0.N+1` track and "minor" is
/// carried by the patch number (`0.2.0` → `0.2.1`); see
/// [`declared_bump`](super::declared_bump).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Bump {
    /// No version change needed.
    #[default]
    None,
    /// A patch release (docs, `@since` fixes).
    Patch,
    /// A minor release on the same track (additions).
    Minor,
    /// A new semver track (breaking changes).
    Major,
}

impl Bump {
    /// The kebab-case name used in JSON and in the corpus files.
    pub fn as_str(self) -> &'static str {
        match self {
            Bump::None => "none",
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        }
    }
}

impl fmt::Display for Bump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Bump {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Bump::None, Bump::Patch, Bump::Minor, Bump::Major]
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| format!("unknown bump `{s}`; expected one of none, patch, minor, major"))
    }
}

/// The verdicts of one rule for the three audiences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Impacts {
    /// A component built against OLD that imports the item (calls it),
    /// served by a host on NEW.
    pub importers: Impact,
    /// A component built against OLD that exports the item (implements
    /// it), used by a host expecting NEW.
    pub exporters: Impact,
    /// Rust code written against bindings generated from OLD (callers and
    /// implementers), recompiled with bindings generated from NEW.
    pub bindings: Impact,
}

macro_rules! rules {
    ($( $(#[doc = $doc:literal])* $variant:ident = $id:literal, $imp:ident, $exp:ident, $bind:ident, $bump:ident; )*) => {
        /// The stable id of every change the engine reports.
        ///
        /// Ids never change meaning; new rules get new ids.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum ChangeRule {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl ChangeRule {
            /// Every rule, in table order.
            pub const ALL: &'static [ChangeRule] = &[$(ChangeRule::$variant),*];

            /// The stable kebab-case id (`func-param-type-changed`).
            pub fn id(self) -> &'static str {
                match self { $(ChangeRule::$variant => $id,)* }
            }

            /// One line saying what the rule detects.
            pub fn summary(self) -> &'static str {
                match self { $(ChangeRule::$variant => concat!($($doc),*).trim_ascii(),)* }
            }

            /// The verdict for importers, exporters and bindings.
            pub fn impacts(self) -> Impacts {
                match self {
                    $(ChangeRule::$variant => Impacts {
                        importers: Impact::$imp,
                        exporters: Impact::$exp,
                        bindings: Impact::$bind,
                    },)*
                }
            }

            /// The smallest version bump this change requires.
            pub fn bump(self) -> Bump {
                match self { $(ChangeRule::$variant => Bump::$bump,)* }
            }
        }
    };
}

rules! {
    /// A package appears only in NEW.
    PackageAdded = "package-added", Compatible, Compatible, Compatible, None;
    /// A package of OLD is missing from NEW.
    PackageRemoved = "package-removed", Breaking, Compatible, Breaking, Major;
    /// The package moved to another semver track (`@1` → `@2`, `@0.2` → `@0.3`, any 0.0.x or pre-release change), even with identical content.
    PackageTrackChanged = "package-track-changed", Breaking, Breaking, Breaking, Major;
    /// An interface was added.
    InterfaceAdded = "interface-added", Compatible, Compatible, Compatible, Minor;
    /// An interface was removed.
    InterfaceRemoved = "interface-removed", Breaking, Compatible, Breaking, Major;
    /// A world was added.
    WorldAdded = "world-added", Compatible, Compatible, Compatible, Minor;
    /// A world was removed.
    WorldRemoved = "world-removed", Breaking, Compatible, Breaking, Major;
    /// A world imports one more interface, function or type.
    WorldImportAdded = "world-import-added", Compatible, Breaking, Breaking, Minor;
    /// A world no longer imports an interface, function or type.
    WorldImportRemoved = "world-import-removed", Breaking, Compatible, Breaking, Major;
    /// A world exports one more interface, function or type.
    WorldExportAdded = "world-export-added", Compatible, Breaking, Breaking, Minor;
    /// A world no longer exports an interface, function or type.
    WorldExportRemoved = "world-export-removed", Breaking, Compatible, Breaking, Major;
    /// A freestanding function was added.
    FuncAdded = "func-added", Compatible, Breaking, Breaking, Minor;
    /// A freestanding function was removed.
    FuncRemoved = "func-removed", Breaking, Compatible, Breaking, Major;
    /// A resource method was added.
    MethodAdded = "method-added", Compatible, Breaking, Breaking, Minor;
    /// A resource method was removed.
    MethodRemoved = "method-removed", Breaking, Compatible, Breaking, Major;
    /// A resource constructor was added.
    ConstructorAdded = "constructor-added", Compatible, Breaking, Breaking, Minor;
    /// A resource constructor was removed.
    ConstructorRemoved = "constructor-removed", Breaking, Compatible, Breaking, Major;
    /// A static resource function was added.
    StaticAdded = "static-added", Compatible, Breaking, Breaking, Minor;
    /// A static resource function was removed.
    StaticRemoved = "static-removed", Breaking, Compatible, Breaking, Major;
    /// A function changed kind (sync and async, or freestanding, method and static).
    FuncKindChanged = "func-kind-changed", Breaking, Breaking, Breaking, Major;
    /// A function gained a parameter (an `option` parameter too).
    FuncParamAdded = "func-param-added", Breaking, Breaking, Breaking, Major;
    /// A function lost a parameter.
    FuncParamRemoved = "func-param-removed", Breaking, Breaking, Breaking, Major;
    /// A parameter was renamed (`#[airssys::host_impl]` checks parameter names, so host impls must follow).
    FuncParamRenamed = "func-param-renamed", Breaking, Breaking, Breaking, Major;
    /// The parameters are the same but in another order.
    FuncParamsReordered = "func-params-reordered", Breaking, Breaking, Breaking, Major;
    /// A parameter has another type.
    FuncParamTypeChanged = "func-param-type-changed", Breaking, Breaking, Breaking, Major;
    /// The result type changed (added, removed or retyped).
    FuncResultChanged = "func-result-changed", Breaking, Breaking, Breaking, Major;
    /// A named type (record, variant, enum, flags, alias) was added.
    TypeAdded = "type-added", Compatible, Breaking, Compatible, Minor;
    /// A named type was removed.
    TypeRemoved = "type-removed", Breaking, Compatible, Breaking, Major;
    /// A named type was renamed (same definition under a new name).
    TypeRenamed = "type-renamed", Breaking, Breaking, Breaking, Major;
    /// A type became another kind of type (record to variant, alias to record of other content, ...).
    TypeKindChanged = "type-kind-changed", Breaking, Breaking, Breaking, Major;
    /// The structure of a type changed (an alias, list, option, result, tuple or handle now refers to another type).
    TypeChanged = "type-changed", Breaking, Breaking, Breaking, Major;
    /// A type became an alias of an identical type, or the reverse (`type a = b` replacing its target): not a change.
    TypeAliasEquivalent = "type-alias-equivalent", Compatible, Compatible, Compatible, None;
    /// A resource was added.
    ResourceAdded = "resource-added", Compatible, Breaking, Compatible, Minor;
    /// A resource was removed.
    ResourceRemoved = "resource-removed", Breaking, Compatible, Breaking, Major;
    /// A record gained a field.
    RecordFieldAdded = "record-field-added", Breaking, Breaking, Breaking, Major;
    /// A record lost a field.
    RecordFieldRemoved = "record-field-removed", Breaking, Breaking, Breaking, Major;
    /// A record field was renamed.
    RecordFieldRenamed = "record-field-renamed", Breaking, Breaking, Breaking, Major;
    /// The record fields are the same but in another order.
    RecordFieldsReordered = "record-fields-reordered", Breaking, Breaking, Breaking, Major;
    /// A record field has another type.
    RecordFieldTypeChanged = "record-field-type-changed", Breaking, Breaking, Breaking, Major;
    /// A variant gained a case.
    VariantCaseAdded = "variant-case-added", Breaking, Breaking, Breaking, Major;
    /// A variant lost a case.
    VariantCaseRemoved = "variant-case-removed", Breaking, Breaking, Breaking, Major;
    /// A variant case was renamed.
    VariantCaseRenamed = "variant-case-renamed", Breaking, Breaking, Breaking, Major;
    /// The variant cases are the same but in another order.
    VariantCasesReordered = "variant-cases-reordered", Breaking, Breaking, Breaking, Major;
    /// A variant case carries another payload type.
    VariantCaseTypeChanged = "variant-case-type-changed", Breaking, Breaking, Breaking, Major;
    /// An enum gained a case.
    EnumCaseAdded = "enum-case-added", Breaking, Breaking, Breaking, Major;
    /// An enum lost a case.
    EnumCaseRemoved = "enum-case-removed", Breaking, Breaking, Breaking, Major;
    /// An enum case was renamed.
    EnumCaseRenamed = "enum-case-renamed", Breaking, Breaking, Breaking, Major;
    /// The enum cases are the same but in another order.
    EnumCasesReordered = "enum-cases-reordered", Breaking, Breaking, Breaking, Major;
    /// A flags type gained a flag.
    FlagAdded = "flag-added", Breaking, Breaking, Breaking, Major;
    /// A flags type lost a flag.
    FlagRemoved = "flag-removed", Breaking, Breaking, Breaking, Major;
    /// A flag was renamed.
    FlagRenamed = "flag-renamed", Breaking, Breaking, Breaking, Major;
    /// The flags are the same but in another order.
    FlagsReordered = "flags-reordered", Breaking, Breaking, Breaking, Major;
    /// Documentation comments changed.
    DocsChanged = "docs-changed", Compatible, Compatible, Compatible, Patch;
    /// The `@since` version of an item changed.
    SinceChanged = "since-changed", Compatible, Compatible, Compatible, Patch;
    /// An item gained, lost or changed its `@deprecated` version.
    DeprecationChanged = "deprecation-changed", Compatible, Compatible, Compatible, Minor;
    /// An `@unstable` item became stable (`@since`): an addition for stable users.
    ItemStabilized = "item-stabilized", Compatible, Breaking, Breaking, Minor;
    /// A stable item became `@unstable`: a removal for stable users.
    ItemDestabilized = "item-destabilized", Breaking, Compatible, Breaking, Major;
}

impl fmt::Display for ChangeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for ChangeRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangeRule::ALL
            .iter()
            .copied()
            .find(|r| r.id() == s)
            .ok_or_else(|| format!("unknown rule id `{s}`"))
    }
}

/// Policy findings about `@since` and `@deprecated` hygiene. They do not
/// change the verdicts; `airssys wit diff --strict` fails on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HygieneRule {
    /// A new item carries no `@since` (and is not `@unstable`).
    SinceMissing,
    /// A new item's `@since` differs from the new package version.
    SinceMismatch,
    /// An item was removed without being `@deprecated` in OLD.
    RemovedWithoutDeprecation,
}

impl HygieneRule {
    /// Every hygiene rule.
    pub const ALL: &'static [HygieneRule] = &[
        HygieneRule::SinceMissing,
        HygieneRule::SinceMismatch,
        HygieneRule::RemovedWithoutDeprecation,
    ];

    /// The stable kebab-case id.
    pub fn id(self) -> &'static str {
        match self {
            HygieneRule::SinceMissing => "since-missing",
            HygieneRule::SinceMismatch => "since-mismatch",
            HygieneRule::RemovedWithoutDeprecation => "removed-without-deprecation",
        }
    }
}

impl fmt::Display for HygieneRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_match_serde() {
        for rule in ChangeRule::ALL {
            assert_eq!(rule.id().parse::<ChangeRule>(), Ok(*rule));
            let json = serde_json::to_string(rule).expect("serialize");
            assert_eq!(json, format!("\"{}\"", rule.id()));
            assert!(!rule.summary().is_empty());
        }
        for rule in HygieneRule::ALL {
            let json = serde_json::to_string(rule).expect("serialize");
            assert_eq!(json, format!("\"{}\"", rule.id()));
        }
    }

    #[test]
    fn breaking_for_importers_requires_a_new_track() {
        for rule in ChangeRule::ALL {
            if rule.impacts().importers.is_breaking() || rule.impacts().exporters.is_breaking() {
                assert!(rule.bump() >= Bump::Minor, "{rule}");
            }
            if rule.impacts().importers.is_breaking() {
                assert_eq!(rule.bump(), Bump::Major, "{rule}");
            }
        }
    }
}
