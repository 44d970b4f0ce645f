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
