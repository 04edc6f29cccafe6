//! Raw TCP servers that are not what the client hopes for: silent, speaking another protocol,
//! cutting the connection mid-handshake — and a port where nothing listens.

use super::Task;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a [`RawTcpServer`] does with each connection it accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum RawMode {
    /// Accept, never write, keep the connection open (`tls.timeout`).
    Silent,
    /// Write these bytes at once, then keep reading and ignoring (`tls.handshake_failed`).
    Banner(Vec<u8>),
    /// Wait for the client's first bytes (the ClientHello), then reset the connection (RST).
    ResetAfterHello,
    /// Wait for the client's first bytes, then close the connection cleanly (FIN).
    CloseAfterHello,
    /// Wait for the client's first bytes, answer with these, then keep reading and ignoring
    /// (a TLS 1.0-only server's ServerHello, a proxy's answer to CONNECT).
    ReplyAfterHello(Vec<u8>),
}

impl RawMode {
    /// An SSH server's greeting: something that is plainly not TLS.
    pub fn ssh() -> RawMode {
        RawMode::Banner(b"SSH-2.0-OpenSSH_9.0\r\n".to_vec())
    }
}

/// A running raw TCP server; stops (closing every connection) when dropped.
pub struct RawTcpServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    _task: Task,
}

impl RawTcpServer {
    /// Binds `127.0.0.1:0`.
    pub fn start(mode: RawMode) -> RawTcpServer {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind a TCP port on loopback");
        RawTcpServer::from_listener(listener, mode)
    }

    /// Serves on a listener the caller bound (any address, any network namespace).
    pub fn from_listener(listener: std::net::TcpListener, mode: RawMode) -> RawTcpServer {
        let addr = listener.local_addr().expect("listener address");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = Task::spawn(async move {
            let listener = TcpListener::from_std(listener).expect("register the listener");
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                conns.spawn(handle(stream, mode.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        RawTcpServer {
            addr,
            accepted,
            _task: task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn handle(mut stream: TcpStream, mode: RawMode) {
    let mut buf = [0u8; 4096];
    match mode {
        RawMode::Silent => {
            // Hold the connection without answering; the client decides when it has waited
            // enough. Reading keeps the socket's buffer from filling up.
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        RawMode::Banner(bytes) => {
            let _ = stream.write_all(&bytes).await;
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        RawMode::ReplyAfterHello(bytes) => {
            match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let _ = stream.write_all(&bytes).await;
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        RawMode::ResetAfterHello | RawMode::CloseAfterHello => {
            // Latency samples connect and leave without a byte: a closed read ends it here.
            match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            if mode == RawMode::ResetAfterHello {
                // Linger 0: close() sends RST instead of FIN.
                let _ = stream.set_zero_linger();
            } else {
                let _ = stream.shutdown().await;
            }
            drop(stream);
        }
    }
}

/// A loopback address where nothing listens: bound to learn a free port, then released.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a TCP port on loopback");
    let addr = listener.local_addr().expect("listener address");
    drop(listener);
    addr
}
