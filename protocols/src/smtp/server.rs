//! The SMTP server state machine (smtpd), sans-IO.
