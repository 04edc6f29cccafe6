//! Profiles: which endpoints to check and the thresholds to judge them by.
//!
//! The built-in profiles are TOML files in `checks/`, embedded at build time so the binary is
//! self-contained. A profile is parsed and validated completely before any probe runs: a bad one is
//! the tool's own fault (exit 3), and the error names the file, the line and the problem.

use crate::error::AppError;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;

mod thresholds;

pub use thresholds::Thresholds;

/// Largest profile we accept; a real one is a few hundred bytes.
const MAX_PROFILE_BYTES: u64 = 1024 * 1024;

/// The built-in regions, the default first: `--region`'s values come from this list.
pub const REGIONS: [(&str, &str); 3] = [
    (
        "rest_of_world",
        include_str!("../checks/rest_of_world.toml"),
    ),
    (
        "north_america",
        include_str!("../checks/north_america.toml"),
    ),
    ("china", include_str!("../checks/china.toml")),
];

/// BMW CarData's endpoint set (`--service cardata`): offered in EU markets only, so it exists for
/// `rest_of_world` alone. It is not part of what the My BMW app needs.
pub const CARDATA: &str = include_str!("../checks/cardata.toml");

/// The one region whose markets BMW CarData serves.
pub const CARDATA_REGION: &str = "rest_of_world";

/// How the http stage reads an answer's status: the general meaning, or the meaning an answer
/// has for a probe that is not the service's own client.
///
/// BMW's app API admits only the official app (its keys and app attestation). To this tool's
/// request a 401, 403 or 489 therefore proves DNS, TCP, TLS and HTTP work end to end, and says
/// nothing about the user's app; a quota or 429 is counted against this tool's own client
/// identity. Reading those answers as "the service refuses you" would blame the user for what the
/// probe itself caused, so the built-in profiles use [`Reading::Probe`]. A custom profile checks
/// a service of its owner's, where a refusal means what it says: [`Reading::General`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reading {
    /// 403/489 the service refuses this client; 429 or a quota a rate limit (the contract's table).
    #[default]
    General,
    /// 401/403/489 prove the path works (pass); a quota or 429 concerns this probe's own
    /// client identity (a warning, never evidence against the user's app).
    Probe,
}

impl Reading {
    pub fn as_str(self) -> &'static str {
        match self {
            Reading::General => "general",
            Reading::Probe => "probe",
        }
    }
}

/// The lowest TLS version an endpoint accepts (`min_tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum MinTls {
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

impl MinTls {
    pub fn as_str(self) -> &'static str {
        match self {
            MinTls::V1_2 => "1.2",
            MinTls::V1_3 => "1.3",
        }
    }
}

pub use crate::model::Role;

/// What the endpoint speaks on top of TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTPS: the http stage requests `path`.
    Https,
    /// TLS only (e.g. MQTT over TLS): the pipeline stops after the handshake.
    Tls,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub expect_status: Option<Vec<u16>>,
    pub public: bool,
    pub role: Role,
    pub protocol: Protocol,
    /// The lowest TLS version this endpoint accepts (`min_tls`); a lower one negotiated is
    /// `tls.version_too_low`.
    pub min_tls: Option<MinTls>,
    /// The profile's reading of HTTP answers, carried to the endpoint's http stage.
    pub reading: Reading,
    /// An internal service with its own CA (`private_ca = true`): its non-public root is not
    /// judged as an interceptor's.
    pub private_ca: bool,
    /// The http stage's method (`method`, default GET).
    pub method: Method,
    /// A form body for a POST (`body`): a made-up grant, never a credential.
    pub body: Option<String>,
}

impl Endpoint {
    /// An HTTPS endpoint of the given role with every other field at its default: the unit
    /// tests' fixture.
    #[cfg(test)]
    pub fn for_test(name: &str, host: &str, port: u16, role: Role) -> Endpoint {
        Endpoint {
            name: name.into(),
            host: host.into(),
            port,
            path: "/".into(),
            expect_status: None,
            public: true,
            role,
            protocol: Protocol::Https,
            min_tls: None,
            reading: Default::default(),
            private_ca: false,
            method: Default::default(),
            body: None,
        }
    }

    /// The host as an IP address, when it is a literal (then no DNS stage is needed).
    pub fn ip_literal(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }

    pub fn authority(&self) -> String {
        match self.ip_literal() {
            Some(IpAddr::V6(v6)) => format!("[{v6}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Captive {
    /// Plain-HTTP URL whose answer is known; empty switches the check off.
    pub url: String,
    pub expect_status: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Region name for built-in profiles, the profile's `name` (or file stem) otherwise.
    pub name: String,
    /// Where it came from, for messages: `built-in:<region>` or the file path.
    pub source: String,
    pub endpoints: Vec<Endpoint>,
    pub captive: Option<Captive>,
    pub thresholds: Thresholds,
    /// How the http stage reads the endpoints' answers.
    pub reading: Reading,
    /// The public-address check (`[egress]`, `--egress`): off unless asked for.
    pub egress: Egress,
    /// The control resolver (`control = "off" | "tls://…" | "https://…"`); `--control` wins.
    pub control: Option<ControlSetting>,
}

pub use crate::hostname::valid_host;
pub use crate::request::{Egress, Method};
use crate::resolverurl::ControlSetting;

// ---- the raw TOML shape -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Option<String>,
    #[serde(default)]
    reading: Reading,
    #[serde(default)]
    endpoint: Vec<RawEndpoint>,
    captive: Option<RawCaptive>,
    #[serde(default)]
    thresholds: Thresholds,
    egress: Option<crate::request::RawEgress>,
    control: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    name: String,
    host: String,
    port: Option<u16>,
    path: Option<String>,
    expect_status: Option<Vec<u16>>,
    public: Option<bool>,
    role: Option<Role>,
    protocol: Option<Protocol>,
    min_tls: Option<MinTls>,
    private_ca: Option<bool>,
    method: Option<Method>,
    body: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaptive {
    url: String,
    expect_status: Option<u16>,
}

/// The built-in profile of a region.
pub fn builtin(region: &str) -> Result<Profile, AppError> {
    let (name, text) = REGIONS.iter().find(|(r, _)| *r == region).ok_or_else(|| {
        AppError::usage(format!(
            "unknown region '{region}' (expected one of: {})",
            REGIONS.map(|(r, _)| r).join(", ")
        ))
    })?;
    let mut p = parse(text, &format!("built-in:{name}"))?;
    p.name = (*name).to_owned();
    Ok(p)
}

/// The built-in endpoint set of a region and a service: the My BMW app's (`cardata == false`) or
/// BMW CarData's, which exists for the EU markets (`rest_of_world`) only.
pub fn builtin_set(region: &str, cardata: bool) -> Result<Profile, AppError> {
    if !cardata {
        return builtin(region);
    }
    if !REGIONS.iter().any(|(r, _)| *r == region) {
        return builtin(region);
    }
    if region != CARDATA_REGION {
        return Err(AppError::usage(format!(
            "BMW CarData is offered in EU markets only: --service cardata works with --region {CARDATA_REGION}, not {region}"
        )));
    }
    let mut p = parse(CARDATA, "built-in:cardata")?;
    p.name = "cardata".to_owned();
    Ok(p)
}

/// Reads and validates a profile file.
pub fn load(path: &Path) -> Result<Profile, AppError> {
    let shown = path.display().to_string();
    let fail = |what: String| AppError::profile(&shown, what);
    let bytes =
        crate::safefile::read_bounded(path, MAX_PROFILE_BYTES, "a profile").map_err(fail)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let mut p = parse(&text, &shown)?;
    if p.name.is_empty() {
        p.name = path
            .file_stem()
            .map(|s| crate::sanitize::outside_capped(&s.to_string_lossy(), 128))
            .unwrap_or_else(|| "profile".into());
    }
    Ok(p)
}

/// Parses and validates profile text. `source` names it in errors, with `:line:col` where the
/// TOML itself is wrong (exemplary and kept so: a mistake is found at once in the file).
pub fn parse(text: &str, source: &str) -> Result<Profile, AppError> {
    let raw: RawProfile = toml::from_str(text).map_err(|e| {
        let place = e
            .span()
            .map(|s| {
                let (line, col) = line_col(text, s.start);
                format!(":{line}:{col}")
            })
            .unwrap_or_default();
        let msg = crate::sanitize::outside_capped(&e.message().trim().replace('\n', " "), 512);
        AppError::Profile(format!("profile {source}{place}: {msg}"))
    })?;
    let err = |what: String| AppError::Profile(format!("profile {source}: {what}"));

    if raw.endpoint.is_empty() {
        return Err(err(
            "no [[endpoint]] defined; a profile needs at least one".into()
        ));
    }
    let mut seen = HashSet::new();
    let mut endpoints = Vec::with_capacity(raw.endpoint.len());
    for (i, e) in raw.endpoint.into_iter().enumerate() {
        if !seen.insert(e.name.clone()) && valid_name(&e.name) {
            let at = format!(
                "endpoint #{} (\"{}\")",
                i + 1,
                crate::sanitize::outside_capped(&e.name, 64)
            );
            return Err(err(format!("{at}: duplicate endpoint name")));
        }
        endpoints.push(endpoint(i, e, raw.reading).map_err(err)?);
    }
    let captive = captive(raw.captive).map_err(err)?;
    let egress = crate::request::egress(raw.egress).map_err(err)?;
    thresholds::check(&raw.thresholds).map_err(err)?;
    let control = match raw.control.as_deref().map(ControlSetting::parse) {
        Some(Err(why)) => return Err(err(format!("control: {why}"))),
        other => other.and_then(Result::ok),
    };
    Ok(Profile {
        // The profile's name is the report's region field: outside text like any other.
        name: raw
            .name
            .map(|n| crate::sanitize::outside_capped(&n, 128))
            .unwrap_or_default(),
        source: source.to_owned(),
        endpoints,
        captive,
        thresholds: raw.thresholds,
        reading: raw.reading,
        egress,
        control,
    })
}

/// One `[[endpoint]]`, checked; `i` is its place in the file, for the message.
fn endpoint(i: usize, e: RawEndpoint, reading: Reading) -> Result<Endpoint, String> {
    let at = format!(
        "endpoint #{} (\"{}\")",
        i + 1,
        crate::sanitize::outside_capped(&e.name, 64)
    );
    if !valid_name(&e.name) {
        return Err(format!(
            "{at}: name must be 1-64 letters, digits, '_' or '-'"
        ));
    }
    if !valid_host(&e.host) {
        return Err(format!(
            "{at}: host \"{}\" is neither a DNS name nor an IP address",
            crate::sanitize::outside(&e.host)
        ));
    }
    let port = e.port.unwrap_or(443);
    if port == 0 {
        return Err(format!("{at}: port must be 1-65535, not 0"));
    }
    let path = e.path.unwrap_or_else(|| "/".into());
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{at}: path \"{}\" must start with '/' and contain no spaces",
            crate::sanitize::outside(&path)
        ));
    }
    if let Some(codes) = &e.expect_status {
        if codes.is_empty() {
            return Err(format!("{at}: expect_status is empty"));
        }
        if let Some(bad) = codes.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(format!(
                "{at}: expect_status {bad} is not an HTTP status (100-599)"
            ));
        }
    }
    let protocol = e.protocol.unwrap_or(Protocol::Https);
    let (method, body) = crate::request::checked(e.method, e.body, protocol == Protocol::Tls)
        .map_err(|why| format!("{at}: {why}"))?;
    Ok(Endpoint {
        name: e.name,
        host: e
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        path,
        expect_status: e.expect_status,
        public: e.public.unwrap_or(true),
        role: e.role.unwrap_or(Role::Service),
        protocol,
        min_tls: e.min_tls,
        reading,
        private_ca: e.private_ca.unwrap_or(false),
        method,
        body,
    })
}

/// The `[captive]` table, checked: `None` when it is absent or switched off (`url = ""`).
fn captive(raw: Option<RawCaptive>) -> Result<Option<Captive>, String> {
    let captive = match raw {
        None => None,
        Some(c) if c.url.is_empty() => None,
        Some(c) => {
            let rest = c.url.strip_prefix("http://").ok_or_else(|| {
                format!(
                    "[captive] url \"{}\" must be plain http:// (a portal cannot intercept HTTPS)",
                    crate::sanitize::outside(&c.url)
                )
            })?;
            let host = rest.split(['/', '?']).next().unwrap_or("");
            let host_only = host.rsplit_once(':').map_or(host, |(h, _)| h);
            if !valid_host(host_only) {
                return Err(format!(
                    "[captive] url \"{}\" has no valid host",
                    crate::sanitize::outside(&c.url)
                ));
            }
            let expect_status = c.expect_status.unwrap_or(204);
            if !(100..=599).contains(&expect_status) {
                return Err(format!(
                    "[captive] expect_status {expect_status} is not an HTTP status"
                ));
            }
            if c.url
                .chars()
                .any(|ch| ch.is_whitespace() || crate::sanitize::is_hazard(ch))
            {
                return Err(format!(
                    "[captive] url \"{}\" contains spaces or control characters",
                    crate::sanitize::outside(&c.url)
                ));
            }
            Some(Captive {
                url: c.url,
                expect_status,
            })
        }
    };
    Ok(captive)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Profile {
        match parse(text, "t.toml") {
            Ok(p) => p,
            Err(e) => panic!("expected a valid profile, got: {e}"),
        }
    }

    fn bad(text: &str) -> String {
        match parse(text, "t.toml") {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_control_key_is_read_and_checked() {
        let ep = "[[endpoint]]\nname = \"a\"\nhost = \"a.example\"\n";
        assert_eq!(ok(ep).control, None);
        let off = ok(&format!("control = \"off\"\n{ep}"));
        assert_eq!(off.control, Some(ControlSetting::Off));
        let named = ok(&format!("control = \"tls://dns.example\"\n{ep}"));
        assert!(matches!(named.control, Some(ControlSetting::Named(_))));
        assert!(bad(&format!("control = \"ftp://x\"\n{ep}")).contains("control"));
    }

    #[test]
    fn builtin_profiles_are_valid() {
        for (region, _) in REGIONS {
            let p = builtin(region).expect(region);
            assert_eq!(p.name, region);
            assert!(p.endpoints.iter().any(|e| e.role == Role::Service));
            assert!(p.endpoints.iter().any(|e| e.role == Role::Baseline));
        }
        assert!(builtin("mars").is_err());
        // The built-in sets are probes that are not BMW's own clients.
        for (region, _) in REGIONS {
            assert_eq!(
                builtin(region).map(|p| p.reading).ok(),
                Some(Reading::Probe)
            );
        }
    }

    #[test]
    fn cardata_is_its_own_set_for_the_eu_markets_only() {
        let p = builtin_set("rest_of_world", true).expect("cardata set");
        assert_eq!(p.name, "cardata");
        assert_eq!(p.reading, Reading::Probe);
        let stream = p.endpoints.iter().find(|e| e.port == 9000).expect("stream");
        assert_eq!(stream.protocol, Protocol::Tls);
        assert_eq!(stream.min_tls, Some(MinTls::V1_3));
        for region in ["north_america", "china"] {
            let e = builtin_set(region, true).expect_err(region).to_string();
            assert!(e.contains("EU markets only") && !e.contains('\n'), "{e}");
        }
        assert_eq!(
            builtin_set("china", false).map(|p| p.name).ok().as_deref(),
            Some("china")
        );
    }

    #[test]
    fn reading_and_min_tls_are_parsed_and_checked() {
        let p = ok(
            "reading = \"probe\"\n[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\nmin_tls=\"1.3\"\n",
        );
        assert_eq!(p.reading, Reading::Probe);
        assert_eq!(p.endpoints[0].min_tls, Some(MinTls::V1_3));
        assert_eq!(
            ok("[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\n").reading,
            Reading::General
        );
        let e = bad("reading = \"app\"\n[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\n");
        assert!(e.contains("t.toml:1") && e.contains("`probe`"), "{e}");
        let e = bad("[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\nmin_tls=\"1.1\"\n");
        assert!(e.contains("t.toml:4") && e.contains("1.1"), "{e}");
    }

    #[test]
    fn defaults_are_applied() {
        let p = ok("[[endpoint]]\nname = \"a\"\nhost = \"a.example\"\n");
        let e = &p.endpoints[0];
        assert_eq!((e.port, e.path.as_str(), e.public), (443, "/", true));
        assert_eq!(e.role, Role::Service);
        assert_eq!(e.protocol, Protocol::Https);
        assert_eq!(p.thresholds, Thresholds::default());
        assert!(p.captive.is_none());
    }

    #[test]
    fn errors_name_the_place_and_the_problem() {
        let e = bad("[[endpoint]]\nname = \"a\"\nhost = \"a.example\"\ncolour = 1\n");
        assert!(e.contains("t.toml:4:1"), "{e}");
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = bad("[[endpoint]]\nname = \"a\"\nhost = \"a.example\"\nport = 65536\n");
        assert!(e.contains("t.toml:4"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn validation_rejects_what_cannot_be_probed() {
        assert!(bad("").contains("no [[endpoint]]"));
        let two = "[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\n[[endpoint]]\nname=\"a\"\nhost=\"b.example\"\n";
        assert!(bad(two).contains("duplicate"));
        assert!(bad("[[endpoint]]\nname=\"a b\"\nhost=\"a.example\"\n").contains("name"));
        assert!(bad("[[endpoint]]\nname=\"a\"\nhost=\"a..example\"\n").contains("host"));
        assert!(bad("[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\nport=0\n").contains("port"));
        assert!(bad("[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\npath=\"x\"\n").contains("path"));
        assert!(
            bad("[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\nexpect_status=[99]\n")
                .contains("expect_status")
        );
        assert!(
            bad("[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\n[captive]\nurl=\"https://x.example/\"\n")
                .contains("plain http")
        );
        assert!(
            bad("[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\n[thresholds]\nlatency_warn_ms=900\nlatency_fail_ms=100\n")
                .contains("latency_warn_ms")
        );
    }

    #[test]
    fn method_body_and_egress_are_parsed_and_checked() {
        let ep = "[[endpoint]]\nname=\"t\"\nhost=\"a.example\"\n";
        let p = ok(&format!("{ep}method=\"POST\"\nbody=\"a=1&b=%20\"\n"));
        assert_eq!(p.endpoints[0].method, Method::Post);
        assert_eq!(p.endpoints[0].body.as_deref(), Some("a=1&b=%20"));
        assert!(bad(&format!("{ep}method=\"POST\"\n")).contains("endpoint #1 (\"t\"): method"));
        assert!(bad(&format!("{ep}method=\"PUT\"\nbody=\"a\"\n")).contains("t.toml:4"));
        let p = ok(&format!(
            "{ep}[egress]\nenabled=true\nstun=[\"192.0.2.1:3478\"]\n"
        ));
        assert!(p.egress.enabled && p.egress.stun == ["192.0.2.1:3478"]);
        assert!(!ok(ep).egress.enabled);
        assert!(bad(&format!("{ep}[egress]\nstun=[\"nope\"]\n")).contains("[egress]"));
    }

    #[test]
    fn captive_empty_url_switches_it_off() {
        let p = ok("[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\n[captive]\nurl=\"\"\n");
        assert!(p.captive.is_none());
        let p = ok(
            "[[endpoint]]\nname=\"a\"\nhost=\"a.example\"\n[captive]\nurl=\"http://c.example:8080/gen\"\n",
        );
        assert_eq!(p.captive.map(|c| c.expect_status), Some(204));
    }
}
