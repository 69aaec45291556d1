//! The smtpd driver: one task per SMTP connection on a shard.
//!
//! It moves bytes between a socket and the sans-IO
//! [`Session`](sluice_protocols::smtp::server::Session), answers the
//! session's questions (relay control via [`crate::smtpd_check`]), and when a
//! message is complete runs cleanup, hands the record to the shard's group
//! committer and tells the client `250 … queued as QID` only once the fsync
//! covering it returned. SMTP AUTH requests (`Want::Authenticate`) go to
//! the listener's SASL backend ([`crate::sasl`]), which verifies them off
//! the shard; the session waits, the shard does not.
//!
//! Trust: everything from the socket is hostile. Bounds: the session caps
//! command lines at `line_length_limit` and content at
//! `message_size_limit`, and reserves content on the shard's
//! `sluice_inflight_memory_limit` budget before holding it (451 4.3.0
//! beyond it; the reservation lives until the commit returned); the
//! driver's own buffer ([`crate::smtpd_input`]) is 4 KiB while a client is
//! idle and at most one 64 KiB read plus one unfinished command line while
//! it streams; every read waits at most `smtpd_timeout`.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use sluice_agents::cleanup::{cleanup, CleanupInput, Origin, ReceivedTls};
use sluice_protocols::envelope::{ClientInfo, Protocol};
use sluice_protocols::smtp::reply::Reply;
use sluice_protocols::smtp::server::{
    AuthVerdict, Policy, RateEvent, SaslLogin, ServerConfig, Session, Want,
};
use sluice_storage::record::{MessageRecord, Record};

use crate::anvil;
use crate::commit::CommitError;
use crate::config::{HeaderRewriteClients, SmtpdParams};
use crate::sasl::{Authenticator, Peer};
use crate::shard::Shard;
use crate::smtpd_check::check_recipient;
use crate::smtpd_input::{Input, ReadOutcome};
use crate::smtpd_tls::{self, Conn};
use crate::tls::Level;

/// One listener's view: its smtpd parameters (main.cf plus `-o` overrides).
pub struct SmtpdService {
    /// The master.cf service name (anvil's key, and its log lines).
    pub name: String,
    /// master.cf maxproc (else default_process_limit); 0 = no limit.
    pub process_limit: u32,
    pub server: Rc<ServerConfig>,
    pub params: SmtpdParams,
    /// The SASL backend, when `smtpd_sasl_auth_enable = yes`.
    pub sasl: Option<Authenticator>,
    /// This shard's TLS server config (shared certificates, the shard's
    /// own session cache), when the listener has TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    hostname: String,
}

impl SmtpdService {
    pub fn new(
        name: &str,
        process_limit: u32,
        params: SmtpdParams,
        hostname: &str,
    ) -> SmtpdService {
        let server = ServerConfig {
            hostname: hostname.to_string(),
            banner: params.smtpd_banner.clone(),
            message_size_limit: params.message_size_limit,
            recipient_limit: params.smtpd_recipient_limit,
            line_length_limit: params.line_length_limit,
            hard_error_limit: params.smtpd_hard_error_limit,
            soft_error_limit: params.smtpd_soft_error_limit,
            junk_command_limit: params.smtpd_junk_command_limit,
            error_sleep: params.smtpd_error_sleep_time,
            bare_newline: params.smtpd_forbid_bare_newline,
            forbid_unauth_pipelining: params.smtpd_forbid_unauth_pipelining,
            disable_vrfy: params.disable_vrfy_command,
            sasl_auth_enable: params.sasl.auth_enable,
            starttls: params.tls.offers_starttls(),
            tls_required: params.tls.level == Level::Encrypt,
            tls_auth_only: params.tls.auth_only,
        };
        let sasl = params.sasl.backend.clone().map(Authenticator::new);
        SmtpdService {
            name: name.to_string(),
            process_limit,
            server: Rc::new(server),
            tls: params.tls.for_shard(),
            params,
            sasl,
            hostname: hostname.to_string(),
        }
    }
}

struct RelayPolicy<'a> {
    shard: &'a Shard,
    service: &'a SmtpdService,
    client: &'a ClientInfo,
    /// The client's SASL login (a copy of the session's).
    login: Option<&'a SaslLogin>,
}

impl Policy for RelayPolicy<'_> {
    fn check_recipient(&mut self, sender: &str, recipient: &str) -> Result<(), Reply> {
        let p = self.shard.params();
        let resolve = self.shard.resolve();
        let mut ctx = p.relay_context(self.client.addr, &resolve);
        ctx.sasl_username = self.login.map(|l| l.username.as_str());
        let maps = &self.service.params.sasl.sender_login_maps;
        ctx.sender_login_maps = (!maps.is_empty()).then_some(maps);
        let verdict = check_recipient(
            &self.service.params.relay_restrictions,
            &self.service.params.recipient_restrictions,
            &ctx,
            sender,
            recipient,
        );
        if let Err(r) = &verdict {
            tracing::info!(
                target: "smtpd",
                "NOQUEUE: reject: RCPT from {}: {}; from=<{}> to=<{}> proto={} helo=<{}>",
                self.client.display(),
                r,
                sender,
                recipient,
                self.client.protocol.as_str(),
                self.client.helo.as_deref().unwrap_or(""),
            );
        }
        verdict
    }

    fn rate_limited(&mut self, event: RateEvent) -> bool {
        anvil::client::limited(&self.service.params.client_limits, self.client.addr, event)
    }
}

/// The client's name for Received: and logs. Reverse DNS comes with the
/// resolver (delivery issue); until then loopback is `localhost` and
/// everything else `unknown`, Postfix's word for "no verified name".
fn client_name(addr: IpAddr) -> String {
    if addr.is_loopback() || addr.to_canonical().is_loopback() {
        "localhost".to_string()
    } else {
        "unknown".to_string()
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Bytes already waiting on a new connection, before we said anything: a
/// client that talks before the greeting (pre-greet pipelining).
fn pending_before_greeting(stream: &TcpStream) -> Option<Vec<u8>> {
    let mut buf = [0u8; 512];
    // SAFETY: recv into a stack buffer we own, on a socket we own; MSG_PEEK
    // leaves the bytes in place and MSG_DONTWAIT never blocks the shard.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    (n > 0).then(|| buf[..n as usize].to_vec())
}

/// Serve one SMTP connection to the end.
pub async fn serve(shard: Rc<Shard>, service: Rc<SmtpdService>, mut stream: TcpStream) {
    let peer: SocketAddr = match stream.peer_addr() {
        Ok(p) => p,
        Err(_) => return,
    };
    let _ = stream.set_nodelay(true);
    // smtpd_timeout bounds every read and every write (a client that stops
    // reading our replies must not hold the session forever).
    let timeout = service.params.smtpd_timeout;
    if !timeout.is_zero() {
        let _ = stream.set_read_timeout(Some(timeout));
        let _ = stream.set_write_timeout(Some(timeout));
    }
    let addr = peer.ip().to_canonical();
    let local_addr = stream.local_addr().ok().map(|a| a.ip().to_canonical());
    let mut client = ClientInfo {
        name: client_name(addr),
        addr,
        port: peer.port(),
        helo: None,
        protocol: Protocol::Smtp,
    };
    tracing::info!(target: "smtpd", "connect from {}", client.display());
    let mut session = Session::with_budget(service.server.clone(), shard.content_budget.clone());
    let limits = &service.params.client_limits;
    let (_anvil, admitted) = anvil::client::connect(
        &shard.anvil,
        limits,
        &service.name,
        &service.hostname,
        &client,
    )
    .await;
    if let Err(reply) = admitted {
        let _ = stream.write_all(reply.to_wire_string().as_bytes()).await;
        let _ = stream.close().await;
        log_disconnect(&client, &session);
        return;
    }
    let early = if service.server.forbid_unauth_pipelining && !service.params.tls.wrappermode {
        pending_before_greeting(&stream)
    } else {
        None
    };
    let mut stream = Conn::Plain(stream);
    if service.params.tls.wrappermode {
        // Implicit TLS (port 465): the handshake comes before the 220.
        if !start_tls(&service, &mut stream, &mut session, &client).await {
            log_disconnect(&client, &session);
            return;
        }
    }
    let mut input = Input::new(shard.clone());
    if let Some(early) = early {
        // Hand the early bytes to the session before the greeting: it
        // answers 554 5.5.0 and asks us to close.
        input.push_early(&early);
    }
    if input.is_empty() {
        session.greet();
    }

    let mut pipelining_logged = false;
    // The session's login, copied for the restrictions (the session is
    // borrowed while they run).
    let mut login: Option<SaslLogin> = None;
    'conn: loop {
        // Feed what we have; a complete message is stored before we go on.
        let mut pos = 0;
        loop {
            let refusals = shard.content_budget.refusals();
            let p = {
                let mut policy = RelayPolicy {
                    shard: &shard,
                    service: &service,
                    client: &client,
                    login: login.as_ref(),
                };
                session.receive(&input.pending()[pos..], &mut policy)
            };
            if shard.content_budget.refusals() != refusals {
                log_no_memory(&shard, &client);
            }
            pos += p.consumed;
            // Reject lines name the session's HELO and protocol so far, as
            // Postfix's do (store_message sets them from the message too).
            if client.helo.as_deref() != session.helo() {
                client.helo = session.helo().map(str::to_owned);
            }
            client.protocol = session.protocol();
            if !pipelining_logged {
                if let Some(after) = session.improper_pipelining() {
                    pipelining_logged = true;
                    tracing::info!(
                        target: "smtpd",
                        "improper command pipelining after {after} from {}",
                        client.display()
                    );
                }
            }
            if let Some(mechanism) = session.take_auth_aborted() {
                tracing::warn!(
                    target: "smtpd",
                    "warning: {}: SASL {} authentication aborted",
                    client.display(),
                    mechanism.name()
                );
            }
            match p.want {
                Want::More => break,
                Want::Message => {
                    store_message(
                        &shard,
                        &mut session,
                        &mut client,
                        ReceivedHeaders {
                            tls: service.params.tls.received_header,
                            sasl: service.params.sasl.authenticated_header,
                            rewrite_clients: service.params.header_rewrite_clients,
                        },
                    )
                    .await;
                }
                Want::Authenticate => {
                    let peer = Peer {
                        client: addr,
                        local: local_addr,
                        // Dovecot's `secured`: TLS is active.
                        secured: session.is_tls(),
                    };
                    authenticate(&service, &mut session, &client, peer).await;
                    login = session.sasl_login().cloned();
                }
                Want::Decide(event) => {
                    let answer = anvil::client::decide(
                        &shard.anvil,
                        &service.params.client_limits,
                        &service.name,
                        &client,
                        event,
                    )
                    .await;
                    session.decide(answer);
                }
                Want::Close => {
                    let _ = flush(&mut stream, &mut session).await;
                    break 'conn;
                }
                Want::StartTls => {
                    // The session consumed the input to its end: what
                    // followed STARTTLS is dropped, never answered.
                    input.consume(pos);
                    pos = 0;
                    let discarded = session.plaintext_discarded();
                    if discarded > 0 {
                        smtpd_tls::log_discarded(&client, discarded);
                    }
                    if flush(&mut stream, &mut session).await.is_err()
                        || !start_tls(&service, &mut stream, &mut session, &client).await
                    {
                        break 'conn;
                    }
                    // The handshake logged the client out (RFC 4954 §4).
                    login = session.sasl_login().cloned();
                }
            }
        }
        input.consume(pos);
        if let Some(d) = session.reply_delay() {
            glommio::timer::sleep(d).await;
        }
        if flush(&mut stream, &mut session).await.is_err() {
            break;
        }
        match input.read(&mut stream).await {
            ReadOutcome::Data => {}
            ReadOutcome::Eof => {
                tracing::info!(target: "smtpd", "lost connection after {} from {}", session.last_command(), client.display());
                break;
            }
            ReadOutcome::Error(e) => {
                tracing::info!(target: "smtpd", "lost connection from {}: {e}", client.display());
                break;
            }
            ReadOutcome::Timeout => {
                tracing::info!(target: "smtpd", "timeout after {} from {}", session.last_command(), client.display());
                session.on_timeout();
                let _ = flush(&mut stream, &mut session).await;
                break;
            }
            ReadOutcome::Shutdown => {
                session.shutdown();
                let _ = flush(&mut stream, &mut session).await;
                break;
            }
        }
    }
    let _ = stream.close().await;
    drop(input);
    log_disconnect(&client, &session);
}

fn log_disconnect(client: &ClientInfo, session: &Session) {
    tracing::info!(
        target: "smtpd",
        "disconnect from {} {}",
        client.display(),
        session.command_stats()
    );
}

/// The server handshake; `false` when it failed (logged, socket closed).
async fn start_tls(
    service: &SmtpdService,
    stream: &mut Conn,
    session: &mut Session,
    client: &ClientInfo,
) -> bool {
    let tls = &service.params.tls;
    let Some(config) = service.tls.clone() else {
        return false;
    };
    smtpd_tls::log_started(tls, client);
    match stream.accept(config, tls).await {
        Ok(info) => {
            smtpd_tls::log_established(tls, client, &info);
            session.tls_established(info);
            true
        }
        Err(why) => {
            smtpd_tls::log_failed(client, session.last_command(), &why);
            false
        }
    }
}

/// Verifies the session's AUTH request with the listener's backend (off
/// the shard) and logs a failure as Postfix does.
async fn authenticate(
    service: &SmtpdService,
    session: &mut Session,
    client: &ClientInfo,
    peer: Peer,
) {
    let Some(request) = session.take_auth_request() else {
        return;
    };
    let (mechanism, username) = (request.mechanism, printable(&request.username));
    let checked = match &service.sasl {
        Some(sasl) => sasl.authenticate(request, peer).await,
        // The session asks only when AUTH is enabled, which configures a
        // backend; should that ever differ, nobody logs in.
        None => crate::sasl::Checked {
            verdict: AuthVerdict::Temp {
                reason: "(reason unavailable)".into(),
            },
            problem: Some("SASL: no authentication backend configured".into()),
        },
    };
    if let Some(problem) = &checked.problem {
        tracing::warn!(target: "smtpd", "warning: {problem}");
    }
    match &checked.verdict {
        AuthVerdict::Ok { .. } => {}
        AuthVerdict::Fail { reason } | AuthVerdict::Temp { reason } => tracing::warn!(
            target: "smtpd",
            "warning: {}: SASL {} authentication failed: {}, sasl_username={}",
            client.display(),
            mechanism.name(),
            reason,
            username
        ),
    }
    session.auth_done(checked.verdict);
}

/// Postfix's `printable()` for log lines: control characters become `?`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A message's content did not fit in the shard's budget: the session
/// reads it to its end and answers 451 4.3.0; the operator learns why.
fn log_no_memory(shard: &Shard, client: &ClientInfo) {
    let budget = &shard.content_budget;
    tracing::warn!(
        target: "smtpd",
        "warning: {}: message content refused: in-flight memory limit reached ({} of {} bytes on shard {}; sluice_inflight_memory_limit)",
        client.display(),
        budget.used(),
        budget.limit(),
        shard.id
    );
}

async fn flush(stream: &mut Conn, session: &mut Session) -> std::io::Result<()> {
    let out = session.output();
    if out.is_empty() {
        return Ok(());
    }
    let r = stream.write_all(out).await;
    out.clear();
    r
}

/// What the listener adds to the Received: header.
#[derive(Clone, Copy)]
struct ReceivedHeaders {
    /// `smtpd_tls_received_header`: the `(using …)` clause.
    tls: bool,
    /// `smtpd_sasl_authenticated_header`: `(Authenticated sender: …)`.
    sasl: bool,
    /// `local_header_rewrite_clients`: whose missing headers are added.
    rewrite_clients: HeaderRewriteClients,
}

/// Cleanup, commit, and tell the session the outcome.
async fn store_message(
    shard: &Shard,
    session: &mut Session,
    client: &mut ClientInfo,
    headers: ReceivedHeaders,
) {
    let tls_info = session.tls_info().cloned();
    let tls = tls_info.as_ref();
    // The content's memory stays reserved until the commit returned (on
    // every way out of this function, by drop). It covers the content
    // twice: cleanup's copy, then the commit's encoding of that copy once
    // the original is dropped.
    let _held = session.take_reservation();
    let Some(msg) = session.take_message() else {
        session.message_done(Err(Reply::new(451, (4, 3, 0), "Error: internal error")));
        return;
    };
    client.helo = msg.helo.clone();
    client.protocol = msg.protocol;
    let arrival_us = now_us();
    let qid = shard.qidgen.borrow_mut().next(arrival_us);
    let mut envelope = msg.envelope;
    let content = msg.content;
    let cleaned = cleanup(
        &shard.cleanup(),
        CleanupInput {
            qid: qid.as_str(),
            arrival_secs: (arrival_us / 1_000_000) as i64,
            origin: Origin::Smtp { client },
            envelope: &mut envelope,
            content: &content,
            authenticated: session.sasl_login().is_some(),
            authenticated_sender: session
                .sasl_login()
                .filter(|_| headers.sasl)
                .map(|l| l.username.as_str()),
            tls: tls.map(|info| ReceivedTls {
                info,
                clause: headers.tls,
            }),
            rewrite_client: headers.rewrite_clients.matches(
                client.addr,
                shard
                    .params()
                    .mynetworks
                    .iter()
                    .any(|n| n.contains(client.addr)),
                session.sasl_login().is_some(),
            ),
        },
    );
    drop(content);
    let cleaned = match cleaned {
        Ok(c) => c,
        Err(e) => {
            let reply = e.reply();
            tracing::info!(
                target: "cleanup",
                "{qid}: reject: {e}; from=<{}> proto={} helo=<{}>: {}",
                envelope.sender,
                client.protocol.as_str(),
                client.helo.as_deref().unwrap_or(""),
                reply
            );
            session.message_done(Err(reply));
            return;
        }
    };
    let message_id = cleaned.message_id.clone();
    let record = Record::Message(MessageRecord {
        qid: qid.clone(),
        arrival_us,
        envelope,
        client: Some(client.clone()),
        content: cleaned.content,
    });
    match shard.committer.commit(&record).await {
        Ok(()) => {
            tracing::info!(
                target: "smtpd",
                "{qid}: client={}{}",
                client.display(),
                sasl_log_fields(session)
            );
            tracing::info!(target: "cleanup", "{qid}: message-id={message_id}");
            session.message_done(Ok(qid.as_str()));
            if let Record::Message(rec) = record {
                shard.active.accept_new(rec);
            }
        }
        Err(CommitError::NoSpace) => {
            tracing::warn!(target: "cleanup", "{qid}: queue file write error: no space left on device");
            session.message_done(Err(Reply::new(
                452,
                (4, 3, 1),
                "Insufficient system storage",
            )));
        }
        Err(CommitError::Io) => {
            tracing::warn!(target: "cleanup", "{qid}: queue file write error");
            session.message_done(Err(Reply::new(
                451,
                (4, 3, 0),
                "Error: queue file write error",
            )));
        }
    }
}

/// Postfix's `smtpd_sasl_mail_log` fields after `client=name[addr]`:
/// `, sasl_method=PLAIN, sasl_username=jane[, sasl_sender=x]`.
fn sasl_log_fields(session: &Session) -> String {
    let mut fields = String::new();
    if let Some(login) = session.sasl_login() {
        fields.push_str(", sasl_method=");
        fields.push_str(login.method.name());
        fields.push_str(", sasl_username=");
        fields.push_str(&login.username);
    }
    if let Some(sender) = session.sasl_sender() {
        fields.push_str(", sasl_sender=");
        fields.push_str(sender);
    }
    fields
}
