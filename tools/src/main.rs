//! The `sluice` binary: the daemon and the Postfix-named commands.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    std::process::exit(sluice_tools::cli::main(args));
}
