//! With the `c` feature: compiles the bench's C client
//! (`src/transport/c_api.c`, against `filemap-c`'s header) into a static
//! library linked into `filemap-bench`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "c")]
    {
        println!("cargo:rerun-if-changed=src/transport/c_api.c");
        println!("cargo:rerun-if-changed=../filemap-c/include/filemap.h");
        cc::Build::new()
            .file("src/transport/c_api.c")
            .include("../filemap-c/include")
            .opt_level(2)
            .warnings_into_errors(true)
            .compile("fmb_c_client");
    }
}
