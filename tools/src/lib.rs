//! The command line: `sluice` and the Postfix-named commands it answers to.
//!
//! - [`cli`]: argument parsing and dispatch (also by `argv[0]`: `mailq`,
//!   `postqueue`).
//! - [`postqueue`]: queue listings from a running daemon or from the log.
//! - [`showq`]: Postfix's exact listing formats.
//! - [`postdrop`]: the setgid submission program (its own binary).

pub mod cli;
pub mod install;
pub mod load;
pub mod postcat;
pub mod postconf;
pub mod postdrop;
pub mod postqueue;
pub mod postsuper;
pub mod sendmail;
pub mod showq;
