//! WIT source texts and turning wit-parser spans into file and line.
//!
//! wit-parser 0.258 keeps a span on every function, type and interface and
//! merges every file it reads into `Resolve::source_map`; its
//! `render_location` turns a span into `file:line:col`. The texts are kept
//! here as well, to find the `@capability` line in the doc comment above
//! a function (docs carry no span of their own).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use wit_parser::{ParseError, Resolve, ResolveError, SourceMap, Span, UnresolvedPackageGroup};

use super::requirement::ANNOTATION;
use super::{ContractError, Location};

/// The text of every WIT file of a contract, by the name wit-parser knows
/// it under.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    texts: HashMap<String, String>,
}

impl Sources {
    /// Reads back the files a `Resolve` was loaded from; a file that cannot
    /// be read again only loses annotation-line precision.
    pub(crate) fn read(map: &SourceMap) -> Sources {
        let texts = map
            .source_names()
            .filter_map(|name| Some((name.to_owned(), std::fs::read_to_string(name).ok()?)))
            .collect();
        Sources { texts }
    }

    /// The file and line of `span`.
    pub(crate) fn location(&self, map: &SourceMap, span: Span) -> Location {
        parse_location(&map.render_location(span)).unwrap_or_else(|| Location {
            file: PathBuf::from("<unknown>"),
            line: 0,
        })
    }

    /// The lines of the `@capability` doc lines above the item declared at
    /// `at`, top to bottom; empty when the text is not at hand.
    pub(crate) fn annotation_lines(&self, at: &Location) -> Vec<u32> {
        let Some(text) = at.file.to_str().and_then(|f| self.texts.get(f)) else {
            return Vec::new();
        };
        let lines: Vec<&str> = text.lines().collect();
        let mut found = Vec::new();
        let end = usize::try_from(at.line).map_or(0, |l| l.saturating_sub(1));
        for (i, line) in lines.iter().enumerate().take(end).rev() {
            let line = line.trim();
            let doc = if let Some(doc) = line.strip_prefix("///") {
                doc
            } else if line.starts_with('@') || line.is_empty() || line.starts_with("//") {
                // attributes (`@since(..)`), blank lines and plain comments
                // may sit between a doc comment and its item.
                continue;
            } else {
                break;
            };
            let is_annotation = doc
                .trim()
                .strip_prefix(ANNOTATION)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace));
            if is_annotation {
                found.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
            }
        }
        found.reverse();
        found
    }
}

/// Parses wit-parser's `file:line:col`.
fn parse_location(rendered: &str) -> Option<Location> {
    let mut parts = rendered.rsplitn(3, ':');
    let _column: u32 = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let file = parts.next()?;
    Some(Location {
        file: PathBuf::from(file),
        line,
    })
}

/// The location of a wit-parser error, from the span of the first
/// [`ResolveError`] or [`ParseError`] in its chain of causes (not from
/// its text).
pub(crate) fn error_location<'e>(
    map: &SourceMap,
    mut chain: impl Iterator<Item = &'e (dyn std::error::Error + 'static)>,
) -> Option<Location> {
    chain
        .find_map(|layer| {
            layer
                .downcast_ref::<ResolveError>()
                .map(|e| e.kind().span())
                .or_else(|| layer.downcast_ref::<ParseError>().map(|e| e.kind().span()))
        })
        .and_then(|span| span_location(map, span))
}

/// The file and line of a known span.
pub(crate) fn span_location(map: &SourceMap, span: Span) -> Option<Location> {
    span.is_known()
        .then(|| parse_location(&map.render_location(span)))
        .flatten()
}

/// Parses and resolves in-memory WIT laid out as a directory.
pub(crate) fn resolve_sources(
    root: &Path,
    files: &[(&str, &str)],
) -> Result<(Resolve, Sources), ContractError> {
    let mut main = SourceMap::new();
    let mut deps: BTreeMap<&str, SourceMap> = BTreeMap::new();
    let mut sources = Sources::default();
    for &(relative, text) in files {
        let path = root.join(relative);
        let name = path.display().to_string();
        let layout_error = |message: &str| ContractError::Layout {
            path: path.clone(),
            message: message.to_owned(),
        };
        if !relative.ends_with(".wit") {
            return Err(layout_error("not a `.wit` file"));
        }
        match relative.split('/').collect::<Vec<_>>().as_slice() {
            [_] => main.push_str(&name, text),
            ["deps", file] => deps.entry(file).or_default().push_str(&name, text),
            ["deps", dir, _] => deps.entry(dir).or_default().push_str(&name, text),
            _ => {
                return Err(layout_error(
                    "WIT files sit at the top level, in `deps/` or in `deps/<package>/`",
                ));
            }
        }
        sources.texts.insert(name, text.to_owned());
    }
    let parse = |map: SourceMap| -> Result<UnresolvedPackageGroup, ContractError> {
        map.parse().map_err(|(map, e)| ContractError::Wit {
            message: e.render(&map),
            location: span_location(&map, e.kind().span()),
        })
    };
    let main = parse(main)?;
    let deps = deps
        .into_values()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    let mut resolve = Resolve::new();
    if let Err(e) = resolve.push_groups(main, deps) {
        return Err(ContractError::Wit {
            message: e.render(&resolve.source_map),
            location: span_location(&resolve.source_map, e.kind().span()),
        });
    }
    Ok((resolve, sources))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rendered_locations() {
        let loc = parse_location("C:/x/a.wit:12:5").expect("parses");
        assert_eq!(loc.file, PathBuf::from("C:/x/a.wit"));
        assert_eq!(loc.line, 12);
        assert_eq!(parse_location("<unknown>"), None);
    }
}
