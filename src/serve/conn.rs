//! The exporter's connections: accepted, served and closed under limits, so that clients that
//! open connections and then say nothing cannot pile them up.
//!
//! An exporter runs for months on a port others can reach. A connection costs a socket, a task
//! and buffers; without limits, a few thousand clients that send half a request and then nothing
//! are all held for as long as they like. So:
//! - a request head must arrive within [`HEAD_TIMEOUT`] of the connection opening (or of its
//!   first byte, on a connection kept alive);
//! - a kept-alive connection with no request is closed after [`IDLE_TIMEOUT`] (Prometheus scrapes
//!   at most once a minute by default, and reconnects when it must);
//! - at most [`MAX_CONNECTIONS`] are open at once: beyond that, a new connection takes the place
//!   of the oldest one that is not being answered, so a scrape still gets through while the
//!   house is full of clients that say nothing.
//!
//! A request in progress is never cut by these limits: a scrape's run has its own bound.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

/// How long a connection may take to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a kept-alive connection may wait, idle, for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections open at once, at most.
pub const MAX_CONNECTIONS: usize = 1024;

/// "No byte of a request head seen" in [`Activity::head_began`].
const NONE: u64 = u64::MAX;

/// What a connection is doing, shared by its reader, its service and its watchdog. Times are
/// milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    /// When the first byte of a request head not yet complete arrived; [`NONE`] when none.
    head_began: AtomicU64,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// Requests answered so far, and when the last answer was ready.
    answered: AtomicU64,
    last_answer: AtomicU64,
    /// Told to close to make room for a new connection.
    evicted: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            head_began: AtomicU64::new(NONE),
            in_flight: AtomicUsize::new(0),
            answered: AtomicU64::new(0),
            last_answer: AtomicU64::new(0),
            evicted: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    /// When the connection is to be closed if nothing changes; `None` while a request is answered.
    fn deadline(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let began = self.head_began.load(Ordering::SeqCst);
        Some(if began != NONE {
            self.at(began) + HEAD_TIMEOUT
        } else if self.answered.load(Ordering::SeqCst) == 0 {
            self.opened + HEAD_TIMEOUT
        } else {
            self.at(self.last_answer.load(Ordering::SeqCst)) + IDLE_TIMEOUT
        })
    }
}

/// The socket, noting when a request head begins to arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before && self.activity.in_flight.load(Ordering::SeqCst) == 0 {
            let now = self.activity.now();
            let _ = self.activity.head_began.compare_exchange(
                NONE,
                now,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Notes a request while it is answered: its head has arrived, and until the answer is ready the
/// connection is not idle.
async fn count(State(activity): State<Arc<Activity>>, req: Request, next: Next) -> Response {
    activity.head_began.store(NONE, Ordering::SeqCst);
    activity.in_flight.fetch_add(1, Ordering::SeqCst);
    let res = next.run(req).await;
    activity.answered.fetch_add(1, Ordering::SeqCst);
    activity.last_answer.store(activity.now(), Ordering::SeqCst);
    activity.in_flight.fetch_sub(1, Ordering::SeqCst);
    res
}

/// Serves `app` on `listener` until `stop` turns true; connections under way then finish their
/// request and close.
pub async fn serve(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // The connections open, oldest first (closed ones drop out as they are met).
    let mut open: VecDeque<Weak<Activity>> = VecDeque::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or a connection reset before it was accepted: wait a
                // little rather than spin, then go on.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Full: the oldest connection that is not being answered makes room.
                if !evict_oldest(&mut open) {
                    drop(stream);
                    continue;
                }
                match slots.clone().acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => break,
                }
            }
        };
        let activity = Arc::new(Activity::new());
        if open.len() >= 2 * MAX_CONNECTIONS {
            open.retain(|w| w.strong_count() > 0);
        }
        open.push_back(Arc::downgrade(&activity));
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            connection(stream, activity, app, stop).await;
            drop(slot);
        });
    }
    // Every connection gives its slot back once its last answer is sent.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// Tells the oldest open connection that is not being answered to close; false if there is none.
fn evict_oldest(open: &mut VecDeque<Weak<Activity>>) -> bool {
    open.retain(|w| w.strong_count() > 0);
    let oldest = open.iter().position(|w| {
        w.upgrade()
            .is_some_and(|a| a.in_flight.load(Ordering::SeqCst) == 0)
    });
    let Some(i) = oldest else { return false };
    if let Some(a) = open.remove(i).and_then(|w| w.upgrade()) {
        a.evicted.notify_one();
    }
    true
}

/// One connection, from accept to close.
async fn connection(
    stream: TcpStream,
    activity: Arc<Activity>,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let app = app.layer(axum::middleware::from_fn_with_state(
        activity.clone(),
        count,
    ));
    let mut builder = http1::Builder::new();
    // The head timeout is this file's own (see `Activity`): hyper's would also close a
    // kept-alive connection after that much idleness.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = activity.deadline();
        let watchdog = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                // A request is being answered: look again later.
                None => tokio::time::sleep(HEAD_TIMEOUT).await,
            }
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = activity.evicted.notified() => return,
            () = watchdog => {
                if activity.deadline().is_some_and(|d| d <= Instant::now()) {
                    return;
                }
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
