//! `list`: what a run would do — probes, endpoints, stages, thresholds and limits — without
//! touching the network. Human by default; `--format json` for scripts and fleet tooling;
//! `--format markdown` for a ticket or a wiki page. Prometheus and Nagios describe a run's
//! results, which `list` has none of: they are refused (exit 3), never answered with another
//! format.

use crate::cli::RunArgs;
use crate::error::{AppError, exit};
use crate::model::Probe;
use crate::plan::Selection;
use crate::plan::load_profile;
use crate::profile::{self, Profile};
use crate::report::Format;
use crate::resolverurl::Transport;
use crate::runner;
use crate::term::decide_color;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

fn state(sel: &Selection, p: Probe) -> &'static str {
    if sel.reported(p) {
        "on"
    } else if sel.runs(p) {
        "pre"
    } else {
        "off"
    }
}

fn url(e: &profile::Endpoint) -> String {
    match e.protocol {
        profile::Protocol::Https => format!("https://{}{}", e.authority(), e.path),
        profile::Protocol::Tls => format!("tls://{}", e.authority()),
    }
}

/// The url, with the method in front when it is not a GET (a token endpoint's POST).
fn request(e: &profile::Endpoint) -> String {
    match e.method {
        profile::Method::Get => url(e),
        m => format!("{} {}", m.as_str(), url(e)),
    }
}

/// The stages a run would report for an endpoint, by name, in pipeline order.
fn stages(e: &profile::Endpoint, sel: &Selection) -> Vec<&'static str> {
    runner::planned_stages(e, sel)
        .iter()
        .map(|p| p.name())
        .collect()
}

/// ` (TLS 1.3 or later)` for an endpoint with a `min_tls`; empty otherwise.
fn min_tls(e: &profile::Endpoint) -> String {
    e.min_tls
        .map_or_else(String::new, |v| format!(" (TLS {} or later)", v.as_str()))
}

/// What the profile's reading of HTTP answers means, in a line.
fn reading(profile: &Profile) -> String {
    match profile.reading {
        profile::Reading::Probe => "probe (this check is not the service's own client: 401/403/489 prove the path works; a quota concerns this check's own requests)".into(),
        profile::Reading::General => "general (403/489: the service refuses this client; 429 or a quota: a rate limit)".into(),
    }
}

/// The resolver the run asks, and the control resolver: how each is asked, in words.
fn resolvers(profile: &Profile, args: &RunArgs) -> (ListResolver, ListControl) {
    let resolver = match &args.resolver {
        Some(s) => ListResolver {
            url: s.to_string(),
            transport: s.transport.name().to_owned(),
        },
        None => ListResolver {
            url: "system".to_owned(),
            transport: Transport::Udp.name().to_owned(),
        },
    };
    let setting = args.control.as_ref().or(profile.control.as_ref());
    let control = match setting.cloned().unwrap_or_default().server() {
        Some((s, every)) => ListControl {
            url: Some(s.to_string()),
            transport: Some(s.transport.name().to_owned()),
            asked: if every { "every_name" } else { "suspicious" }.to_owned(),
        },
        None => ListControl {
            url: None,
            transport: None,
            asked: "off".to_owned(),
        },
    };
    (resolver, control)
}

/// The two lines `list` prints about DNS.
fn resolver_lines(profile: &Profile, args: &RunArgs) -> [String; 2] {
    let (r, c) = resolvers(profile, args);
    let words = |t: &str| match t {
        "dot" => Transport::Dot.words(),
        "doh" => Transport::Doh.words(),
        _ => Transport::Udp.words(),
    };
    let control = match (&c.url, &c.transport) {
        (Some(url), Some(t)) => {
            let when = if c.asked == "every_name" {
                "asked about every name"
            } else {
                "asked only about a suspicious answer for a service name"
            };
            format!("{url} ({}), {when}", words(t))
        }
        _ => "off".to_owned(),
    };
    [
        format!("resolver: {} ({})", r.url, words(&r.transport)),
        format!("control resolver: {control}"),
    ]
}

fn human(profile: &Profile, sel: &Selection, args: &RunArgs) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "profile: {} ({})", profile.name, profile.source);
    let _ = writeln!(out, "answers read as: {}", reading(profile));
    let _ = writeln!(
        out,
        "\nprobes (on: runs and is reported; pre: runs only because a chosen probe needs it; off: does not run):"
    );
    for p in Probe::all().iter().copied() {
        let _ = writeln!(
            out,
            "  {:<3} {:<10} {}",
            state(sel, p),
            p.name(),
            p.describe()
        );
    }
    let _ = writeln!(out, "\nendpoints:");
    let width = profile
        .endpoints
        .iter()
        .map(|e| e.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    for e in &profile.endpoints {
        let (stages, min) = (stages(e, sel), min_tls(e));
        let min = if min.is_empty() {
            min
        } else {
            format!(" {min}")
        };
        let _ = writeln!(
            out,
            "  {:<width$} {:<8} {}   [{}]{min}",
            e.name,
            e.role.as_str(),
            request(e),
            stages.join(" → ")
        );
    }
    let _ = writeln!(
        out,
        "\ncaptive portal check: {}",
        profile.captive.as_ref().map_or_else(
            || "off".to_owned(),
            |c| format!("GET {} expecting {}", c.url, c.expect_status)
        )
    );
    let _ = writeln!(
        out,
        "public address check (egress): {}, asking {}",
        if sel.reported(Probe::Egress) {
            "on"
        } else {
            "off (--egress)"
        },
        profile.egress.stun.join(", ")
    );
    for line in resolver_lines(profile, args) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "\nthresholds:");
    for (name, value, what) in profile.thresholds.describe() {
        let _ = writeln!(out, "  {name:<22} {value:<12} {what}");
    }
    let _ = writeln!(
        out,
        "\nlimits: step timeout {}, deadline {}, {} latency sample(s) per endpoint",
        humantime::format_duration(args.timeout),
        humantime::format_duration(args.deadline),
        args.samples
    );
    out
}

/// `list --format markdown`: the same as the human listing, as tables that paste into a ticket.
/// Profile text (names, hosts, paths) is escaped like the Markdown report's.
fn markdown(profile: &Profile, sel: &Selection, args: &RunArgs) -> String {
    use crate::report::markdown::escape;
    let mut out = String::new();
    let _ = writeln!(out, "## bmw-netcheck list: {}\n", escape(&profile.name));
    let _ = writeln!(out, "- profile: {}", escape(&profile.source));
    let _ = writeln!(out, "- answers read as: {}", escape(&reading(profile)));
    let _ = writeln!(
        out,
        "\n### Probes\n\n| state | probe | what it looks at |\n| --- | --- | --- |"
    );
    for p in Probe::all().iter().copied() {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            state(sel, p),
            p.name(),
            escape(p.describe())
        );
    }
    let _ = writeln!(
        out,
        "\n### Endpoints\n\n| endpoint | role | URL | stages |\n| --- | --- | --- | --- |"
    );
    for e in &profile.endpoints {
        let (stages, min) = (stages(e, sel), min_tls(e));
        let _ = writeln!(
            out,
            "| {} | {} | {}{} | {} |",
            escape(&e.name),
            e.role.as_str(),
            escape(&request(e)),
            escape(&min),
            stages.join(" → ")
        );
    }
    let captive = profile.captive.as_ref().map_or_else(
        || "off".to_owned(),
        |c| format!("GET {} expecting {}", c.url, c.expect_status),
    );
    let _ = writeln!(out, "\ncaptive portal check: {}", escape(&captive));
    for line in resolver_lines(profile, args) {
        let _ = writeln!(out, "\n{}", escape(&line));
    }
    let _ = writeln!(
        out,
        "\n### Thresholds\n\n| threshold | value | meaning |\n| --- | --- | --- |"
    );
    for (name, value, what) in profile.thresholds.describe() {
        let _ = writeln!(out, "| `{name}` | {} | {} |", escape(&value), escape(what));
    }
    let _ = writeln!(
        out,
        "\nlimits: step timeout {}, deadline {}, {} latency sample(s) per endpoint",
        humantime::format_duration(args.timeout),
        humantime::format_duration(args.deadline),
        args.samples
    );
    out
}

/// `list --format json`: typed, so the published JSON Schema describes it (`$defs/ListReport`).
#[derive(Serialize, JsonSchema)]
pub struct ListReport {
    pub profile: String,
    pub source: String,
    /// How HTTP answers are read: `general` or `probe` (the built-in BMW sets).
    pub reading: String,
    pub probes: Vec<ListProbe>,
    pub endpoints: Vec<ListEndpoint>,
    pub captive: Option<ListCaptive>,
    /// The STUN servers the public-address check asks when it runs (`--egress`; `probes` says
    /// whether it does).
    pub stun: Vec<String>,
    /// Threshold name → value: a number, or text where the value is not one.
    pub thresholds: serde_json::Map<String, Value>,
    pub limits: ListLimits,
    /// The resolver the run asks.
    pub resolver: ListResolver,
    /// The control resolver: a second opinion on suspicious answers.
    pub control: ListControl,
}

#[derive(Serialize, JsonSchema)]
pub struct ListResolver {
    /// `system`, or the `--resolver` given (`IP:PORT`, `tls://…`, `https://…`).
    pub url: String,
    /// `udp` (plain DNS), `dot` or `doh`.
    pub transport: String,
}

#[derive(Serialize, JsonSchema)]
pub struct ListControl {
    /// The control's URL; absent when it is off.
    pub url: Option<String>,
    /// `dot`, `doh` (or `udp` for a plain control); absent when it is off.
    pub transport: Option<String>,
    /// `suspicious` (only about a suspicious answer for a service name: the default),
    /// `every_name` (a control named with `--control` or the profile), or `off`.
    pub asked: String,
}

#[derive(Serialize, JsonSchema)]
pub struct ListProbe {
    pub name: String,
    /// `on` (reported), `pre` (runs for a later stage, not reported) or `off`.
    pub state: String,
    pub what: String,
}

#[derive(Serialize, JsonSchema)]
pub struct ListEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub url: String,
    pub role: String,
    /// `https`, or `tls` for a TLS-only endpoint (no http stage).
    pub protocol: String,
    /// The lowest TLS version the endpoint accepts, where it sets one.
    pub min_tls: Option<String>,
    /// The http stage's method: `GET`, or `POST` with `body` (a made-up grant, never a credential).
    pub method: String,
    pub body: Option<String>,
    pub public: bool,
    pub expect_status: Option<Vec<u16>>,
    pub stages: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct ListCaptive {
    pub url: String,
    pub expect_status: u16,
}

#[derive(Serialize, JsonSchema)]
pub struct ListLimits {
    pub timeout_ms: u64,
    pub deadline_ms: u64,
    pub samples: u32,
}

fn as_json(profile: &Profile, sel: &Selection, args: &RunArgs) -> Value {
    let (resolver, control) = resolvers(profile, args);
    let doc = ListReport {
        resolver,
        control,
        profile: profile.name.clone(),
        source: profile.source.clone(),
        reading: profile.reading.as_str().to_owned(),
        probes: Probe::all()
            .iter()
            .map(|p| ListProbe {
                name: p.name().to_owned(),
                state: state(sel, *p).to_owned(),
                what: p.describe().to_owned(),
            })
            .collect(),
        endpoints: profile
            .endpoints
            .iter()
            .map(|e| ListEndpoint {
                name: e.name.clone(),
                host: e.host.clone(),
                port: e.port,
                url: url(e),
                role: e.role.as_str().to_owned(),
                protocol: match e.protocol {
                    profile::Protocol::Https => "https",
                    profile::Protocol::Tls => "tls",
                }
                .to_owned(),
                min_tls: e.min_tls.map(|v| v.as_str().to_owned()),
                method: e.method.as_str().to_owned(),
                body: e.body.clone(),
                public: e.public,
                expect_status: e.expect_status.clone(),
                stages: runner::planned_stages(e, sel)
                    .iter()
                    .map(|p| p.name().to_owned())
                    .collect(),
            })
            .collect(),
        captive: profile.captive.as_ref().map(|c| ListCaptive {
            url: c.url.clone(),
            expect_status: c.expect_status,
        }),
        stun: profile.egress.stun.clone(),
        thresholds: profile
            .thresholds
            .describe()
            .into_iter()
            .map(|(name, value, _)| {
                (
                    name.to_owned(),
                    value
                        .parse::<f64>()
                        .map_or(Value::String(value), Value::from),
                )
            })
            .collect(),
        limits: ListLimits {
            timeout_ms: args.timeout.as_millis() as u64,
            deadline_ms: args.deadline.as_millis() as u64,
            samples: args.samples,
        },
    };
    serde_json::to_value(doc).unwrap_or(Value::Null)
}

/// Runs `list`.
pub fn run(args: &RunArgs) -> Result<i32, AppError> {
    let profile = load_profile(args)?;
    let sel = crate::plan::selection_for(args, &profile);
    decide_color(args.color, false);
    let text = match args.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&as_json(&profile, &sel, args)).unwrap_or_default()
        ),
        Format::Human => human(&profile, &sel, args),
        Format::Markdown => markdown(&profile, &sel, args),
        Format::Prometheus | Format::Nagios => {
            return Err(AppError::usage(format!(
                "list --format {}: list prints human, json or markdown (a run's results are what {} describes)",
                args.format.name(),
                args.format.name()
            )));
        }
    };
    crate::files::write_stdout(text.as_bytes());
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::selection;
    use clap::Parser;
    use serde_json::json;

    fn args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["bmw-netcheck"];
        argv.extend_from_slice(extra);
        crate::cli::Cli::try_parse_from(argv)
            .expect("valid arguments")
            .run
    }

    #[test]
    fn json_lists_endpoints_stages_and_thresholds() {
        let a = args(&["--only", "tls"]);
        let p = profile::builtin("rest_of_world").expect("built-in");
        let j = as_json(&p, &selection(&a), &a);
        assert_eq!(
            j["endpoints"].as_array().map(Vec::len),
            Some(p.endpoints.len())
        );
        assert_eq!(j["endpoints"][0]["stages"], json!(["tls"]));
        let state = |name: &str| {
            j["probes"]
                .as_array()
                .and_then(|ps| ps.iter().find(|x| x["name"] == name))
                .map(|x| x["state"].clone())
        };
        assert_eq!(state("tls"), Some(json!("on")));
        assert_eq!(state("tcp"), Some(json!("pre")));
        assert_eq!(state("storage"), Some(json!("off")));
        assert_eq!(j["thresholds"]["latency_warn_ms"], json!(250.0));
        assert_eq!(j["limits"]["deadline_ms"], json!(20_000));
        let text = human(&p, &selection(&a), &a);
        assert!(text.contains("pre tcp"), "{text}");
    }

    #[test]
    fn markdown_lists_the_same_probes_and_endpoints_as_tables() {
        let a = args(&["--only", "tls", "--format", "markdown"]);
        let p = profile::builtin("rest_of_world").expect("built-in");
        let text = markdown(&p, &selection(&a), &a);
        assert!(text.contains("| pre | `tcp` |"), "{text}");
        assert!(text.contains("| on | `tls` |"), "{text}");
        for e in &p.endpoints {
            assert!(
                text.contains(&format!("| {} |", escape_name(&e.name))),
                "{text}"
            );
        }
        assert!(text.contains("| `latency_warn_ms` |"), "{text}");
    }

    fn escape_name(name: &str) -> String {
        crate::report::markdown::escape(name)
    }

    #[test]
    fn formats_of_a_run_are_refused() {
        for format in ["prometheus", "nagios"] {
            let a = args(&["--format", format]);
            let err = run(&a).expect_err("refused");
            assert!(err.to_string().contains("human, json or markdown"), "{err}");
        }
    }
}
