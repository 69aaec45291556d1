//! glommio implementations of the small traits agents are written
//! against: a clock for timeouts and a DNS transport over UDP/TCP.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use sluice_agents::dns::{wire, DnsTransport};
use sluice_agents::runtime::Clock;

/// glommio's timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlommioClock;

impl Clock for GlommioClock {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        glommio::timer::sleep(d)
    }
}

/// DNS queries over glommio sockets. Replies larger than this are refused
/// (TCP answers carry a 2-byte length, so 64 KiB is the protocol's bound).
const MAX_DNS_REPLY: usize = 65_535;

#[derive(Clone, Copy, Debug, Default)]
pub struct GlommioDns;

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "DNS query timed out")
}

impl DnsTransport for GlommioDns {
    fn udp(
        &self,
        server: SocketAddr,
        query: &[u8],
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Vec<u8>>> {
        let query = query.to_vec();
        async move {
            let bind: SocketAddr = if server.is_ipv6() {
                "[::]:0".parse().map_err(io::Error::other)?
            } else {
                "0.0.0.0:0".parse().map_err(io::Error::other)?
            };
            let sock = glommio::net::UdpSocket::bind(bind).map_err(io::Error::from)?;
            sock.set_read_timeout(Some(timeout))
                .map_err(io::Error::from)?;
            sock.send_to(&query, server)
                .await
                .map_err(io::Error::from)?;
            let deadline = std::time::Instant::now() + timeout;
            let mut buf = vec![0u8; MAX_DNS_REPLY];
            // Keep only a datagram from the server that answers this query
            // (same ID, response bit): spoofed or stale ones are dropped.
            loop {
                if std::time::Instant::now() >= deadline {
                    return Err(timed_out());
                }
                let (n, from) = sock.recv_from(&mut buf).await.map_err(|e| {
                    let e = io::Error::from(e);
                    if e.kind() == io::ErrorKind::TimedOut {
                        timed_out()
                    } else {
                        e
                    }
                })?;
                if from == server && wire::is_reply_to(&query, &buf[..n]) {
                    buf.truncate(n);
                    return Ok(buf);
                }
            }
        }
    }

    fn tcp(
        &self,
        server: SocketAddr,
        query: &[u8],
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Vec<u8>>> {
        let query = query.to_vec();
        async move {
            let work = async {
                let mut s = glommio::net::TcpStream::connect(server)
                    .await
                    .map_err(io::Error::from)?;
                let framed = wire::tcp_frame(&query)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
                s.write_all(&framed).await?;
                let mut lenb = [0u8; 2];
                s.read_exact(&mut lenb).await?;
                let n = wire::tcp_reply_len(lenb);
                let mut buf = vec![0u8; n];
                s.read_exact(&mut buf).await?;
                Ok(buf)
            };
            futures_lite::future::or(work, async {
                glommio::timer::sleep(timeout).await;
                Err(timed_out())
            })
            .await
        }
    }
}
