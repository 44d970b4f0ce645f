//! `include/filemap.h` is what cbindgen makes of the crate today: a change
//! to the C API that forgot the header fails here.
//! `FILEMAP_BLESS=1 cargo test -p filemap-c --test header` rewrites it.

// A check of the sources, the same on every OS: it runs on Unix. (Under
// Wine, cbindgen could not run `cargo metadata`.)
#![cfg(not(windows))]

use std::path::Path;

#[test]
fn the_checked_in_header_is_what_the_sources_give() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8");
    let path = dir.join("include/filemap.h");
    if std::env::var_os("FILEMAP_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/filemap.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let first = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(checked_in.lines().count().min(generated.lines().count()));
        panic!(
            "include/filemap.h is out of date (first difference at line {}); \
             run `FILEMAP_BLESS=1 cargo test -p filemap-c --test header` and commit it",
            first + 1
        );
    }
}
