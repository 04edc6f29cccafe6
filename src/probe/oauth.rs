//! How the http stage reads a token endpoint's answer to a made-up grant.
//!
//! BMW CarData's clients sign in with the OAuth device-code flow and poll
//! `POST /gcdm/oauth/token` on the sign-in host. An endpoint that posts a made-up grant there
//! (`method = "POST"` with a `body`, as `checks/cardata.toml` does) can tell the two ways that
//! step fails for users:
//!
//! - An OAuth error JSON (`{"error":"invalid_grant", "error_description": ...}`, with
//!   `invalid_grant`, `authorization_pending`, `access_denied` or `invalid_client`, status 400,
//!   401 or 403) is BMW's sign-in service refusing the made-up grant, as it must: the sign-in path
//!   works (`http.ok`).
//! - An Apigee fault body (`{"fault":{"faultstring":...,"detail":{"errorcode":
//!   "keymanagement.service.invalid_access_token"}}}`, seen with HTTP 500 during BMW's incidents)
//!   is BMW's gateway failing: `http.server_error` (`server_side`), whatever the status, with the
//!   `errorcode` in `data`.
//!
//! A 5xx or 408 without such a body and a rate limit keep the general reading
//! ([`crate::probe::answer`]). Anything else — garbage, a page, a body larger than the http
//! stage reads — is not the token endpoint answering: `http.error`, named. Every field read from
//! the body passes [`crate::sanitize::outside_capped`] before it reaches the report.

use crate::model::Status;
use crate::probe::answer::{Answer, Verdict};
use serde_json::{Map, Value};

/// The OAuth errors a made-up device-code grant gets when the path works.
const EXPECTED_ERRORS: [&str; 4] = [
    "invalid_grant",
    "authorization_pending",
    "access_denied",
    "invalid_client",
];

/// How much of a field from the body the report keeps, in characters.
const FIELD_CHARS: usize = 160;

/// Reads a token endpoint's answer; `None` leaves it to the general reading (an expected
/// status, a rate limit, a 408 or 5xx without a fault body).
pub fn read(answer: &Answer<'_>, truncated: bool, expect: Option<&[u16]>) -> Option<Verdict> {
    let status = answer.status;
    if expect.is_some_and(|e| e.contains(&status)) {
        return None;
    }
    let json: Option<Value> = (!truncated)
        .then(|| serde_json::from_str(answer.body.trim()).ok())
        .flatten();
    if let Some(fault) = json.as_ref().and_then(|j| j.get("fault")) {
        return Some(fault_verdict(fault));
    }
    let quota = status == 403 && answer.body.to_ascii_lowercase().contains("quota");
    if matches!(status, 408 | 429 | 500..=599) || quota {
        return None;
    }
    if truncated {
        return Some(not_oauth(format!(
            "the answer is larger than the {} KiB this check reads, and an OAuth answer is a few \
             hundred bytes: something other than the token endpoint answers",
            crate::probe::exchange::BODY_CAP / 1024
        )));
    }
    let error = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(Value::as_str);
    match error {
        Some(e) => Some(oauth_verdict(status, e, json.as_ref())),
        None => Some(not_oauth(
            "the answer is not an OAuth answer (no JSON with an \"error\" field): something other \
             than the token endpoint answers"
                .into(),
        )),
    }
}

fn field(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(|s| crate::sanitize::outside_capped(s, FIELD_CHARS))
        .filter(|s| !s.is_empty())
}

/// An Apigee fault body: BMW's gateway failed, whatever the status says.
fn fault_verdict(fault: &Value) -> Verdict {
    let errorcode = field(fault.get("detail").and_then(|d| d.get("errorcode")));
    let faultstring = field(fault.get("faultstring"));
    let mut data = Map::new();
    data.insert("reason".into(), "gateway_fault".into());
    let mut meaning = "the service's API gateway answered with a fault instead of its sign-in \
                       service: the service's side fails, not this network"
        .to_owned();
    if let Some(code) = &errorcode {
        meaning.push_str(&format!(" (error code {code}"));
        meaning.push_str(&match &faultstring {
            Some(s) => format!(": \"{s}\")"),
            None => ")".into(),
        });
        data.insert("errorcode".into(), code.clone().into());
    }
    if let Some(s) = faultstring {
        data.insert("faultstring".into(), s.into());
    }
    Verdict {
        status: Status::Fail,
        code: "http.server_error",
        meaning,
        data,
    }
}

/// An OAuth error JSON: the sign-in service itself answered.
fn oauth_verdict(status: u16, error: &str, json: Option<&Value>) -> Verdict {
    let error = crate::sanitize::outside_capped(error, FIELD_CHARS);
    let mut data = Map::new();
    data.insert("oauth_error".into(), error.clone().into());
    if let Some(d) = field(json.and_then(|j| j.get("error_description"))) {
        data.insert("oauth_error_description".into(), d.into());
    }
    if EXPECTED_ERRORS.contains(&error.as_str()) && matches!(status, 400 | 401 | 403) {
        data.insert("reason".into(), "oauth_refusal".into());
        return Verdict {
            status: Status::Pass,
            code: "http.ok",
            meaning: format!(
                "the token endpoint refused this check's made-up grant ({error}), as it must: \
                 the sign-in path works"
            ),
            data,
        };
    }
    data.insert("reason".into(), "oauth_unexpected".into());
    Verdict {
        status: Status::Warn,
        code: "http.unexpected_status",
        meaning: format!(
            "the token endpoint answers, but not as it does to a made-up device-code grant \
             (OAuth error {error}): its sign-in step may have changed"
        ),
        data,
    }
}

fn not_oauth(why: String) -> Verdict {
    let mut data = Map::new();
    data.insert("reason".into(), "not_oauth".into());
    Verdict {
        status: Status::Fail,
        code: "http.error",
        meaning: why,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(status: u16, body: &str) -> Option<Verdict> {
        read(
            &Answer {
                status,
                body,
                retry_after: None,
            },
            false,
            None,
        )
    }

    #[test]
    fn an_oauth_refusal_of_the_made_up_grant_passes() {
        for (status, e) in [
            (400, "invalid_grant"),
            (400, "authorization_pending"),
            (403, "access_denied"),
            (401, "invalid_client"),
        ] {
            let body = format!("{{\"error\":\"{e}\",\"error_description\":\"no\"}}");
            let v = at(status, &body).expect("read");
            assert_eq!(
                (v.status, v.code),
                (Status::Pass, "http.ok"),
                "{status} {e}"
            );
            assert_eq!(v.data["oauth_error"], e);
            assert!(v.meaning.contains("sign-in path works"), "{}", v.meaning);
        }
        let v = at(400, r#"{"error":"unsupported_grant_type"}"#).expect("read");
        assert_eq!((v.status, v.code), (Status::Warn, "http.unexpected_status"));
    }

    #[test]
    fn a_gateway_fault_is_bmws_side_with_its_error_code() {
        let body = r#"{"fault":{"faultstring":"Invalid Access Token","detail":{"errorcode":"keymanagement.service.invalid_access_token"}}}"#;
        for status in [500, 401] {
            let v = at(status, body).expect("read");
            assert_eq!((v.status, v.code), (Status::Fail, "http.server_error"));
            assert_eq!(
                v.data["errorcode"],
                "keymanagement.service.invalid_access_token"
            );
            assert!(v.meaning.contains("Invalid Access Token"), "{}", v.meaning);
        }
        // Outside text is made plain before it reaches the report.
        let hostile = r#"{"fault":{"detail":{"errorcode":"x\u001b[31m"}}}"#;
        let v = at(500, hostile).expect("read");
        assert!(
            v.data["errorcode"]
                .as_str()
                .is_some_and(crate::sanitize::is_clean)
        );
    }

    #[test]
    fn everything_else_is_named_or_left_to_the_general_reading() {
        assert!(at(503, "Service Unavailable").is_none());
        assert!(at(429, "").is_none());
        assert!(at(403, "Out of call volume quota").is_none());
        for (status, body) in [
            (200, "<html>blocked</html>"),
            (400, "\u{0}\u{1}garbage"),
            (200, "{}"),
        ] {
            let v = at(status, body).expect("read");
            assert_eq!((v.status, v.code), (Status::Fail, "http.error"), "{body}");
        }
        let big = read(
            &Answer {
                status: 200,
                body: "x",
                retry_after: None,
            },
            true,
            None,
        )
        .expect("read");
        assert_eq!(big.code, "http.error");
        assert!(big.meaning.contains("64 KiB"), "{}", big.meaning);
        let expected: &[u16] = &[400];
        assert!(
            read(
                &Answer {
                    status: 400,
                    body: "",
                    retry_after: None
                },
                false,
                Some(expected)
            )
            .is_none()
        );
    }
}
