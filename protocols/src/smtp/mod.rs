//! SMTP: the server state machine (`server`), replies (`reply`).

pub mod reply;
