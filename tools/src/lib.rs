//! The command line: `sluice` and the Postfix-named commands it answers to.

pub mod showq;
