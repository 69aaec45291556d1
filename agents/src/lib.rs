//! The services a message passes through on its way: cleanup and rewrite
//! today; delivery agents, bounce, flush and verify later.

pub mod bounce;
pub mod cleanup;
pub mod datetime;
pub mod delivery;
pub mod dns;
pub mod resolve;
pub mod rewrite;
pub mod runtime;
pub mod smtp;
