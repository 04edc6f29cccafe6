//! One connection attempt at a time to an encrypted DNS server, shared by every question that
//! needs it.
//!
//! hickory opens a new connection for a question that finds none ready, and questions asked at
//! once all find none: a run that asks a DNS-over-HTTPS control about two names (an A and an
//! AAAA question each) made four TLS handshakes to it, and an encrypted `--resolver` one per
//! endpoint. Each handshake costs a round trip of the server's time and a key exchange of ours,
//! and a server that is not there was asked four times to say so. Here the questions that find a
//! connection attempt under way wait for it: they share its connection, or its failure.
//!
//! Plain DNS is left as hickory does it: each UDP question goes out on a socket of its own
//! (a fresh source port is part of what makes an answer hard to forge), and a TCP connection is
//! opened only to ask again what was truncated.

use hickory_resolver::ConnectionProvider;
use hickory_resolver::PoolContext;
use hickory_resolver::config::ConnectionConfig;
use hickory_resolver::net::NetError;
use hickory_resolver::net::xfer::Protocol;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::Shared;

/// Attempts under way, by what they reach: a caller joins the one under way or starts one.
pub struct Attempts<K, F: Future> {
    under_way: Mutex<HashMap<K, Shared<F>>>,
}

impl<K: Eq + Hash, F: Future> Default for Attempts<K, F>
where
    F::Output: Clone,
{
    fn default() -> Self {
        Attempts {
            under_way: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, F: Future> Attempts<K, F>
where
    F::Output: Clone,
{
    /// The attempt under way for `key`, or a new one from `start` when none is (a finished
    /// attempt is not joined: hickory asks again only when the connection it gave is gone).
    pub fn join_or_start<E>(
        &self,
        key: K,
        start: impl FnOnce() -> Result<F, E>,
    ) -> Result<Shared<F>, E> {
        let mut under_way = self.under_way.lock().unwrap_or_else(|p| p.into_inner());
        under_way.retain(|_, attempt| attempt.peek().is_none());
        if let Some(attempt) = under_way.get(&key) {
            return Ok(attempt.clone());
        }
        let attempt = start()?.shared();
        under_way.insert(key, attempt.clone());
        Ok(attempt)
    }
}

type Connecting<P> = Pin<
    Box<dyn Future<Output = Result<<P as ConnectionProvider>::Conn, NetError>> + Send + 'static>,
>;

/// hickory's connection provider `P`, with the encrypted connections' attempts shared.
pub struct SharedConnections<P: ConnectionProvider> {
    inner: P,
    attempts: Arc<Attempts<(IpAddr, u16, Protocol), P::FutureConn>>,
}

impl<P: ConnectionProvider> Clone for SharedConnections<P> {
    fn clone(&self) -> Self {
        SharedConnections {
            inner: self.inner.clone(),
            attempts: self.attempts.clone(),
        }
    }
}

impl<P: ConnectionProvider> SharedConnections<P> {
    pub fn new(inner: P) -> Self {
        SharedConnections {
            inner,
            attempts: Arc::new(Attempts::default()),
        }
    }
}

impl<P> ConnectionProvider for SharedConnections<P>
where
    P: ConnectionProvider,
    P::FutureConn: Unpin,
{
    type Conn = P::Conn;
    type FutureConn = Connecting<P>;
    type RuntimeProvider = P::RuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        let protocol = config.protocol.to_protocol();
        if !protocol.is_encrypted() {
            return Ok(Box::pin(self.inner.new_connection(ip, config, cx)?));
        }
        let attempt = self
            .attempts
            .join_or_start((ip, config.port, protocol), || {
                self.inner.new_connection(ip, config, cx)
            })?;
        Ok(Box::pin(attempt))
    }

    fn runtime_provider(&self) -> &Self::RuntimeProvider {
        self.inner.runtime_provider()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    type Slow = Pin<Box<dyn Future<Output = Result<usize, String>> + Send>>;

    fn slow(started: &Arc<AtomicUsize>, ok: bool) -> Result<Slow, String> {
        let n = started.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if ok {
                Ok(n)
            } else {
                Err(format!("attempt {n} failed"))
            }
        }))
    }

    /// Callers that come while an attempt is under way share it, its result or its failure; a
    /// caller after it finished starts another; another server gets its own.
    #[tokio::test]
    async fn callers_share_the_attempt_under_way() {
        let attempts: Attempts<&str, Slow> = Attempts::default();
        let started = Arc::new(AtomicUsize::new(0));
        let joined: Vec<_> = (0..4)
            .map(|_| attempts.join_or_start("a", || slow(&started, true)))
            .collect::<Result<_, _>>()
            .expect("started");
        let other = attempts
            .join_or_start("b", || slow(&started, false))
            .expect("started");
        assert_eq!(started.load(Ordering::SeqCst), 2, "one attempt per server");
        for result in futures_util::future::join_all(joined).await {
            assert_eq!(result, Ok(1));
        }
        assert_eq!(other.await, Err("attempt 2 failed".to_owned()));

        let again = attempts
            .join_or_start("a", || slow(&started, true))
            .expect("started");
        assert_eq!(again.await, Ok(3), "a finished attempt is not joined");
        let refused: Result<Shared<Slow>, String> =
            attempts.join_or_start("c", || Err("no socket".to_owned()));
        assert!(refused.is_err());
        assert_eq!(started.load(Ordering::SeqCst), 3);
    }
}
