//! docs/manifest-format.md is the stable definition of the
//! `airssys:manifest` bytes: its example must decode as the page says, and
//! the encoder must write exactly those bytes.

use airssys_contract::manifest::{FORMAT_VERSION, MAGIC, Manifest};

/// The hex dump of the page's example, without the comments.
fn example_bytes() -> Vec<u8> {
    let page = include_str!("../../docs/manifest-format.md");
    let start = page
        .find("41 53 59 4d  ")
        .expect("the example dump is on the page");
    let block = &page[start..page[start..].find("```").map(|e| start + e).expect("end")];
    let mut out = Vec::new();
    for line in block.lines() {
        // Hex pairs come before the column of comments.
        let hex = line
            .split("  ")
            .filter(|p| !p.trim().is_empty())
            .take_while(|part| {
                part.trim()
                    .split(' ')
                    .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok())
            });
        for part in hex {
            for b in part.split_whitespace() {
                out.push(u8::from_str_radix(b, 16).expect("hex"));
            }
        }
    }
    out
}

#[test]
fn the_documented_example_decodes_and_encodes_byte_for_byte() {
    let bytes = example_bytes();
    assert_eq!(bytes.len(), 70, "{bytes:02x?}");
    assert_eq!(bytes[..4], MAGIC);
    assert_eq!(bytes[4], FORMAT_VERSION);
    let manifest = Manifest::decode(&bytes).expect("the example decodes");
    assert_eq!(manifest.name, "py-counter");
    assert_eq!(manifest.version, "0.1.0");
    assert_eq!(manifest.requires[0].to_string(), "log:write");
    assert_eq!(manifest.optional[0].to_string(), "kv:read:counter/*");
    assert_eq!(manifest.encode(), bytes);
}

#[test]
fn another_format_version_is_refused_by_name() {
    let mut bytes = example_bytes();
    bytes[4] = 2;
    let err = Manifest::decode(&bytes).expect_err("format 2 is unknown");
    assert!(
        err.to_string()
            .contains("format version 2 is not supported (expected 1)"),
        "{err}"
    );
}
