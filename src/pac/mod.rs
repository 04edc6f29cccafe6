//! PAC files: fetched (bounded in size and time), run in a bounded JavaScript engine
//! ([`engine`]), and their answers followed entry by entry as browsers follow them ([`choice`]).
//!
//! A PAC file is outside input like a certificate or a DNS answer. It is read from `http://`,
//! `https://` or `file://` URLs only, never over [`MAX_BYTES`], with the run's resolver and
//! trust store and the step timeout; what it says is sanitized and redacted before it reaches a
//! report. A file that cannot be fetched, does not run, or answers nonsense is a finding, never
//! an abort: the run then tests the direct path and says so.

pub mod choice;
pub mod engine;

use crate::iface::Resolver;
use crate::probe::proxyenv::{PacChoice, redact_url};
use crate::probe::tls::TlsSetup;
use choice::Entry;
use engine::{Answer, Limits, Lookup};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The largest PAC file read: real ones are a few kilobytes, large ones a few hundred.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Why a PAC file gave no answer: the finding's code and a sentence.
pub type Failure = (&'static str, String);

/// A PAC file's text, or why it cannot be had (`proxy.pac_unreachable` for the network,
/// `proxy.pac_error` for a file that is not a PAC file).
pub async fn fetch(
    url: &str,
    resolver: &Result<Resolver, String>,
    tls: &TlsSetup,
    timeout: Duration,
) -> Result<(String, Option<IpAddr>), Failure> {
    let shown = crate::probe::proxyenv::shown_value(url);
    // Every reason passes the sanitizer here: some carry a library's or the system's words.
    let unreachable = |why: String| {
        let why = crate::sanitize::outside(&why);
        ("proxy.pac_unreachable", format!("{shown}: {why}"))
    };
    if let Some(path) = url.strip_prefix("file://") {
        let path = std::path::PathBuf::from(path);
        let read = tokio::task::spawn_blocking(move || {
            crate::safefile::read_bounded(&path, MAX_BYTES + 1, "the PAC file")
        })
        .await
        .map_err(|_| unreachable("it could not be read".into()))?;
        let bytes = read.map_err(|why| unreachable(redact_url(&why)))?;
        return text(&shown, bytes).map(|t| (t, None));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| unreachable("not a usable URL".into()))?;
    let host = match (parsed.scheme(), parsed.host_str()) {
        ("http" | "https", Some(h)) => h.trim_start_matches('[').trim_end_matches(']'),
        _ => {
            return Err(unreachable(
                "only http, https and file URLs are read".into(),
            ));
        }
    };
    let ip = crate::probe::lookup::first_address(resolver, host)
        .await
        .map_err(unreachable)?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let seen = Arc::new(std::sync::Mutex::new(None));
    tls.ready().await;
    let config = tls
        .client_config(&[b"http/1.1"], seen)
        .map_err(unreachable)?;
    let builder = reqwest::Client::builder()
        .no_proxy()
        .resolve(host, SocketAddr::new(ip, port))
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::limited(3))
        .timeout(timeout);
    let client = crate::iface::bind_client(builder)
        .build()
        .map_err(|_| unreachable("no HTTP client could be built".into()))?;
    let bytes = tokio::time::timeout(timeout, download(client, parsed))
        .await
        .map_err(|_| {
            unreachable(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ))
        })?
        .map_err(|why| unreachable(redact_url(&why)))?;
    text(&shown, bytes).map(|t| (t, Some(ip)))
}

/// A failed request in a few words (never the library's debug text).
fn request_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        "no connection could be opened".into()
    } else if e.is_redirect() {
        "too many redirects".into()
    } else {
        "the request failed".into()
    }
}

/// The body of a 2xx answer, read up to one byte more than [`MAX_BYTES`].
async fn download(client: reqwest::Client, url: reqwest::Url) -> Result<Vec<u8>, String> {
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| request_reason(&e))?;
    if !resp.status().is_success() {
        return Err(format!(
            "the server answered HTTP {}",
            resp.status().as_u16()
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| request_reason(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MAX_BYTES {
            break;
        }
    }
    Ok(body)
}

/// The file as script text: bounded, and text.
fn text(shown: &str, bytes: Vec<u8>) -> Result<String, Failure> {
    if bytes.len() as u64 > MAX_BYTES {
        return Err((
            "proxy.pac_error",
            format!("{shown} is larger than 1 MiB and is not run"),
        ));
    }
    String::from_utf8(bytes).map_err(|_| ("proxy.pac_error", format!("{shown} is not text")))
}

/// Runs the script for every host (off the async workers: the engine blocks) and follows each
/// answer. `Err` when the script gives no answer at all.
pub async fn choose(
    script: String,
    hosts: Vec<(String, String)>,
    resolver: &Result<Resolver, String>,
    timeout: Duration,
    near: Option<IpAddr>,
) -> Result<Vec<PacChoice>, Failure> {
    let limits = Limits {
        time: timeout.min(Duration::from_secs(5)),
        ..Limits::default()
    };
    let handle = tokio::runtime::Handle::current();
    let r = resolver.clone();
    // A look-up blocks the script, so the script's time bound holds for look-ups too.
    let until = std::time::Instant::now() + limits.time;
    let lookup: Lookup = Arc::new(move |host: &str| {
        let Ok(r) = &r else { return Vec::new() };
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Vec::new();
        }
        let found = handle.block_on(tokio::time::timeout(left.min(timeout), r.lookup_ip(host)));
        match found {
            Ok(Ok(l)) => l.iter().take(8).collect(),
            _ => Vec::new(),
        }
    });
    let my_ip = my_address(near);
    let asks = hosts.clone();
    let answers = tokio::task::spawn_blocking(move || {
        engine::evaluate(&script, &asks, lookup, my_ip, limits)
    })
    .await
    .map_err(|_| ("proxy.pac_error", "the script could not be run".to_owned()))?
    .map_err(|e| ("proxy.pac_error", e.to_string()))?;
    let mut out = Vec::new();
    let mut tried = Tried::new();
    for ((_, host), answer) in hosts.into_iter().zip(answers) {
        out.push(follow(host, answer, (resolver, timeout), &mut tried).await);
    }
    Ok(out)
}

/// The entry a browser would use: the first `DIRECT`, or the first proxy that accepts a
/// connection. When none does, the first proxy (the proxied path then shows its failure).
async fn follow(
    host: String,
    answer: Answer,
    (resolver, timeout): (&Result<Resolver, String>, Duration),
    tried: &mut Tried,
) -> PacChoice {
    let mut choice = PacChoice {
        host,
        answer: String::new(),
        via: None,
        notes: Vec::new(),
        failed: None,
    };
    let text = match answer {
        Answer::Text(t) => t,
        Answer::Threw(why) => {
            choice.failed = Some(format!("the script threw: {}", redact_url(&why)));
            return choice;
        }
        Answer::NotText(kind) => {
            choice.failed = Some(format!("the script returned a {kind}, not a string"));
            return choice;
        }
    };
    choice.answer = crate::sanitize::outside_capped(&redact_url(&text), 200);
    let entries = choice::parse(&text);
    if entries.is_empty() {
        choice.failed = Some(format!(
            "the script answered \"{}\", which names no proxy and no DIRECT",
            choice.answer
        ));
        return choice;
    }
    let mut first_proxy = None;
    for entry in entries {
        match entry {
            Entry::Direct => return choice,
            Entry::Unfollowed(what) => choice.notes.push(format!(
                "{what}: a kind of proxy this check does not follow"
            )),
            Entry::Proxy(hp) => {
                let url = format!("http://{hp}");
                first_proxy.get_or_insert_with(|| url.clone());
                let accepted = match tried.get(&hp) {
                    Some(known) => known.clone(),
                    None => {
                        let now = accepts(&hp, resolver, timeout).await;
                        tried.insert(hp.clone(), now.clone());
                        now
                    }
                };
                match accepted {
                    Ok(()) => {
                        choice.via = Some(url);
                        return choice;
                    }
                    Err(why) => choice
                        .notes
                        .push(format!("PROXY {hp}: {}", crate::sanitize::outside(&why))),
                }
            }
        }
    }
    choice.via = first_proxy;
    choice
}

/// The proxies tried in this run, and whether each accepted: one connection attempt per proxy,
/// however many hosts the PAC file sends to it.
type Tried = std::collections::HashMap<String, Result<(), String>>;

/// Whether the proxy at `host:port` accepts a TCP connection within `timeout`.
async fn accepts(
    hp: &str,
    resolver: &Result<Resolver, String>,
    timeout: Duration,
) -> Result<(), String> {
    let (host, port) = hp.rsplit_once(':').ok_or("no port")?;
    let port: u16 = port.parse().map_err(|_| "no port".to_owned())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = crate::probe::lookup::first_address(resolver, host).await?;
    let connect = crate::iface::connect(SocketAddr::new(ip, port));
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err("the connection was refused".into())
        }
        Ok(Err(_)) => Err("no connection could be opened".into()),
        Err(_) => Err("no connection in time".into()),
    }
}

/// The address this device uses towards `near` (the PAC server), or towards the documentation
/// network when none is known: a UDP socket is connected, nothing is sent.
fn my_address(near: Option<IpAddr>) -> IpAddr {
    let target = near.unwrap_or(IpAddr::from([192, 0, 2, 1]));
    crate::platform::route::source_address(target).unwrap_or(IpAddr::from([127, 0, 0, 1]))
}
