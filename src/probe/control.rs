//! The control resolver: a second opinion on a name, from a resolver the local network does not
//! control (DNS over HTTPS or over TLS), and what the two answers say together.
//!
//! Asking the suspect resolver again cannot tell a filter from a name that does not exist, nor a
//! rewritten answer from a CDN's local one. The control can: NXDOMAIN here and addresses there is
//! a filter; other addresses there are judged by the certificate the local address serves for the
//! name — the service's own is a CDN's local answer (a pass), another is a rewritten answer
//! (`dns.rewritten`). By default the control is asked only about a service name whose local
//! answer is already suspicious, so a healthy run sends nothing more; a control named with
//! `--control` or the profile's `control` key is asked about every name.
//!
//! Shared below the probes: the dns stage's hook ([`judge`]) and anyone who wants the per-name
//! comparison ([`compare`], [`Comparison`]). The control is built once per run
//! and reached at most once per run when it fails: an unreachable control is said once, in the
//! first finding that asked, and is never a failure of the run.

use super::dohdot::{self, TlsMaker};
use crate::iface::Resolver;
use crate::model::{Check, Role, Status};
use crate::profile::Endpoint;
use crate::resolverurl::{ControlSetting, DnsServer, Transport};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// The local answers that call for a second opinion even when the control was not named.
const SUSPICIOUS: [&str; 9] = [
    "dns.nxdomain",
    "dns.no_address",
    "dns.sinkholed",
    "dns.block_page",
    "dns.filtered",
    "dns.refused",
    "dns.servfail",
    "dns.timeout",
    "dns.error",
];

/// The run's control resolver: what was asked for, and the resolver once built.
pub struct Control {
    server: Option<DnsServer>,
    every_name: bool,
    tls: TlsMaker,
    timeout: Duration,
    built: OnceCell<Result<Resolver, String>>,
    unreachable_said: AtomicBool,
    /// Why the run's encrypted `--resolver` is silent, once asked (see [`judge`]).
    resolver_silent: OnceCell<Option<String>>,
}

/// What the two answers say together: the `verdict` of a dns check's `control` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The control gives the same addresses, or no address either.
    Agrees,
    /// No usable address here (NXDOMAIN, no records, a sinkhole, a block page, a refusal),
    /// addresses from the control: the local resolver hides the name.
    Filtered,
    /// Other addresses here than from the control, and the local one serves the service's own
    /// certificate: a CDN's local answer.
    Cdn,
    /// Other addresses here, and the local one serves a certificate that is not the service's.
    Rewritten,
    /// Other addresses here, and the local one could not be asked for its certificate.
    Unverified,
    /// The control gave no answer (unreachable, TLS failure, timeout).
    Unreachable,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Agrees => "agrees",
            Verdict::Filtered => "filtered",
            Verdict::Cdn => "cdn",
            Verdict::Rewritten => "rewritten",
            Verdict::Unverified => "unverified",
            Verdict::Unreachable => "unreachable",
        }
    }
}

/// The control's answer for one name.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Addrs(Vec<IpAddr>),
    /// No address: NXDOMAIN (`nx`) or no records.
    NoAddress {
        nx: bool,
    },
    /// No answer at all, with why.
    Failed(String),
}

/// The per-name comparison: the control's answer, how long it took, and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub verdict: Verdict,
    pub answer: Answer,
    pub latency: Duration,
    /// The local address whose certificate decided, and whether it was the service's own.
    pub certificate: Option<(IpAddr, bool)>,
}

impl Control {
    /// The run's control as `setting` asks; `tls` gives the run's trust.
    pub fn new(setting: &ControlSetting, tls: TlsMaker, timeout: Duration) -> Control {
        let (server, every_name) = setting
            .server()
            .map_or((None, false), |(s, every)| (Some(s), every));
        Control {
            server,
            every_name,
            tls,
            timeout,
            built: OnceCell::new(),
            unreachable_said: AtomicBool::new(false),
            resolver_silent: OnceCell::new(),
        }
    }

    /// The control's URL, if one is asked.
    pub fn server(&self) -> Option<&DnsServer> {
        self.server.as_ref()
    }

    /// Is the control asked about every name (named by the user), or only suspicious ones?
    pub fn every_name(&self) -> bool {
        self.every_name
    }

    /// Is this local answer for this endpoint one the control should see?
    pub fn wanted(&self, code: &str, ep: &Endpoint) -> bool {
        self.server.is_some()
            && (self.every_name || (ep.role == Role::Service && SUSPICIOUS.contains(&code)))
    }

    /// The control's answer for `host`, by `end` at the latest.
    pub async fn ask(&self, host: &str, end: tokio::time::Instant) -> (Answer, Duration) {
        let started = Instant::now();
        let Some(server) = &self.server else {
            return (Answer::Failed("no control".into()), Duration::ZERO);
        };
        let built = tokio::time::timeout_at(
            end,
            self.built.get_or_init(|| async {
                let addr = dohdot::locate(server, self.timeout).await?;
                dohdot::resolver(server, addr, &self.tls, self.timeout)
            }),
        )
        .await;
        let resolver = match built {
            Ok(Ok(r)) => r,
            // The builders' errors carry the resolver library's words: outside text.
            Ok(Err(why)) => {
                return (
                    Answer::Failed(crate::sanitize::outside(why)),
                    started.elapsed(),
                );
            }
            Err(_) => {
                return (
                    Answer::Failed("no answer in time".into()),
                    started.elapsed(),
                );
            }
        };
        let answer = match tokio::time::timeout_at(end, resolver.lookup_ip(host)).await {
            Ok(Ok(found)) => Answer::Addrs(found.iter().collect()),
            Ok(Err(e)) => match super::lookup::reason(&e).as_str() {
                "NXDOMAIN" => Answer::NoAddress { nx: true },
                "no records" => Answer::NoAddress { nx: false },
                // hickory's words when no connection to the server could be made
                "no connections available" => Answer::Failed("no connection to it".into()),
                why => Answer::Failed(crate::sanitize::outside(why)),
            },
            Err(_) => Answer::Failed("no answer in time".into()),
        };
        (answer, started.elapsed())
    }
}

/// Compares the local answer (`code`, `local` addresses) with the control's for `ep`, asking the
/// local address for its certificate when the addresses differ. Bounded by `end`.
pub async fn compare(
    control: &Control,
    ep: &Endpoint,
    code: &str,
    local: &[IpAddr],
    end: tokio::time::Instant,
) -> Comparison {
    let (answer, latency) = control.ask(&ep.host, end).await;
    let mut certificate = None;
    let verdict = match &answer {
        Answer::Failed(_) => Verdict::Unreachable,
        // No address anywhere; a name only the local network knows is judged below.
        Answer::NoAddress { .. } if code != "dns.ok" => Verdict::Agrees,
        Answer::Addrs(theirs) if code != "dns.ok" => {
            if theirs.iter().any(|ip| !ip.is_unspecified()) {
                Verdict::Filtered
            } else {
                Verdict::Agrees
            }
        }
        Answer::Addrs(theirs) if local.iter().any(|ip| theirs.contains(ip)) => Verdict::Agrees,
        Answer::Addrs(_) | Answer::NoAddress { .. } => match local.first() {
            None => Verdict::Agrees,
            Some(ip) => match own_certificate(control, ep, *ip, end).await {
                Some(own) => {
                    certificate = Some((*ip, own));
                    if own {
                        Verdict::Cdn
                    } else {
                        Verdict::Rewritten
                    }
                }
                None => Verdict::Unverified,
            },
        },
    };
    Comparison {
        verdict,
        answer,
        latency,
        certificate,
    }
}

/// Does `ip` serve a certificate for `ep.host` that the run trusts? `None` when it cannot be
/// asked (no connection, no handshake for another reason, no time).
async fn own_certificate(
    control: &Control,
    ep: &Endpoint,
    ip: IpAddr,
    end: tokio::time::Instant,
) -> Option<bool> {
    let config = (control.tls)(&[]).ok()?;
    let name = rustls::pki_types::ServerName::try_from(ep.host.clone()).ok()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = crate::iface::connect(SocketAddr::new(ip, ep.port)).await?;
        connector.connect(name, tcp).await
    };
    match tokio::time::timeout_at(end, attempt).await {
        Ok(Ok(_)) => Some(true),
        Ok(Err(e)) => {
            let rejected = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
            rejected.then_some(false)
        }
        Err(_) => None,
    }
}

/// The dns stage's hook: names the run's transport in every dns check, says why an encrypted
/// `--resolver` gave no answer, asks the control when the local answer calls for it (within what
/// is left of the step, `end`), records its answer in the check's `control` data, and turns the
/// verdict into the check's words.
pub async fn judge(
    control: &Control,
    resolver: Option<&DnsServer>,
    ep: &Endpoint,
    found: (Check, Option<Vec<IpAddr>>),
    end: tokio::time::Instant,
) -> (Check, Option<Vec<IpAddr>>) {
    let (mut check, mut usable) = found;
    let transport = resolver.map_or(Transport::Udp, |s| s.transport);
    check
        .data
        .insert("transport".into(), json!(transport.name()));
    if let Some(server) = resolver.filter(|s| s.transport.encrypted()) {
        silent_resolver(control, server, &mut check, ep, end).await;
        check.summary = format!("{} (over {})", check.summary, transport.words());
    }
    // A lookup that used the whole step (silence, asked twice) leaves the control no time.
    let no_time = end <= tokio::time::Instant::now() + Duration::from_millis(10);
    let Some(server) = control
        .server()
        .filter(|_| !no_time && control.wanted(&check.code, ep))
    else {
        return (check, usable);
    };
    let local = addresses(&check);
    let cmp = compare(control, ep, &check.code, &local, end).await;
    let first_failure = cmp.verdict == Verdict::Unreachable
        && !control.unreachable_said.swap(true, Ordering::SeqCst);
    check.data.insert("control".into(), data(server, &cmp));
    let said = words(server, &cmp);
    match cmp.verdict {
        Verdict::Filtered if matches!(check.code.as_str(), "dns.nxdomain" | "dns.no_address") => {
            let summary = format!("{}, yet {said}: the resolver hides the name", check.summary);
            check.restate(check.status, "dns.filtered", summary);
        }
        Verdict::Rewritten => {
            let summary = format!("{}, yet {said}: the answer is rewritten", check.summary);
            check.restate(Status::Fail, "dns.rewritten", summary);
            usable = None;
        }
        Verdict::Unreachable if !first_failure => {}
        _ => check.summary = format!("{}; {said}", check.summary),
    }
    (check, usable)
}

/// An encrypted `--resolver` that gave no answer at all (`dns.error` after both lookups; a
/// resolver that could not even be set up says why itself): the reason, found once per run by a
/// handshake of its own, replaces the resolver library's words.
async fn silent_resolver(
    control: &Control,
    server: &DnsServer,
    check: &mut Check,
    ep: &Endpoint,
    end: tokio::time::Instant,
) {
    if check.code != "dns.error" || !check.data.contains_key("a") {
        return;
    }
    let why = control
        .resolver_silent
        .get_or_init(|| dohdot::why_silent(server, &control.tls, end))
        .await;
    if let Some(why) = why.as_deref().map(crate::sanitize::outside) {
        check.summary = format!(
            "no answer from the resolver {server} for {}: {why}",
            ep.host
        );
        check.data.insert("resolver_error".into(), json!(why));
    }
}

/// The addresses the local resolver gave (the check's `addresses`).
fn addresses(check: &Check) -> Vec<IpAddr> {
    check
        .data
        .get("addresses")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The `control` object of a dns check's data.
fn data(server: &DnsServer, cmp: &Comparison) -> Value {
    let (addrs, answer, error): (Vec<String>, String, Option<&str>) = match &cmp.answer {
        Answer::Addrs(a) => (
            a.iter().map(IpAddr::to_string).collect(),
            format!("{} address(es)", a.len()),
            None,
        ),
        Answer::NoAddress { nx: true } => (Vec::new(), "NXDOMAIN".into(), None),
        Answer::NoAddress { nx: false } => (Vec::new(), "no records".into(), None),
        Answer::Failed(why) => (Vec::new(), "no answer".into(), Some(why)),
    };
    let mut v = json!({
        "resolver": server.to_string(),
        "transport": server.transport.name(),
        "answer": answer,
        "addresses": addrs,
        "latency_ms": crate::model::ms(cmp.latency),
        "verdict": cmp.verdict.name(),
    });
    if let Some(why) = error {
        v["error"] = json!(why);
    }
    if let Some((ip, own)) = cmp.certificate {
        v["certificate_of"] = json!(ip.to_string());
        v["certificate_is_service"] = json!(own);
    }
    v
}

/// What the control said, as a clause for the summary.
fn words(server: &DnsServer, cmp: &Comparison) -> String {
    let who = format!(
        "the control resolver {server} ({})",
        server.transport.words()
    );
    let theirs = |a: &[IpAddr]| {
        let shown: Vec<String> = a.iter().take(3).map(IpAddr::to_string).collect();
        shown.join(", ")
    };
    match (&cmp.answer, cmp.verdict, cmp.certificate) {
        (Answer::Failed(why), ..) => {
            format!("{who} could not be asked ({why}), so there is no second opinion")
        }
        (Answer::NoAddress { nx }, verdict, certificate) => {
            let what = if *nx { "NXDOMAIN" } else { "no records" };
            match (verdict, certificate) {
                (Verdict::Cdn, Some((ip, _))) => format!(
                    "{who} answers {what} (a name of the local network), and {ip} serves the service's own certificate"
                ),
                (Verdict::Rewritten, Some((ip, _))) => format!(
                    "{who} answers {what}, and {ip} does not serve the service's certificate"
                ),
                (Verdict::Unverified, _) => format!(
                    "{who} answers {what}; the local address could not be asked for its certificate"
                ),
                _ => format!("{who} agrees ({what})"),
            }
        }
        (Answer::Addrs(a), Verdict::Agrees, _) => format!("{who} agrees ({})", theirs(a)),
        (Answer::Addrs(a), Verdict::Cdn, Some((ip, _))) => format!(
            "{who} answers {} and {ip} serves the service's own certificate: a CDN's local answer",
            theirs(a)
        ),
        (Answer::Addrs(a), Verdict::Rewritten, Some((ip, _))) => format!(
            "{who} answers {}, and {ip} does not serve the service's certificate",
            theirs(a)
        ),
        (Answer::Addrs(a), Verdict::Unverified, _) => format!(
            "{who} answers {}; the local address could not be asked for its certificate",
            theirs(a)
        ),
        (Answer::Addrs(a), ..) => format!("{who} answers {}", theirs(a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(role: &str) -> Endpoint {
        let text = format!("[[endpoint]]\nname = \"a\"\nhost = \"a.example\"\nrole = \"{role}\"\n");
        let p = crate::profile::parse(&text, "t.toml").expect("a valid profile");
        p.endpoints[0].clone()
    }

    fn control(setting: &str) -> Control {
        let tls: TlsMaker = Arc::new(|_: &[&[u8]]| Err("no TLS in this test".to_owned()));
        let s = ControlSetting::parse(setting).expect("a setting");
        Control::new(&s, tls, Duration::from_secs(1))
    }

    #[test]
    fn by_default_only_a_suspicious_service_answer_is_asked_about() {
        let default = control("default");
        let (service, baseline) = (endpoint("service"), endpoint("baseline"));
        assert!(
            !default.wanted("dns.ok", &service),
            "a healthy run adds nothing"
        );
        for code in SUSPICIOUS {
            assert!(default.wanted(code, &service), "{code}");
        }
        assert!(!default.wanted("dns.nxdomain", &baseline));
        let named = control("tls://dns.example");
        assert!(named.every_name() && named.wanted("dns.ok", &baseline));
        assert!(!control("off").wanted("dns.nxdomain", &service));
    }

    #[test]
    fn the_summary_says_what_the_control_answered() {
        let server = DnsServer::parse("https://1.1.1.1/dns-query").unwrap();
        let cmp = |answer, verdict, certificate| Comparison {
            verdict,
            answer,
            latency: Duration::from_millis(3),
            certificate,
        };
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let filtered = cmp(Answer::Addrs(vec![ip]), Verdict::Filtered, None);
        let w = words(&server, &filtered);
        assert!(
            w.contains("control resolver https://1.1.1.1/dns-query"),
            "{w}"
        );
        assert!(w.contains("answers 192.0.2.7"), "{w}");
        let d = data(&server, &filtered);
        assert_eq!(d["verdict"], "filtered");
        assert_eq!(d["transport"], "doh");
        let down = cmp(Answer::Failed("timeout".into()), Verdict::Unreachable, None);
        assert!(words(&server, &down).contains("no second opinion"));
        assert_eq!(data(&server, &down)["error"], "timeout");
    }
}
