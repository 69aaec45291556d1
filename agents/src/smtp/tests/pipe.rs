//! An in-memory, bounded, duplex byte pipe implementing futures-lite's
//! `AsyncRead`/`AsyncWrite`, and clocks for tests.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};

use crate::runtime::Clock;

/// One direction of the pipe.
#[derive(Default)]
struct Half {
    buf: VecDeque<u8>,
    cap: usize,
    /// The writing end closed or was dropped: reads give EOF when empty.
    eof: bool,
    /// The reading end was dropped: writes fail.
    gone: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

/// One end of a duplex pipe.
pub struct End {
    rx: Rc<RefCell<Half>>,
    tx: Rc<RefCell<Half>>,
}

/// Two connected ends; each direction holds at most `cap` bytes.
pub fn duplex(cap: usize) -> (End, End) {
    let a = Rc::new(RefCell::new(Half {
        cap,
        ..Half::default()
    }));
    let b = Rc::new(RefCell::new(Half {
        cap,
        ..Half::default()
    }));
    (
        End {
            rx: a.clone(),
            tx: b.clone(),
        },
        End { rx: b, tx: a },
    )
}

impl AsyncRead for End {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut h = self.rx.borrow_mut();
        if h.buf.is_empty() {
            if h.eof {
                return Poll::Ready(Ok(0));
            }
            h.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = out.len().min(h.buf.len());
        for (o, b) in out.iter_mut().zip(h.buf.drain(..n)) {
            *o = b;
        }
        wake(&mut h.writer);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for End {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut h = self.tx.borrow_mut();
        if h.gone || h.eof {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = h.cap - h.buf.len();
        if room == 0 {
            h.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        h.buf.extend(&data[..n]);
        wake(&mut h.reader);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut h = self.tx.borrow_mut();
        h.eof = true;
        wake(&mut h.reader);
        Poll::Ready(Ok(()))
    }
}

impl Drop for End {
    fn drop(&mut self) {
        let mut tx = self.tx.borrow_mut();
        tx.eof = true;
        wake(&mut tx.reader);
        drop(tx);
        let mut rx = self.rx.borrow_mut();
        rx.gone = true;
        wake(&mut rx.writer);
    }
}

/// A clock whose sleeps never end, except those of exactly `fires`, which
/// end after the other side has had plenty of polls to answer (so the
/// timeout of one stage can be made to expire, and only when the peer
/// really is silent).
#[derive(Clone, Copy, Default)]
pub struct TestClock {
    pub fires: Option<Duration>,
}

impl Clock for TestClock {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        let fire = self.fires == Some(d);
        async move {
            if !fire {
                futures_lite::future::pending::<()>().await;
            }
            for _ in 0..100 {
                futures_lite::future::yield_now().await;
            }
        }
    }
}
