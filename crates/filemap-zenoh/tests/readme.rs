//! The README's Zenoh access-control example is a configuration Zenoh takes:
//! the block parses as the `zenoh` part of a bridge's file, so it cannot rot.

#[test]
fn the_readmes_access_control_example_is_valid_zenoh_configuration() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = ["../../README.md", "README.md"]
        .iter()
        .find_map(|p| std::fs::read_to_string(dir.join(p)).ok())
        .expect("README.md beside the workspace or the package");
    let start = readme
        .find("Zenoh's access control is the defence")
        .expect("the README has the access-control example");
    let rest = &readme[start..];
    let open = rest.find("```json5").expect("a json5 block") + "```json5".len();
    let close = open + rest[open..].find("```").expect("its end");
    let block = &rest[open..close];
    assert!(block.contains("access_control"), "{block}");
    let cfg = filemap_zenoh::zenoh::Config::from_json5(&format!("{{{block}}}"));
    assert!(cfg.is_ok(), "{:?}\n{block}", cfg.err());
    let bridge =
        filemap_zenoh::Config::from_json5(&format!("{{ zenoh: {{{block}}}, routes: [] }}"));
    assert!(bridge.is_ok(), "{:?}", bridge.err());
}

/// The README's library example, compiled here: a doc test of `filemap`
/// (which runs the README's other Rust blocks) cannot use this crate, so
/// the README marks it `ignore` and this test checks it is this code.
#[allow(dead_code)]
fn library_example() -> Result<(), Box<dyn std::error::Error>> {
    use filemap_zenoh::{Bridge, Route};
    // README BEGIN
    let mut c = filemap_zenoh::Config::new(zenoh::Config::default());
    c.route(Route::out("sensors", "demo/sensors")?)
        .route(Route::into_local("demo/cmds", "cmds")?);
    let bridge = Bridge::new(c)?;
    bridge.run()?;
    // README END
    Ok(())
}

#[test]
fn the_readmes_library_example_is_the_compiled_one() {
    let readme = ["../../README.md", "README.md"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .expect("README.md beside the workspace or the package");
    let block: Vec<&str> = readme
        .split("```rust,ignore\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has the library example")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let me = include_str!("readme.rs");
    let ours: Vec<&str> = me
        .split("// README BEGIN\n")
        .nth(1)
        .and_then(|rest| rest.split("// README END").next())
        .expect("the markers above")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        block, ours,
        "the README's library example drifted from the compiled one"
    );
}
