//! smtpd's side of anvil: the checks Postfix's smtpd.c makes with
//! anvil's counts, with its replies and warnings.
//!
//! - At connect, before the greeting: `smtpd_client_connection_count_limit`
//!   (`Connection concurrency limit exceeded`) and
//!   `smtpd_client_connection_rate_limit` (`Connection rate limit
//!   exceeded`), both answered `421 4.7.0 <host> Error: too many connections
//!   from <addr>` and the connection closed.
//! - At MAIL FROM: `smtpd_client_message_rate_limit`, `450 4.7.1 Error: too
//!   much mail from <addr>`.
//! - At RCPT TO: `smtpd_client_recipient_rate_limit`, `450 4.7.1 Error: too
//!   many recipients from <addr>` (Postfix 3.x's wording and code).
//!
//! Clients in `smtpd_client_event_limit_exceptions` are neither counted nor
//! limited, and when no limit is set smtpd does not talk to anvil at all,
//! as Postfix does. A connection that anvil counted is uncounted when its
//! [`Registration`] is dropped, whatever ends the session.

use std::net::IpAddr;
use std::rc::Rc;

use sluice_protocols::envelope::ClientInfo;
use sluice_protocols::smtp::reply::Reply;
use sluice_protocols::smtp::server::RateEvent;

use super::service::AnvilService;
use super::{ClientKey, Event};
use crate::config::ClientLimits;

/// A connection anvil counts; dropping it tells anvil the session ended.
pub struct Registration {
    anvil: Rc<AnvilService>,
    key: Option<ClientKey>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.anvil.disconnect(key);
        }
    }
}

/// Count the connection and check the connection limits. `Err` carries
/// the 421 to send before closing; the registration is kept either way
/// (Postfix counts the refused connection until it is gone).
pub async fn connect(
    anvil: &Rc<AnvilService>,
    limits: &ClientLimits,
    service: &str,
    hostname: &str,
    client: &ClientInfo,
) -> (Option<Registration>, Result<(), Reply>) {
    if !limits.any() || limits.exempt(client.addr) {
        return (None, Ok(()));
    }
    let key = key(service, client.addr);
    let counts = anvil.connect(key.clone()).await;
    let registration = Registration {
        anvil: anvil.clone(),
        key: Some(key),
    };
    let Some(c) = counts else {
        return (Some(registration), Ok(()));
    };
    let too_many = |what: &str, n: u32| {
        tracing::warn!(
            target: "smtpd",
            "warning: {what} limit exceeded: {n} from {} for service {service}",
            client.display()
        );
        Err(Reply::new(
            421,
            (4, 7, 0),
            format!(
                "{hostname} Error: too many connections from {}",
                client.addr
            ),
        ))
    };
    let verdict = if limits.connection_count > 0 && c.count > limits.connection_count {
        too_many("Connection concurrency", c.count)
    } else if limits.connection_rate > 0 && c.rate > limits.connection_rate {
        too_many("Connection rate", c.rate)
    } else {
        Ok(())
    };
    (Some(registration), verdict)
}

/// Whether `event` is limited for this client (the session then asks).
pub fn limited(limits: &ClientLimits, addr: IpAddr, event: RateEvent) -> bool {
    let limit = match event {
        RateEvent::Mail => limits.message_rate,
        RateEvent::Rcpt => limits.recipient_rate,
    };
    limit > 0 && !limits.exempt(addr)
}

/// Count one MAIL or RCPT and answer the session.
pub async fn decide(
    anvil: &AnvilService,
    limits: &ClientLimits,
    service: &str,
    client: &ClientInfo,
    event: RateEvent,
) -> Result<(), Reply> {
    let (kind, limit) = match event {
        RateEvent::Mail => (Event::Message, limits.message_rate),
        RateEvent::Rcpt => (Event::Recipient, limits.recipient_rate),
    };
    let Some(rate) = anvil.event(key(service, client.addr), kind).await else {
        return Ok(());
    };
    if limit == 0 || rate <= limit {
        return Ok(());
    }
    let (what, text) = match event {
        RateEvent::Mail => ("Message delivery request", "too much mail"),
        RateEvent::Rcpt => ("Recipient address", "too many recipients"),
    };
    tracing::warn!(
        target: "smtpd",
        "warning: {what} rate limit exceeded: {rate} from {} for service {service}",
        client.display()
    );
    Err(Reply::new(
        450,
        (4, 7, 1),
        format!("Error: {text} from {}", client.addr),
    ))
}

fn key(service: &str, addr: IpAddr) -> ClientKey {
    ClientKey {
        service: service.to_string(),
        addr: addr.to_canonical(),
    }
}
