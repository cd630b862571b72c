//! The `kiln` binary: everything lives in the library.

fn main() {
    std::process::exit(kiln::cli::main());
}
