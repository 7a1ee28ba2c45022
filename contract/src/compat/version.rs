//! Semver tracks and version bumps.
//!
//! wasmtime links an import to the highest host version on the same track:
//! `@1` covers every 1.x, `@0.N` every 0.N.x; 0.0.x and pre-releases only
//! match exactly.

use std::fmt;

use semver::Version;
use serde::{Deserialize, Serialize};

use super::rules::Bump;

/// The compatibility track of a version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Track {
    /// `@N` for N ≥ 1 (any N.x.y).
    Major(u64),
    /// `@0.N` for N ≥ 1 (any 0.N.x).
    Minor(u64),
    /// 0.0.x and pre-releases: only this exact version.
    Exact(String),
    /// An unversioned package.
    Unversioned,
}

impl Track {
    /// The track of `version` (`None` for an unversioned package).
    pub fn of(version: Option<&Version>) -> Track {
        match version {
            None => Track::Unversioned,
            Some(v) if !v.pre.is_empty() => Track::Exact(v.to_string()),
            Some(v) if v.major > 0 => Track::Major(v.major),
            Some(v) if v.minor > 0 => Track::Minor(v.minor),
            Some(v) => Track::Exact(v.to_string()),
        }
    }
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Track::Major(n) => write!(f, "@{n}"),
            Track::Minor(n) => write!(f, "@0.{n}"),
            Track::Exact(v) => write!(f, "@{v} (exact)"),
            Track::Unversioned => f.write_str("unversioned"),
        }
    }
}

/// Why a host version cannot serve a component's import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackMismatch {
    /// The versions are on different tracks.
    #[error("the component needs track {component}, the host offers {host}")]
    OtherTrack {
        /// The component's track.
        component: Track,
        /// The host's track.
        host: Track,
    },
    /// Same track, but the host is older than the component.
    #[error("the component needs version {component} or newer, the host has {host}")]
    HostOlder {
        /// The version the component was built against.
        component: Version,
        /// The host's version.
        host: Version,
    },
}

/// Checks wasmtime's track rule: same track, and the host version is at
/// least the component's.
///
/// # Errors
///
/// [`TrackMismatch`] naming both versions.
pub fn check_track(
    component: Option<&Version>,
    host: Option<&Version>,
) -> Result<(), TrackMismatch> {
    let (ct, ht) = (Track::of(component), Track::of(host));
    if ct != ht {
        return Err(TrackMismatch::OtherTrack {
            component: ct,
            host: ht,
        });
    }
    if let (Some(c), Some(h)) = (component, host)
        && h < c
    {
        return Err(TrackMismatch::HostOlder {
            component: c.clone(),
            host: h.clone(),
        });
    }
    Ok(())
}

/// The bump a change of declared versions amounts to, or `None` when the
/// version went backwards.
///
/// A new track is [`Bump::Major`]. On a `N.x` track (N ≥ 1) a larger minor
/// is [`Bump::Minor`] and a larger patch [`Bump::Patch`]. On a `0.N` track
/// the patch number carries additions, so a larger patch counts as
/// [`Bump::Minor`]. Equal versions are [`Bump::None`].
pub fn declared_bump(old: Option<&Version>, new: Option<&Version>) -> Option<Bump> {
    if Track::of(old) != Track::of(new) {
        return Some(Bump::Major);
    }
    let (Some(o), Some(n)) = (old, new) else {
        return Some(Bump::None);
    };
    if n < o {
        return None;
    }
    Some(if n == o {
        Bump::None
    } else if o.major == 0 || n.minor > o.minor {
        Bump::Minor
    } else {
        Bump::Patch
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("valid version")
    }

    #[test]
    fn tracks_follow_wasmtime() {
        assert!(check_track(Some(&v("0.2.1")), Some(&v("0.2.3"))).is_ok());
        assert!(check_track(Some(&v("1.0.0")), Some(&v("1.4.2"))).is_ok());
        assert!(check_track(Some(&v("0.2.0")), Some(&v("0.3.0"))).is_err());
        assert!(check_track(Some(&v("1.2.0")), Some(&v("2.0.0"))).is_err());
        assert!(check_track(Some(&v("0.0.1")), Some(&v("0.0.2"))).is_err());
        assert!(check_track(Some(&v("0.2.0-rc1")), Some(&v("0.2.0"))).is_err());
        assert_eq!(
            check_track(Some(&v("1.4.0")), Some(&v("1.3.0"))),
            Err(TrackMismatch::HostOlder {
                component: v("1.4.0"),
                host: v("1.3.0"),
            })
        );
        assert_eq!(
            check_track(Some(&v("1.4.0")), Some(&v("1.3.0")))
                .expect_err("the host is older")
                .to_string(),
            "the component needs version 1.4.0 or newer, the host has 1.3.0"
        );
        assert!(check_track(None, None).is_ok());
        assert!(check_track(None, Some(&v("1.0.0"))).is_err());
    }

    #[test]
    fn declared_bumps() {
        assert_eq!(
            declared_bump(Some(&v("1.0.0")), Some(&v("1.1.0"))),
            Some(Bump::Minor)
        );
        assert_eq!(
            declared_bump(Some(&v("1.0.0")), Some(&v("1.0.1"))),
            Some(Bump::Patch)
        );
        assert_eq!(
            declared_bump(Some(&v("1.0.0")), Some(&v("2.0.0"))),
            Some(Bump::Major)
        );
        assert_eq!(
            declared_bump(Some(&v("0.2.0")), Some(&v("0.2.1"))),
            Some(Bump::Minor)
        );
        assert_eq!(
            declared_bump(Some(&v("0.2.0")), Some(&v("0.3.0"))),
            Some(Bump::Major)
        );
        assert_eq!(
            declared_bump(Some(&v("1.1.0")), Some(&v("1.1.0"))),
            Some(Bump::None)
        );
        assert_eq!(declared_bump(Some(&v("1.1.0")), Some(&v("1.0.0"))), None);
    }
}
