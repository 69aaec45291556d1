//! Shared harness for end-to-end tests: a private config and queue
//! directory, a real `sluice start-fg` on a free loopback port, and a raw
//! SMTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod load;

pub const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!(
            "sluice-test-{tag}-{}-{n}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("SLUICE_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config directory with main.cf and master.cf for one smtpd on
/// 127.0.0.1:port; `extra` lines are appended to main.cf.
pub struct Instance {
    pub dir: TempDir,
    pub queue: PathBuf,
    pub port: u16,
    pub child: Option<Child>,
}

impl Instance {
    pub fn new(tag: &str, extra_main_cf: &str) -> Instance {
        Self::with_master(tag, extra_main_cf, "")
    }

    pub fn with_master(tag: &str, extra_main_cf: &str, master_opts: &str) -> Instance {
        Self::build(tag, extra_main_cf, master_opts, None)
    }

    /// An instance whose queue lives in `queue` (e.g. a small tmpfs).
    pub fn with_queue_dir(tag: &str, extra_main_cf: &str, queue: PathBuf) -> Instance {
        Self::build(tag, extra_main_cf, "", Some(queue))
    }

    fn build(
        tag: &str,
        extra_main_cf: &str,
        master_opts: &str,
        queue: Option<PathBuf>,
    ) -> Instance {
        let dir = TempDir::new(tag);
        let port = free_port();
        let queue = queue.unwrap_or_else(|| dir.path().join("queue"));
        std::fs::write(
            dir.path().join("main.cf"),
            format!(
                "# test instance\nmyhostname = mx.example.test\nmydomain = example.test\n\
                 queue_directory = {}\nmynetworks = 127.0.0.0/8\ninet_interfaces = loopback-only\n\
                 sluice_shards = 2\n\
                 # No test talks to the outside: mail stays queued unless a test says where to relay.\n\
                 defer_transports = smtp\nsmtp_host_lookup = native\n{extra_main_cf}\n",
                queue.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("master.cf"),
            format!("127.0.0.1:{port} inet n - n - - smtpd{master_opts}\n"),
        )
        .unwrap();
        Instance {
            dir,
            queue,
            port,
            child: None,
        }
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn queue_dir(&self) -> PathBuf {
        self.queue.clone()
    }
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// Start `sluice start-fg` and wait until it answers on its port.
    pub fn start(&mut self) {
        self.start_with(|_| {});
    }

    /// [`Instance::start`] with the command adjusted first (environment,
    /// resource limits).
    pub fn start_with(&mut self, tune: impl FnOnce(&mut Command)) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = Command::new(SLUICE);
        cmd.arg("-c")
            .arg(self.config_dir())
            .arg("start-fg")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        tune(&mut cmd);
        let child = cmd.spawn().expect("spawn sluice");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready = self.queue_dir().join("pid").join("master.ready");
        loop {
            if ready.exists() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("sluice exited during start-up ({st}); log:\n{}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not start; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("not started");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        wait_timeout(&mut c, Duration::from_secs(40)).expect("sluice did not stop on SIGTERM")
    }

    /// SIGKILL: the crash we must survive.
    pub fn kill(&mut self) {
        let mut c = self.child.take().expect("not started");
        let _ = c.kill();
        let _ = c.wait();
        // The pid lock dies with the process; the ready marker is ours to clear.
        let _ = std::fs::remove_file(self.queue_dir().join("pid").join("master.ready"));
    }

    /// Run `sluice -c DIR args…`.
    pub fn sluice(&self, args: &[&str]) -> Output {
        Command::new(SLUICE)
            .arg("-c")
            .arg(self.config_dir())
            .args(args)
            .output()
            .expect("run sluice")
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// `postqueue -j`, parsed into (queue_id, queue_name, recipients).
    pub fn queue_json(&self) -> Vec<String> {
        let out = self.sluice(&["postqueue", "-j"]);
        assert!(
            out.status.success(),
            "postqueue -j failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn wait_timeout(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw SMTP client: write exactly the bytes given, read whole replies.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    /// Read one (possibly multi-line) reply; returns its lines joined by `\n`.
    pub fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            let n = self.reader.read_line(&mut l).expect("read reply");
            assert!(n > 0, "connection closed; got so far: {lines:?}");
            let l = l.trim_end_matches(['\r', '\n']).to_string();
            let last = l.len() < 4 || l.as_bytes()[3] == b' ';
            lines.push(l);
            if last {
                return lines.join("\n");
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Send one command line (CRLF added) and read the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Whether the server closed the connection (EOF) within a short time.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }

    /// A whole transaction; returns the reply after the final dot.
    pub fn send_mail(&mut self, from: &str, to: &[&str], body: &[u8]) -> String {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        assert!(r.starts_with("250"), "MAIL: {r}");
        for t in to {
            let r = self.cmd(&format!("RCPT TO:<{t}>"));
            assert!(r.starts_with("250"), "RCPT: {r}");
        }
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "DATA: {r}");
        self.send(body);
        if body.ends_with(b"\r\n") {
            self.send(b".\r\n");
        } else {
            self.send(b"\r\n.\r\n");
        }
        self.reply()
    }
}

/// The QID in `250 2.0.0 Ok: queued as QID` (after BDAT LAST, Postfix says
/// `250 2.0.0 Ok: N bytes queued as QID`).
pub fn queued_as(reply: &str) -> Option<String> {
    if !reply.starts_with("250 2.0.0 Ok: ") {
        return None;
    }
    let i = reply.find("queued as ")? + "queued as ".len();
    Some(reply[i..].trim().to_string())
}

/// FNV-1a, enough to compare contents in tests.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Read every message in a stopped instance's queue straight from the log:
/// (qid, sender, recipients, content).
pub fn read_queue(queue_dir: &Path) -> Vec<(String, String, Vec<String>, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(queue_dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(n) = name.to_str().and_then(|s| s.parse::<u16>().ok()) else {
            continue;
        };
        let (log, _) = sluice_storage::log::ShardLog::open_readonly(queue_dir, n).unwrap();
        for meta in log.index().iter() {
            let m = log.read_message(&meta.qid).unwrap();
            out.push((
                m.qid.as_str().to_string(),
                m.envelope.sender.clone(),
                m.envelope
                    .recipients
                    .iter()
                    .map(|r| r.address.clone())
                    .collect(),
                m.content,
            ));
        }
    }
    out
}

/// The body of a message after our own headers: everything after the
/// first empty line.
pub fn body_of(content: &[u8]) -> &[u8] {
    match content.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &content[p + 4..],
        None => content,
    }
}

// ---------------------------------------------------------------------
// Helpers for the command-line and interoperability tests.

/// main.cf lines that send all mail to `[127.0.0.1]:port` (no MX lookup)
/// and retry deferred mail within seconds. Later main.cf lines win, so
/// this also cancels the harness's `defer_transports = smtp`.
pub fn relay_to(port: u16) -> String {
    format!(
        "defer_transports =\nrelayhost = [127.0.0.1]:{port}\n\
         minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n"
    )
}

/// A sink on a free loopback port (see `sluice_tools::load::SinkConfig`);
/// `tune` adjusts its configuration before it starts.
pub fn start_sink(
    tune: impl FnOnce(&mut sluice_tools::load::SinkConfig),
) -> sluice_tools::load::Sink {
    let mut cfg = sluice_tools::load::SinkConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    tune(&mut cfg);
    sluice_tools::load::Sink::start(cfg).expect("start the sink")
}

/// Poll `done` every 50 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run `cmd` with `input` on stdin, collecting stdout and stderr; killed
/// (and the test failed) if it has not exited within `limit`.
pub fn run_with_input(mut cmd: Command, input: &[u8], limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A writer thread: the child may not read all of it, or may answer
    // while it reads (sendmail -bs).
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let reader_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_timeout(&mut child, limit)
        .unwrap_or_else(|| panic!("{cmd:?} did not exit within {limit:?}"));
    let _ = writer.join();
    Output {
        status,
        stdout: reader_out.join().unwrap(),
        stderr: reader_err.join().unwrap(),
    }
}

/// Stdout and stderr of a command, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Instance {
    /// Run `sluice -c DIR args…` with `input` on stdin (bounded: 60 s).
    pub fn sluice_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut cmd = Command::new(SLUICE);
        cmd.arg("-c").arg(self.config_dir()).args(args);
        run_with_input(cmd, input, Duration::from_secs(60))
    }

    /// The queue a message is in (`postqueue -j`'s queue_name), or None
    /// when it is not in the queue.
    pub fn queue_of(&self, qid: &str) -> Option<String> {
        let key = format!("\"queue_id\": \"{qid}\"");
        self.queue_json()
            .iter()
            .find(|l| l.contains(&key))
            .and_then(|l| json_str(l, "queue_name"))
    }

    /// `postqueue -p` (mailq) output.
    pub fn mailq(&self) -> String {
        let out = self.sluice(&["postqueue", "-p"]);
        assert!(out.status.success(), "postqueue -p: {}", show(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Append lines to main.cf (later definitions win).
    pub fn append_main_cf(&self, lines: &str) {
        let path = self.config_dir().join("main.cf");
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(lines.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }

    /// Send one message over SMTP; returns its queue ID.
    pub fn submit(&self, from: &str, to: &[&str], body: &str) -> String {
        let mut c = self.connect();
        let r = c.reply();
        assert!(r.starts_with("220 "), "greeting: {r}");
        let r = c.cmd("EHLO client.example.test");
        assert!(r.starts_with("250"), "EHLO: {r}");
        let r = c.send_mail(from, to, body.as_bytes());
        let qid = queued_as(&r).unwrap_or_else(|| panic!("not queued: {r}"));
        c.cmd("QUIT");
        qid
    }
}

/// The string value of `"key": "value"` in one JSON line (no escapes in
/// the values the tests look at).
pub fn json_str(line: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\": \"");
    let i = line.find(&pat)? + pat.len();
    let end = line[i..].find('"')?;
    Some(line[i..i + end].to_string())
}

/// Is a program on PATH (or an absolute path that exists)?
pub fn have_program(name: &str) -> bool {
    if name.contains('/') {
        return Path::new(name).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}
