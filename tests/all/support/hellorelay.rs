//! A middlebox that mishandles large ClientHellos: it relays TCP to a server, but a connection
//! whose first TLS record is larger than `limit` bytes is reset (or held silently), as firewalls
//! that choke on a hello spanning two segments do. It records the size of each first record.

use super::Task;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OnLarge {
    Reset,
    Drop,
}

pub struct HelloRelay {
    addr: SocketAddr,
    sizes: Arc<Mutex<Vec<usize>>>,
    _task: Task,
}

impl HelloRelay {
    pub fn start(upstream: SocketAddr, limit: usize, on_large: OnLarge) -> HelloRelay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("relay address");
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let task = Task::spawn(async move {
            let listener = TcpListener::from_std(listener).expect("register the relay");
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let seen = seen.clone();
                conns.spawn(relay(client, upstream, limit, on_large, seen));
            }
        });
        HelloRelay {
            addr,
            sizes,
            _task: task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The size of the first TLS record of every connection, in order.
    pub fn sizes(&self) -> Vec<usize> {
        self.sizes.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    limit: usize,
    on_large: OnLarge,
    seen: Arc<Mutex<Vec<usize>>>,
) {
    let mut head = [0u8; 5];
    if client.read_exact(&mut head).await.is_err() {
        return;
    }
    let len = u16::from_be_bytes([head[3], head[4]]) as usize + 5;
    if let Ok(mut s) = seen.lock() {
        s.push(len);
    }
    if len > limit {
        match on_large {
            OnLarge::Reset => {
                let _ = client.set_zero_linger();
                drop(client);
            }
            OnLarge::Drop => {
                // Swallow everything, answer nothing.
                let mut buf = [0u8; 4096];
                while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
            }
        }
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
