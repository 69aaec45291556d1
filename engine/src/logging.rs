//! Log lines in Postfix's shape, so that pflogsumm and friends read them:
//!
//! `Nov 28 18:21:25 mx sluice/smtpd[4711]: connect from localhost[127.0.0.1]`
//!
//! The service name (`smtpd`, `cleanup`, `qmgr`, `master`, …) is the
//! tracing event's `target`; events from elsewhere use their module's last
//! path segment. Messages are written as given: the callers already use
//! Postfix's texts (`warning: …`, `fatal: …`).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as syslog-style Postfix lines.
pub struct PostfixFormat {
    hostname: String,
    syslog_name: String,
    pid: u32,
}

impl PostfixFormat {
    pub fn new(hostname: &str, syslog_name: &str) -> PostfixFormat {
        PostfixFormat {
            hostname: hostname.split('.').next().unwrap_or(hostname).to_string(),
            syslog_name: syslog_name.to_string(),
            pid: std::process::id(),
        }
    }
}

/// The service part of a target: `smtpd` stays, `sluice_engine::commit`
/// becomes `commit`.
pub fn service_name(target: &str) -> &str {
    target.rsplit("::").next().unwrap_or(target)
}

impl<S, N> FormatEvent<S, N> for PostfixFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let service = service_name(event.metadata().target());
        write!(
            writer,
            "{} {} {}/{}[{}]: ",
            sluice_agents::datetime::syslog_stamp_local(now),
            self.hostname,
            self.syslog_name,
            service,
            self.pid
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Install the global subscriber: Postfix-shaped lines to stderr, level
/// from `SLUICE_LOG` (default `info`).
pub fn init(hostname: &str) {
    use tracing_subscriber::filter::LevelFilter;
    let level = match std::env::var("SLUICE_LOG").as_deref() {
        Ok("debug") => LevelFilter::DEBUG,
        Ok("trace") => LevelFilter::TRACE,
        Ok("warn") => LevelFilter::WARN,
        Ok("error") => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(PostfixFormat::new(hostname, "sluice"))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        assert_eq!(service_name("smtpd"), "smtpd");
        assert_eq!(service_name("sluice_engine::commit"), "commit");
    }
}
