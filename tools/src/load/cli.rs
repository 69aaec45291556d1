//! The command lines: `sluice source …` and `sluice sink …`, with
//! smtp-source(1) and smtp-sink(1)'s option letters where they have one.
//!
//! Exit status: 0 success; 1 the source had failures (the summary says
//! which); 64 usage; 69 the sink cannot listen or the source cannot run.

use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use super::sink::{FailAt, Sink, SinkConfig};
use super::source::{run_source, SourceConfig};
use super::stderr_is_tty;

const EX_USAGE: i32 = 64;
const EX_UNAVAILABLE: i32 = 69;

#[derive(Parser, Debug)]
#[command(
    name = "sluice source",
    about = "Send test mail over SMTP in parallel sessions and measure it (like smtp-source)"
)]
pub struct SourceArgs {
    /// Sessions in parallel.
    #[arg(short = 's', default_value_t = 1)]
    pub sessions: usize,
    /// Messages in all.
    #[arg(short = 'm', default_value_t = 1)]
    pub messages: u64,
    /// Body bytes after the headers.
    #[arg(short = 'l', default_value_t = 0)]
    pub size: usize,
    /// Recipients per message.
    #[arg(short = 'r', default_value_t = 1)]
    pub recipients: usize,
    /// Send all of a session's messages over one connection.
    #[arg(short = 'd')]
    pub reuse: bool,
    /// Sender address.
    #[arg(short = 'f', default_value = "foo@localhost")]
    pub from: String,
    /// Recipient address (or a domain).
    #[arg(short = 't', default_value = "foo@localhost")]
    pub to: String,
    /// Name sent in EHLO.
    #[arg(short = 'M', long = "helo", default_value = "localhost")]
    pub helo: String,
    /// Start no message after this many seconds.
    #[arg(long = "time-limit", default_value_t = 3600)]
    pub time_limit_s: u64,
    /// Connect, read and write timeout in seconds.
    #[arg(long = "timeout", default_value_t = 60)]
    pub timeout_s: u64,
    /// Do not pipeline commands, even if the server offers it.
    #[arg(long = "no-pipelining")]
    pub no_pipelining: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// [inet:]host[:port] (port 25 by default).
    pub target: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FailAtArg {
    Mail,
    Rcpt,
    Data,
}

#[derive(Parser, Debug)]
#[command(
    name = "sluice sink",
    about = "Accept SMTP mail and throw it away, with injectable failures and delays (like smtp-sink)"
)]
pub struct SinkArgs {
    /// Fraction (0..1) of replies at --fail-at answered 4xx.
    #[arg(long = "temp-fail", default_value_t = 0.0)]
    pub temp_fail: f64,
    /// Fraction (0..1) of replies at --fail-at answered 5xx.
    #[arg(long = "perm-fail", default_value_t = 0.0)]
    pub perm_fail: f64,
    /// Which reply the failure fractions apply to.
    #[arg(long = "fail-at", value_enum, default_value = "rcpt")]
    pub fail_at: FailAtArg,
    /// Milliseconds to wait before answering the final dot.
    #[arg(long = "delay", default_value_t = 0)]
    pub delay_ms: u64,
    /// Milliseconds to wait before every other reply.
    #[arg(long = "command-delay", default_value_t = 0)]
    pub command_delay_ms: u64,
    /// Do not announce DSN.
    #[arg(long = "no-dsn")]
    pub no_dsn: bool,
    /// Do not announce PIPELINING.
    #[arg(short = 'p', long = "no-pipelining")]
    pub no_pipelining: bool,
    /// Exit after accepting this many messages.
    #[arg(long = "count")]
    pub count: Option<u64>,
    /// Sessions at once.
    #[arg(long = "max-connections", default_value_t = 512)]
    pub max_connections: usize,
    /// Write each message to DIR/<n>.eml.
    #[arg(short = 'D', long = "dump-dir")]
    pub dump_dir: Option<PathBuf>,
    /// Name in the greeting and EHLO reply.
    #[arg(long = "hostname", default_value = "smtp-sink")]
    pub hostname: String,
    /// [inet:][host]:port to listen on (":port" = all addresses; port 0 =
    /// any free port, printed on stdout).
    pub listen: String,
    /// listen(2) backlog, as smtp-sink's second argument.
    pub backlog: Option<i32>,
}

/// Parse `args` (those after the subcommand) with `P`; Err is the exit code.
fn parse<P: Parser>(name: &str, args: &[String]) -> Result<P, i32> {
    P::try_parse_from(std::iter::once(name.to_owned()).chain(args.iter().cloned())).map_err(|e| {
        let _ = e.print();
        match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
            _ => EX_USAGE,
        }
    })
}

/// `[inet:]host[:port]`, `[inet:][host]:port`, `[v6addr]:port`. An empty
/// host is every address; a missing port is 25.
pub fn parse_endpoint(s: &str) -> io::Result<SocketAddr> {
    let s = s.strip_prefix("inet:").unwrap_or(s);
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let with_port = match s.rsplit_once(':') {
        Some(("", port)) => format!("0.0.0.0:{port}"),
        Some((host, _)) if !host.contains(':') || host.ends_with(']') => s.to_owned(),
        _ => format!("{s}:25"),
    };
    with_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{s}: no address found")))
}

/// `sluice source ARGS…`: run the load, print the summary; see the
/// module doc for the exit status.
pub fn source_main(args: &[String]) -> i32 {
    let a: SourceArgs = match parse("sluice source", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let target = match parse_endpoint(&a.target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sluice source: fatal: {}: {e}", a.target);
            return EX_USAGE;
        }
    };
    let cfg = SourceConfig {
        sessions: a.sessions,
        messages: a.messages,
        size: a.size,
        recipients: a.recipients,
        reuse: a.reuse,
        from: a.from,
        to: a.to,
        helo: a.helo,
        time_limit: Duration::from_secs(a.time_limit_s),
        pipelining: !a.no_pipelining,
        timeout: Duration::from_secs(a.timeout_s.max(1)),
        body: None,
        progress: !a.json && stderr_is_tty(),
        ..SourceConfig::new(target)
    };
    let report = match run_source(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice source: fatal: {e}");
            return EX_UNAVAILABLE;
        }
    };
    let out = if a.json {
        format!("{}\n", report.to_json())
    } else {
        report.to_text()
    };
    let _ = io::stdout().write_all(out.as_bytes());
    if report.failures == 0 {
        0
    } else {
        1
    }
}

/// `sluice sink ARGS…`: listen until `--count` messages were accepted
/// (then print the counters and exit 0), or until killed.
pub fn sink_main(args: &[String]) -> i32 {
    let a: SinkArgs = match parse("sluice sink", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let listen = match parse_endpoint(&a.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sluice sink: fatal: {}: {e}", a.listen);
            return EX_USAGE;
        }
    };
    let cfg = SinkConfig {
        hostname: a.hostname,
        max_connections: a.max_connections,
        reply_temp_fail: a.temp_fail,
        reply_perm_fail: a.perm_fail,
        fail_at: match a.fail_at {
            FailAtArg::Mail => FailAt::Mail,
            FailAtArg::Rcpt => FailAt::Rcpt,
            FailAtArg::Data => FailAt::Data,
        },
        delay: Duration::from_millis(a.delay_ms),
        command_delay: Duration::from_millis(a.command_delay_ms),
        announce_pipelining: !a.no_pipelining,
        announce_dsn: !a.no_dsn,
        dump_dir: a.dump_dir,
        // The command keeps nothing in memory: it runs for as long as
        // it is told, and the dump directory is the way to keep mail.
        keep_received: 0,
        count_limit: a.count,
        backlog: a.backlog,
        ..SinkConfig::new(listen)
    };
    let sink = match Sink::start(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sluice sink: fatal: listen on {listen}: {e}");
            return if e.kind() == io::ErrorKind::InvalidInput {
                EX_USAGE
            } else {
                EX_UNAVAILABLE
            };
        }
    };
    let mut stdout = io::stdout();
    let _ = writeln!(stdout, "sluice sink: listening on {}", sink.addr());
    let _ = stdout.flush();
    let tty = stderr_is_tty();
    let limit = a.count.unwrap_or(u64::MAX);
    while !sink.wait_for(limit, Duration::from_secs(1)) {
        if tty {
            let s = sink.stats();
            eprint!(
                "\rsluice sink: {} connections, {} messages, {} temp / {} perm rejects   ",
                s.connections, s.messages, s.temp_rejects, s.perm_rejects
            );
        }
    }
    // Say at once that the count is reached (benchmarks time this line),
    // then let sessions, which now get 421 to their next command, read
    // their last replies and leave before the sockets are shut.
    if a.count.is_some() {
        let _ = writeln!(stdout, "sluice sink: {} messages received", sink.messages());
        let _ = stdout.flush();
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while sink.active_sessions() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let s = sink.stats();
    sink.stop();
    if tty {
        eprintln!();
    }
    println!(
        "sluice sink: {} connections, {} messages, {} recipients, {} bytes, {} temp / {} perm rejects",
        s.connections, s.messages, s.recipients, s.bytes, s.temp_rejects, s.perm_rejects
    );
    0
}
