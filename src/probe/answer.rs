//! How the http stage reads an answer from BMW's services: which status means what for *this*
//! probe, and the exact facts in quota and error answers.
//!
//! The http stage first judges a status by its general meaning (the contract's table, in
//! `http::classify`). This module then applies the profile's [`Reading`] and reads the body:
//!
//! - With [`Reading::Probe`] (the built-in sets) the request comes from a tool that is not the
//!   service's own client: BMW's app API admits only the official app, with its keys and app
//!   attestation. A 401, 403 or 489 to such a request proves DNS, TCP, TLS and HTTP work end to
//!   end, so it passes, and says nothing about the user's app. A quota or 429 is counted against
//!   this tool's own client identity: a warning that says so, marked `reason = "probe_identity"`
//!   so the diagnosis never holds it against the user. 408 and 5xx keep their meaning: the
//!   backend's trouble is everybody's.
//!   Such an answer arrives over a TLS session whose certificate was verified for BMW's host, so
//!   it is BMW's own, not a filter's (a proxy's refusal is `http.proxy_error`, an interceptor
//!   shows in the tls stage).
//! - With [`Reading::General`] (custom profiles) a refusal means what it says.
//!
//! In both readings the answer's own words are read exactly: the quota countdown of
//! `Out of call volume quota. Quota will be replenished in 02:26:24.` and a `Retry-After` header
//! become `retry_after_s`; BMW CarData's `exveErrorId` (`CU-429` the rate limit, `CU-103`..`105`
//! refusals of a token, a vehicle or a container) becomes `error_id` and is named with its
//! meaning. Text taken from the body passes [`crate::sanitize::outside`] first.

use crate::model::Status;
use crate::profile::Reading;
use serde_json::{Map, Value};
use std::time::{Duration, SystemTime};

/// How much of the service's own message a summary quotes, in characters.
const MESSAGE_CHARS: usize = 160;

/// Marks a rate limit answered to this probe's own client identity: never evidence against the
/// user's app or account (`checks/suspects.toml` excludes it).
pub const PROBE_IDENTITY: &str = "probe_identity";

/// The answer as the http stage received it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    /// The start of the body (capped by the http stage), lossily decoded.
    pub body: &'a str,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<&'a str>,
}

/// What the answer means: the check's status, code, the explanation after `HTTP <status> in
/// <ms>:`, and facts for `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub code: &'static str,
    pub meaning: String,
    pub data: Map<String, Value>,
}

/// Facts read from the body and headers, whatever the status.
#[derive(Debug, Clone, Default, PartialEq)]
struct Facts {
    quota: bool,
    /// CarData's `exveErrorId`, e.g. `CU-429`.
    error_id: Option<String>,
    /// The service's own message, sanitized and capped.
    message: Option<String>,
    retry_after_s: Option<u64>,
}

/// Reads an answer. `general` is the status, code and explanation of the general reading (from
/// `http::classify`); `expect` the endpoint's `expect_status`, which decides first in every reading.
pub fn read(
    general: (Status, &'static str, &'static str),
    answer: &Answer<'_>,
    expect: Option<&[u16]>,
    reading: Reading,
) -> Verdict {
    let facts = facts(answer, SystemTime::now());
    let (g_status, g_code, g_meaning) = general;
    let cu = facts.error_id.as_deref();
    let expected = expect.is_some_and(|e| e.contains(&answer.status));
    let rate_limited = !expected
        && (answer.status == 429
            || (answer.status == 403 && (facts.quota || cu == Some("CU-429"))));
    let mut data = Map::new();
    if reading == Reading::Probe {
        data.insert("reading".into(), reading.as_str().into());
    }
    let (status, code, mut meaning) = if rate_limited {
        let (why, reason) = rate_limit_reading(reading, cu, facts.quota);
        data.insert("reason".into(), reason.into());
        (Status::Warn, "http.rate_limited", why)
    } else if reading == Reading::Probe && !expected && matches!(answer.status, 401 | 403 | 489) {
        data.insert("reason".into(), "refused_without_credentials".into());
        let why = refusal_reading(answer.status);
        (Status::Pass, "http.ok", why.to_owned())
    } else {
        if g_code == "http.blocked" && cu.is_some_and(|c| meaning_of(c).is_some()) {
            data.insert("reason".into(), "cardata_access".into());
        }
        (g_status, g_code, g_meaning.to_owned())
    };

    if let Some(id) = cu {
        match meaning_of(id) {
            Some(m) if id != "CU-429" || !rate_limited => {
                meaning.push_str(&format!("; the answer is CarData's {id}: {m}"));
            }
            Some(_) => {}
            None => meaning.push_str(&format!("; the answer carries the error id {id}")),
        }
        data.insert("error_id".into(), id.into());
    }
    if let Some(s) = facts.retry_after_s {
        if code == "http.rate_limited" {
            meaning.push_str(&format!(
                "; replenished in {}",
                humantime::format_duration(Duration::from_secs(s))
            ));
        }
        data.insert("retry_after_s".into(), s.into());
    }
    if let Some(msg) = &facts.message
        && code != "http.ok"
    {
        meaning.push_str(&format!(" (the answer says: \"{msg}\")"));
    }
    if let Some(msg) = facts.message {
        data.insert("message".into(), msg.into());
    }
    Verdict {
        status,
        code,
        meaning,
        data,
    }
}

/// What a rate limit means in each reading, and its reason for the data.
fn rate_limit_reading(reading: Reading, cu: Option<&str>, quota: bool) -> (String, &'static str) {
    match (reading, cu) {
        (Reading::Probe, Some("CU-429")) => (
            "CarData's rate limit (CU-429) answered this check's own request, which carries no \
             token: it concerns this check's client identity, not your integration's daily calls"
                .to_owned(),
            PROBE_IDENTITY,
        ),
        (Reading::Probe, _) => (
            "a quota or rate limit on this check's own requests: BMW counts them per client \
             identity, and this check is not your app, so it says nothing about your app"
                .to_owned(),
            PROBE_IDENTITY,
        ),
        (Reading::General, Some("CU-429")) => (
            "the service's rate limit is reached (CarData CU-429: API rate limit reached)"
                .to_owned(),
            "cardata_quota",
        ),
        (Reading::General, _) => (
            "the service limits requests from this client or network".to_owned(),
            if quota { "quota" } else { "rate_limit" },
        ),
    }
}

/// What an auth refusal means in the probe reading: the path works end to end.
fn refusal_reading(status: u16) -> &'static str {
    match status {
        401 => {
            "the service answers with an auth refusal, as it does to any request without \
                its own client's credentials (this check never sends them): DNS, TCP, TLS and \
                HTTP work end to end"
        }
        489 => {
            "the service answers \"Blocked\", as BMW does to every client that is not its \
                app (this check sends no app attestation): DNS, TCP, TLS and HTTP work end to \
                end, and this says nothing about your app"
        }
        _ => {
            "the service answers and refuses this check's request, which carries no app \
              credentials: DNS, TCP, TLS and HTTP work end to end, and this says nothing about \
              your app"
        }
    }
}

/// What a CarData error id means, in words for the person reading the report.
pub fn meaning_of(id: &str) -> Option<&'static str> {
    Some(match id {
        "CU-429" => "API rate limit reached (CarData allows 50 calls a day per account)",
        "CU-103" => "the token lacks the scope this call needs",
        "CU-104" => "the vehicle (VIN) is not permitted for this client",
        "CU-105" => "the data container is not permitted for this client",
        _ => return None,
    })
}

fn facts(answer: &Answer<'_>, now: SystemTime) -> Facts {
    let json: Option<Value> = serde_json::from_str(answer.body.trim()).ok();
    let error_id = json
        .as_ref()
        .and_then(|j| find_key(j, "exveerrorid"))
        .and_then(Value::as_str)
        .and_then(error_id)
        .or_else(|| scan_error_id(answer.body));
    let message = json
        .as_ref()
        .and_then(|j| find_key(j, "message").or_else(|| find_key(j, "exvenote")))
        .and_then(Value::as_str)
        .map(|m| crate::sanitize::outside_capped(m.trim(), MESSAGE_CHARS))
        .filter(|m| !m.is_empty());
    Facts {
        quota: answer.body.to_ascii_lowercase().contains("quota"),
        error_id,
        message,
        retry_after_s: countdown(answer.body)
            .or_else(|| answer.retry_after.and_then(|h| retry_after(h, now))),
    }
}

/// The first value under `key` (compared in lower case) anywhere in the document.
fn find_key<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) => m
            .iter()
            .find(|(k, _)| k.to_ascii_lowercase() == key)
            .map(|(_, v)| v)
            .or_else(|| m.values().find_map(|v| find_key(v, key))),
        Value::Array(a) => a.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

/// An error id of the form `CU-429`: two to four capital letters, a dash, one to four digits.
/// Anything else is not taken over (it is outside text).
fn error_id(s: &str) -> Option<String> {
    let s = s.trim();
    let (letters, digits) = s.split_once('-')?;
    let ok = (2..=4).contains(&letters.len())
        && letters.chars().all(|c| c.is_ascii_uppercase())
        && (1..=4).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit());
    ok.then(|| s.to_owned())
}

/// `CU-<digits>` in a body that is not JSON.
fn scan_error_id(body: &str) -> Option<String> {
    let at = body.find("CU-")?;
    let digits: String = body[at + 3..]
        .chars()
        .take_while(char::is_ascii_digit)
        .take(4)
        .collect();
    error_id(&format!("CU-{digits}"))
}

/// The countdown of BMW's quota answers: `replenished in 02:26:24` → 8784 s.
fn countdown(body: &str) -> Option<u64> {
    let lower = body.to_ascii_lowercase();
    let at = lower.find("replenished in")? + "replenished in".len();
    let rest = lower[at..].trim_start();
    let clock: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ':')
        .collect();
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| {
            if p.is_empty() || p.len() > 6 {
                None
            } else {
                p.parse().ok()
            }
        })
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [h, m, s] if *m < 60 && *s < 60 => Some(h * 3600 + m * 60 + s),
        [m, s] if *s < 60 => Some(m * 60 + s),
        _ => None,
    }
}

/// `Retry-After`: seconds, or an HTTP date (seconds from `now`, never negative).
fn retry_after(header: &str, now: SystemTime) -> Option<u64> {
    let h = header.trim();
    if let Ok(s) = h.parse::<u64>() {
        return Some(s);
    }
    let when = httpdate::parse_http_date(h).ok()?;
    Some(when.duration_since(now).map_or(0, |d| d.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer<'_> {
        Answer {
            status,
            body,
            retry_after: None,
        }
    }

    /// The general reading as `http::classify` gives it, for the statuses used here.
    fn general(status: u16, body: &str) -> (Status, &'static str, &'static str) {
        let (s, c) = crate::probe::http::classify(status, body, None);
        (s, c, "general meaning")
    }

    fn read_as(reading: Reading, status: u16, body: &str) -> Verdict {
        read(general(status, body), &answer(status, body), None, reading)
    }

    const QUOTA: &str = r#"{"statusCode":403,"message":"Out of call volume quota. Quota will be replenished in 02:26:24."}"#;

    #[test]
    fn the_probe_reading_passes_refusals_of_the_app_api() {
        for status in [401, 403, 489] {
            let v = read_as(Reading::Probe, status, "Blocked");
            assert_eq!((v.status, v.code), (Status::Pass, "http.ok"), "{status}");
            assert!(v.meaning.contains("work end to end"), "{}", v.meaning);
            assert!(!v.meaning.contains("update"), "{}", v.meaning);
        }
        let v = read_as(Reading::General, 489, "Blocked");
        assert_eq!(v.code, "http.blocked");
        let v = read_as(Reading::Probe, 503, "");
        assert_eq!((v.status, v.code), (Status::Fail, "http.server_error"));
        let v = read_as(Reading::Probe, 408, "");
        assert_eq!(v.code, "http.server_error");
    }

    #[test]
    fn the_quota_countdown_is_read_exactly() {
        let v = read_as(Reading::Probe, 403, QUOTA);
        assert_eq!((v.status, v.code), (Status::Warn, "http.rate_limited"));
        assert_eq!(v.data["retry_after_s"], 8784);
        assert_eq!(v.data["reason"], PROBE_IDENTITY);
        assert!(
            v.meaning.contains("replenished in 2h 26m 24s"),
            "{}",
            v.meaning
        );
        assert!(v.meaning.contains("not your app"), "{}", v.meaning);
        assert!(!v.meaning.contains("0:00"), "{}", v.meaning);
        let g = read_as(Reading::General, 403, QUOTA);
        assert_eq!(
            (g.code, &g.data["reason"]),
            ("http.rate_limited", &Value::from("quota"))
        );
        assert!(
            g.meaning.contains("Out of call volume quota"),
            "{}",
            g.meaning
        );
        assert_eq!(countdown("replenished in 0:59"), Some(59));
        assert_eq!(countdown("replenished in 1:75:00"), None);
        assert_eq!(countdown("replenished soon"), None);
        assert_eq!(countdown("replenished in 99999999999999999999:00:00"), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(retry_after(" 120 ", now), Some(120));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(retry_after(&later, now), Some(90));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after(&earlier, now), Some(0));
        assert_eq!(retry_after("soon", now), None);
        let a = Answer {
            status: 429,
            body: "",
            retry_after: Some("120"),
        };
        let v = read(general(429, ""), &a, None, Reading::Probe);
        assert_eq!(v.data["retry_after_s"], 120);
        assert!(v.meaning.contains("replenished in 2m"), "{}", v.meaning);
    }

    #[test]
    fn cardata_error_ids_are_named() {
        let cu429 = r#"{"exveErrorId":"CU-429","exveErrorMsg":"API rate limit reached"}"#;
        for status in [403, 429] {
            for reading in [Reading::General, Reading::Probe] {
                let v = read_as(reading, status, cu429);
                assert_eq!(v.code, "http.rate_limited", "{status} {reading:?}");
                assert_eq!(v.data["error_id"], "CU-429");
            }
        }
        assert_eq!(
            read_as(Reading::General, 403, cu429).data["reason"],
            "cardata_quota"
        );
        for (id, words) in [
            ("CU-103", "scope"),
            ("CU-104", "VIN"),
            ("CU-105", "container"),
        ] {
            let body = format!(r#"{{"error":{{"exveErrorId":"{id}"}}}}"#);
            let g = read_as(Reading::General, 403, &body);
            assert_eq!(
                (g.code, &g.data["error_id"]),
                ("http.blocked", &Value::from(id))
            );
            assert!(
                g.meaning.contains(id) && g.meaning.contains(words),
                "{}",
                g.meaning
            );
            assert_eq!(g.data["reason"], "cardata_access");
            let p = read_as(Reading::Probe, 403, &body);
            assert_eq!(p.code, "http.ok");
            assert!(p.meaning.contains(words), "{}", p.meaning);
        }
        assert_eq!(scan_error_id("error CU-104 here"), Some("CU-104".into()));
        assert_eq!(error_id("CU-104\u{1b}[2J"), None);
    }

    #[test]
    fn the_service_message_is_sanitized_and_capped() {
        let body = format!(r#"{{"message":"quota \u001b[2J{}"}}"#, "x".repeat(500));
        let v = read_as(Reading::General, 429, &body);
        let msg = v.data["message"].as_str().unwrap_or_default();
        assert!(!msg.contains('\u{1b}') && msg.contains("\\x1b"), "{msg}");
        // An escape is shown as four characters (`\x1b`) for the one it replaces.
        assert!(msg.chars().count() <= MESSAGE_CHARS + 1 + 3, "{msg}");
        assert!(!v.meaning.contains('\u{1b}'));
    }

    #[test]
    fn expect_status_decides_first() {
        let (s, c) = crate::probe::http::classify(403, "", Some(&[403]));
        let v = read((s, c, "m"), &answer(403, ""), Some(&[403]), Reading::Probe);
        assert_eq!((v.code, v.meaning.as_str()), ("http.ok", "m"));
        assert_eq!(v.data.get("reason"), None);
        let (s, c) = crate::probe::http::classify(429, "", Some(&[200]));
        let v = read((s, c, "m"), &answer(429, ""), Some(&[200]), Reading::Probe);
        assert_eq!(v.code, "http.rate_limited");
    }
}
