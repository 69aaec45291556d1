//! Fuzz target bodies: one plain function per target, `run(data: &[u8])`,
//! that panics when an invariant breaks and returns otherwise.
//!
//! - **Role.** The shared half of two harnesses: the stable test suite
//!   (this crate's `tests/`: the committed seed corpus, then a bounded
//!   number of generated inputs) and cargo-fuzz on nightly (`fuzz/`,
//!   one libFuzzer binary per target calling the same function).
//! - **Trusts.** Nothing: every byte of `data` is hostile.
//! - **Touches.** No I/O, no network, no files: DNS replies come from an
//!   in-memory transport, configuration from text. (master.cf inputs that
//!   would make the loader resolve a host name skip that step.)
//! - **Limits.** Each target refuses inputs over [`MAX_INPUT`] bytes, so
//!   that a fuzzer's time goes to structure, not to size.
//!
//! Invariants common to all: no panic, no allocation out of proportion to
//! the input (each parser's own bound is asserted where it can be seen),
//! and a round-trip or consistency property where one is cheap.

pub mod dns_reply;
pub mod main_cf;
pub mod master_cf;
pub mod queue_record;
pub mod queue_segment;
pub mod smtp_reply;
pub mod smtp_server;

/// The largest input a target looks at.
pub const MAX_INPUT: usize = 64 * 1024;

/// A target: its name (the cargo-fuzz binary and the seed directory) and
/// its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    ("smtp_server", smtp_server::run),
    ("smtp_reply", smtp_reply::run),
    ("dns_reply", dns_reply::run),
    ("queue_record", queue_record::run),
    ("queue_segment", queue_segment::run),
    ("main_cf", main_cf::run),
    ("master_cf", master_cf::run),
];
