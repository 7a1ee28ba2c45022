//! `airssys wit export`: the embedded contract as a WIT tree that other
//! toolchains read as it is; here, that wit-parser resolves it and finds
//! the contract's worlds.

#![allow(clippy::unwrap_used)]

use airssys_contract::model::Contract;
use wit_parser::Resolve;

mod common;
use common::{airssys, stderr, succeeded};

/// Every world of `resolve`, qualified (`airssys:core/component@1.0.0`).
fn worlds(resolve: &Resolve) -> Vec<String> {
    let mut out: Vec<String> = resolve
        .worlds
        .iter()
        .map(|(_, w)| {
            let pkg = &resolve.packages[w.package.unwrap()].name;
            format!(
                "{}:{}/{}@{}",
                pkg.namespace,
                pkg.name,
                w.name,
                pkg.version.as_ref().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_whole_contract_round_trips_its_worlds() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("wit");
    let out = airssys(&["wit", "export", out_dir.to_str().unwrap()]);
    let text = succeeded(&out);
    assert!(text.contains("airssys:ext@1.0.0 (root)"), "{text}");
    let mut resolve = Resolve::new();
    let (root, _) = resolve.push_dir(&out_dir).unwrap();
    assert_eq!(resolve.packages[root].name.to_string(), "airssys:ext@1.0.0");
    let mut expected = Contract::embedded().worlds();
    expected.sort();
    assert_eq!(worlds(&resolve), expected);
    // Same functions in every interface as the embedded contract.
    let embedded = Contract::embedded().resolve();
    for (_, iface) in embedded.interfaces.iter() {
        let Some(name) = &iface.name else { continue };
        let found = resolve
            .interfaces
            .iter()
            .find(|(_, i)| {
                i.name.as_ref() == Some(name)
                    && resolve.packages[i.package.unwrap()].name
                        == embedded.packages[iface.package.unwrap()].name
            })
            .unwrap_or_else(|| panic!("interface {name} exported"));
        let mut a: Vec<&String> = iface.functions.keys().collect();
        let mut b: Vec<&String> = found.1.functions.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn one_world_is_exported_with_its_package_at_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("wit");
    let out = airssys(&[
        "wit",
        "export",
        out_dir.to_str().unwrap(),
        "--world",
        "airssys:core/component",
    ]);
    let text = succeeded(&out);
    // The commands printed are the ones other toolchains take.
    assert!(
        text.contains(&format!(
            "componentize-py -d {} -w airssys:core/component componentize app -o app.wasm",
            out_dir.display()
        )),
        "{text}"
    );
    assert!(!out_dir.join("deps").exists());
    let mut resolve = Resolve::new();
    let (root, _) = resolve.push_dir(&out_dir).unwrap();
    assert_eq!(
        resolve.packages[root].name.to_string(),
        "airssys:core@1.0.0"
    );
    let world = resolve.select_world(&[root], Some("component")).unwrap();
    let embedded = Contract::embedded();
    let original = embedded.world("airssys:core/component").unwrap();
    let names = |r: &Resolve, w| -> Vec<String> {
        let mut v: Vec<String> = r.worlds[w]
            .imports
            .keys()
            .chain(r.worlds[w].exports.keys())
            .map(|k| r.name_world_key(k))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&resolve, world), names(embedded.resolve(), original));

    // The ext world needs core: it lands in deps/.
    let ext_dir = dir.path().join("ext");
    let out = airssys(&[
        "wit",
        "export",
        ext_dir.to_str().unwrap(),
        "--world",
        "airssys:ext/component",
    ]);
    succeeded(&out);
    assert!(ext_dir.join("deps/airssys-core").is_dir());
    let mut resolve = Resolve::new();
    let (root, _) = resolve.push_dir(&ext_dir).unwrap();
    resolve.select_world(&[root], Some("component")).unwrap();
}

#[test]
fn an_unknown_world_or_a_non_empty_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = airssys(&[
        "wit",
        "export",
        dir.path().to_str().unwrap(),
        "--world",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("world `nope` is not in the contract; it defines: "),
        "{err}"
    );
    assert!(err.contains("airssys:core/component@1.0.0"), "{err}");

    std::fs::write(dir.path().join("mine.wit"), "package a:b;\n").unwrap();
    let out = airssys(&["wit", "export", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));
    let out = airssys(&["wit", "export", dir.path().to_str().unwrap(), "--force"]);
    succeeded(&out);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mine.wit")).unwrap(),
        "package a:b;\n",
        "other files are left as they are"
    );
}
