//! `sluice-postdrop`: the setgid submission program, installed as
//! `postdrop` by `sluice install-links`. Its only entry point is
//! [`sluice_tools::postdrop::main`] (see that module for why it is a
//! binary of its own).

fn main() {
    std::process::exit(sluice_tools::postdrop::main());
}
