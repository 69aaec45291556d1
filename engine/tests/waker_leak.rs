//! Regression: a pending I/O future polled again and again (an `accept()`
//! raced against a timer, as every shard's listener loop once did every
//! 50 ms) must not leak a waker reference per poll. glommio 0.9.0 did, and
//! after 32,767 polls its 16-bit task reference count overflowed and the
//! shard panicked ("Waker invariant broken", about 27 minutes in). The fix
//! lives in third_party/glommio (SLUICE-PATCHES.md); these tests drive the
//! same code paths through more than 40,000 wake-ups in a few seconds.
//!
//! Each wake-up is a yield, not a timer: what leaked was one waker per
//! poll of the pending I/O future, whatever woke its task, and a yield
//! costs no system call, so the test stays fast on a loaded machine
//! (40,000 one-microsecond timers took minutes there). One short run
//! through real timers keeps the original path covered too.

use std::pin::pin;
use std::time::Duration;

use futures_lite::future;
use glommio::{LocalExecutorBuilder, Placement};

/// Comfortably past the 16-bit reference count (32,767).
const TICKS: usize = 40_000;
/// Wake-ups through glommio's timers, after the yields.
const TIMER_TICKS: usize = 1_000;

fn executor() -> glommio::LocalExecutor {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1 << 20)
        .make()
        .expect("a glommio executor (io_uring must be available)")
}

#[test]
fn a_pending_accept_outlives_40000_wakeups() {
    executor().run(async {
        let listener = glommio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut accept = pin!(listener.accept());
        for _ in 0..TICKS {
            // The shard's old loop: or(accept, a 50 ms stop poll).
            let ticked = future::or(
                async {
                    (&mut accept).await.unwrap();
                    false
                },
                async {
                    future::yield_now().await;
                    true
                },
            )
            .await;
            assert!(ticked, "nobody connected yet");
        }
        for _ in 0..TIMER_TICKS {
            let ticked = future::or(
                async {
                    (&mut accept).await.unwrap();
                    false
                },
                async {
                    glommio::timer::sleep(Duration::from_micros(1)).await;
                    true
                },
            )
            .await;
            assert!(ticked, "nobody connected yet");
        }
        // The same accept still works: its waker was kept, once.
        let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
        let stream = accept.await.unwrap();
        assert_eq!(
            stream.peer_addr().unwrap(),
            client.join().unwrap().local_addr().unwrap()
        );
    });
}

#[test]
fn a_pending_shared_channel_receive_outlives_40000_wakeups() {
    let (tx, rx) = glommio::channels::shared_channel::new_bounded::<u32>(8);
    let (ticked_out, done_ticking) = std::sync::mpsc::channel();
    let receiver = std::thread::spawn(move || {
        executor().run(async move {
            let rx = rx.connect().await;
            let mut recv = pin!(rx.recv());
            for _ in 0..TICKS {
                let ticked = future::or(
                    async {
                        (&mut recv).await;
                        false
                    },
                    async {
                        future::yield_now().await;
                        true
                    },
                )
                .await;
                if !ticked {
                    return None;
                }
            }
            ticked_out.send(()).unwrap();
            recv.await
        })
    });
    let sender = std::thread::spawn(move || {
        executor().run(async move {
            let tx = tx.connect().await;
            // Sent once the receiver is past the overflow point (blocking
            // this test executor's thread is harmless).
            done_ticking.recv().unwrap();
            tx.send(7).await.unwrap();
        })
    });
    let got = receiver.join().expect("the receiving executor panicked");
    sender.join().unwrap();
    assert_eq!(got, Some(7));
}
