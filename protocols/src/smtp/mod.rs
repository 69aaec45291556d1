//! SMTP: the server state machine (`server`), the client codecs (`client`),
//! replies (`reply`).

pub mod client;
pub mod reply;
pub mod server;

/// `smtpd_forbid_bare_newline`: what a bare LF (or bare CR) in SMTP input
/// means. Postfix's values `normalize` (default), `reject`, `no`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BareNewline {
    /// A bare LF ends a line but never ends DATA; only `<CR><LF>.<CR><LF>` does.
    #[default]
    Normalize,
    /// A bare LF or CR gets `550 5.5.2` and the message is not queued.
    Reject,
    /// Pre-3.9 behaviour (vulnerable to smuggling); kept for compatibility.
    No,
}
