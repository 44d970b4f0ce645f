//! The crate's layers point only down (the layer list at the top of `src/lib.rs`): each
//! module may use `crate::X` only for modules in a lower layer, so `sys`, the
//! bottom, uses only the leaf modules. This reads the sources and fails,
//! naming the file, the line and the offending path, when a module reaches
//! up or sideways. (Reading the tree is the same on every OS: run on Unix.)
#![cfg(unix)]

use std::path::{Path, PathBuf};

/// Layer of each top-level module; a module may use only lower layers.
/// `channel` and `sync` share a layer: neither may use the other.
const LAYERS: &[(&str, u32)] = &[
    ("error", 0),
    ("hash", 0),
    ("types", 1),
    ("name", 1),
    ("sys", 2),
    ("mapping", 3),
    ("segment", 4),
    ("park", 5),
    ("wait", 6),
    ("channel", 7),
    ("sync", 7),
    ("inspect", 8),
    ("os", 8),
    ("typed", 8),
    ("rpc", 9),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|&(_, l)| l)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The `crate::X` paths used in code (comments and doc comments skipped).
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            let name: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `crate::{a, b}` lists several: take each.
            if name.is_empty() && tail.starts_with('{') {
                let inner = &tail[1..tail.find('}').unwrap_or(tail.len())];
                for part in inner.split(',') {
                    let m: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !m.is_empty() {
                        found.push((i + 1, m));
                    }
                }
            } else if !name.is_empty() {
                found.push((i + 1, name));
            }
            rest = tail;
        }
    }
    found
}

#[test]
fn modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 10, "found only {} source files", files.len());
    let mut wrong = Vec::new();
    let mut checked = 0;
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a name")
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" {
            continue;
        }
        let Some(own) = layer(&top) else {
            wrong.push(format!(
                "{}: module `{top}` has no layer in tests/layers.rs; give it one",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(f).expect("read source");
        for (line, used) in uses(&text) {
            checked += 1;
            if used == top {
                continue;
            }
            match layer(&used) {
                Some(l) if l < own => {}
                Some(l) => wrong.push(format!(
                    "{}:{line}: `{top}` (layer {own}) uses `crate::{used}` (layer {l})",
                    rel.display()
                )),
                // Re-exports at the root (`crate::Error`, `crate::Mapping`):
                // resolve to where they are defined.
                None => {
                    let home = match used.as_str() {
                        "Error" | "Result" => "error",
                        "Mapping" | "View" | "Access" | "ViewAccess" | "Options" | "Backing"
                        | "Lifetime" | "Disposition" | "Inheritable" => "mapping",
                        other => {
                            wrong.push(format!(
                                "{}:{line}: unknown path `crate::{other}`",
                                rel.display()
                            ));
                            continue;
                        }
                    };
                    let l = layer(home).expect("known");
                    if l >= own && home != top {
                        wrong.push(format!(
                            "{}:{line}: `{top}` (layer {own}) uses `crate::{used}` from `{home}` (layer {l})",
                            rel.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        checked > 50,
        "saw only {checked} crate paths: is the scan broken?"
    );
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_scan_sees_what_it_must_refuse() {
    // The checker itself: a sys file reaching up would be caught.
    let found = uses("use crate::mapping::Access;\n// crate::segment in a comment\nlet x = crate::{error, segment};");
    assert_eq!(
        found,
        vec![
            (1, "mapping".to_owned()),
            (3, "error".to_owned()),
            (3, "segment".to_owned())
        ]
    );
}
