//! The command line, as the contract defines it. Parsing only: no I/O happens here.

use crate::model::Probe;
use crate::report::Format;
use crate::resolverurl::{ControlSetting, DnsServer};
pub use crate::term::ColorWhen;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  bmw-netcheck                                  check the rest-of-world endpoints and explain the result
  bmw-netcheck --region north_america           the North American endpoints
  bmw-netcheck --service cardata                BMW CarData's API and stream (home automation, EU)
  bmw-netcheck --format markdown -o ticket.md   a report to attach to a support ticket
  bmw-netcheck --only dns,tcp --resolver 9.9.9.9   is it my resolver?
  bmw-netcheck -q --lock --format prometheus -o /var/lib/prometheus/node-exporter/bmw_netcheck.prom
                                                for cron or a timer: node_exporter's textfile directory
  bmw-netcheck explain dns_filter               what a suspect means and how to fix it

Exit codes: 0 all passed, 1 warnings, 2 failures, 3 the check itself could not run.";

#[derive(Debug, Parser)]
#[command(
    name = "bmw-netcheck",
    version,
    about = "Checks everything between this device and BMW's connected services, and says why the My BMW app cannot connect.",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every check for the region and print the report (the default)
    Run(RunArgs),
    /// Show the probes, endpoints and thresholds a run would use, without touching the network
    List(RunArgs),
    /// What a suspect means and the steps that fix it (works offline)
    Explain {
        /// A suspect id, as printed in reports; leave out to list them all
        suspect: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = ExplainFormat::Human)]
        format: ExplainFormat,
        /// When to use colour
        #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
        color: ColorWhen,
    },
    /// Past runs from the history log, newest last, with trends per endpoint
    History(HistoryArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout
    Man,
    /// An exporter for Prometheus to scrape: GET /probe runs one check (the run options choose what)
    Serve(ServeArgs),
    /// Repeated runs: a live view on a terminal, one line per run otherwise; a summary at the end
    Watch(WatchArgs),
    /// Print the JSON Schema of the report (draft 2020-12, schema_version 1)
    Schema,
    /// Re-render a saved JSON report (or a history line) in any format
    Show(ShowArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where to listen, e.g. 127.0.0.1:9489 (port 0 picks a free one, printed on stderr)
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Time from the start of one run to the start of the next (e.g. 30s, 5m)
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_every, allow_hyphen_values = true)]
    pub every: Duration,
    /// Stop after N runs (default: until Ctrl-C)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// A saved JSON report or a history log (JSON Lines); `-` reads standard input
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,
    /// From a history log, the run with this report id (default: the newest)
    #[arg(long, value_name = "REPORT_ID")]
    pub run: Option<String>,
    /// Output format
    #[arg(long, value_enum, value_name = "F", default_value_t = Format::Human)]
    pub format: Format,
    /// Write to FILE (atomically) instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Keep host names, user names and private addresses in Markdown
    #[arg(long)]
    pub no_redact: bool,
    /// Remove host names, user names and private addresses from every format, JSON included
    #[arg(long, conflicts_with = "no_redact")]
    pub redact: bool,
    /// When to use colour
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// The human report lists every check, one line each, and every likely cause in full
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// How many of the newest runs to show
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub last: u32,
    /// Output format
    #[arg(long, value_enum, default_value_t = ExplainFormat::Human)]
    pub format: ExplainFormat,
    /// The history file to read (default: the one runs append to)
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// When to use colour
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    Human,
    Json,
}

/// Which built-in endpoint set a run checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Service {
    /// What the My BMW app needs
    #[default]
    App,
    /// BMW CarData's sign-in, REST API and stream (EU markets only)
    Cardata,
}

#[derive(Debug, Clone, Args, Default)]
pub struct RunArgs {
    /// Which endpoint set to check: rest_of_world, north_america or china
    #[arg(long, value_name = "R", default_value = crate::profile::REGIONS[0].0, value_parser = clap::builder::PossibleValuesParser::new(crate::profile::REGIONS.map(|(name, _)| name)))]
    pub region: String,

    /// A profile TOML used instead of the built-in one
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,

    /// Which built-in endpoint set: app (what the My BMW app needs; the default) or cardata
    /// (BMW CarData's API and stream, for home-automation clients; rest_of_world only)
    #[arg(long, value_enum, value_name = "S")]
    pub service: Option<Service>,

    /// Report format
    #[arg(long, value_enum, value_name = "F", default_value_t = Format::Human)]
    pub format: Format,

    /// Write the report to FILE (atomically) instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Send DNS queries to this server instead of the system's resolvers: IP[:PORT], or
    /// tls://HOST[:PORT] (DNS over TLS) or https://HOST[:PORT]/PATH (DNS over HTTPS), with
    /// #IP after the URL to connect there instead of looking HOST up
    #[arg(long, value_name = "IP[:PORT]|URL", value_parser = parse_resolver)]
    pub resolver: Option<DnsServer>,

    /// The control resolver, a second opinion on suspicious answers: a tls:// or https:// URL or a
    /// plain IP[:PORT] (asked about every name), off, or default (https://1.1.1.1/dns-query,
    /// asked only about a suspicious answer)
    #[arg(long, value_name = "URL|off", value_parser = parse_control, env = "BMW_NETCHECK_CONTROL")]
    pub control: Option<ControlSetting>,

    /// Trust the certificates in this PEM file as roots, in addition to the system's
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Bound for one probe step (e.g. 800ms, 5s)
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_step, allow_hyphen_values = true)]
    pub timeout: Duration,

    /// Bound for the whole run; unfinished checks are reported as timeouts
    #[arg(long, value_name = "DUR", default_value = "20s", value_parser = parse_step, allow_hyphen_values = true)]
    pub deadline: Duration,

    /// Run only these probes (comma-separated names as in `list`)
    #[arg(long, value_name = "P,..", value_delimiter = ',', value_parser = parse_probe)]
    pub only: Vec<Probe>,

    /// Skip these probes
    #[arg(long, value_name = "P,..", value_delimiter = ',', value_parser = parse_probe)]
    pub skip: Vec<Probe>,

    /// Latency samples per endpoint (1-1000)
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub samples: u32,

    /// When to use colour; NO_COLOR set means never under auto
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,

    /// Print nothing when every check passes (for cron); problems are still printed
    #[arg(short, long)]
    pub quiet: bool,

    /// The human report lists every check, one line each, and every likely cause in full
    #[arg(short, long)]
    pub verbose: bool,

    /// A path whose filesystem the storage probe checks (repeatable; default: home and temp)
    #[arg(long, value_name = "PATH")]
    pub storage_path: Vec<PathBuf>,

    /// Append this run as one JSON line to FILE (default: in the user's state directory)
    #[arg(long, value_name = "FILE", conflicts_with = "no_history")]
    pub history: Option<PathBuf>,

    /// Do not record this run in the history file
    #[arg(long)]
    pub no_history: bool,

    /// Keep host names, user names and private addresses in Markdown reports
    #[arg(long)]
    pub no_redact: bool,

    /// Remove host names, user names and private addresses from every format, JSON included
    /// (Markdown removes them unless --no-redact)
    #[arg(long, conflicts_with = "no_redact")]
    pub redact: bool,

    /// Wait a random time up to DUR before starting (spreads a fleet's cron runs)
    #[arg(long, value_name = "DUR", value_parser = parse_jitter, allow_hyphen_values = true)]
    pub jitter: Option<Duration>,

    /// Refuse to start while another run holding the lock is going (exit 3)
    #[arg(long)]
    pub lock: bool,

    /// After the run, push its metrics to the Prometheus Pushgateway at URL (base URL)
    #[arg(long, value_name = "URL")]
    pub push: Option<String>,

    /// The instance label for --push and serve (default: a stable id derived from the machine id)
    #[arg(long, value_name = "ID", value_parser = crate::instance::parse)]
    pub instance: Option<String>,

    /// Bind every socket of the run to this interface (repeatable: one run per interface)
    #[arg(long, value_name = "IFACE", conflicts_with = "via", value_parser = parse_interface)]
    pub interface: Vec<String>,

    /// `all`: run once over every uplink that is up (not loopback; tunnels only when named)
    #[arg(long, value_enum, value_name = "all")]
    pub via: Option<Via>,

    /// Ask a STUN server for this device's public address (NAT, carrier-grade NAT, VPN exit)
    #[arg(long)]
    pub egress: bool,

    /// The STUN server --egress asks (repeatable; default: stun.l.google.com:19302)
    #[arg(long, value_name = "HOST:PORT", requires = "egress", value_parser = parse_stun)]
    pub stun: Vec<String>,

    /// The proxy the app's path takes: a proxy URL, `direct`, or `auto` (the environment, the
    /// desktop's settings, WPAD)
    #[arg(long, value_name = "URL|direct|auto", default_value = "auto", value_parser = parse_proxy)]
    pub proxy: crate::proxysettings::ProxyFlag,

    /// Follow the PAC file at this URL (http, https or file) instead of looking for settings
    #[arg(long, value_name = "URL", conflicts_with = "proxy", value_parser = parse_pac)]
    pub pac: Option<String>,
}

/// `--proxy`: `auto`, `direct`, or a proxy URL as the environment variables take it.
fn parse_proxy(s: &str) -> Result<crate::proxysettings::ProxyFlag, String> {
    use crate::proxysettings::ProxyFlag;
    match s {
        "auto" => Ok(ProxyFlag::Auto),
        "direct" => Ok(ProxyFlag::Direct),
        url => crate::probe::proxyenv::usable_url("--proxy", url)
            .map(ProxyFlag::Url)
            .map_err(|e| e.to_string()),
    }
}

/// `--pac`: an `http://`, `https://` or `file://` URL.
fn parse_pac(s: &str) -> Result<String, String> {
    let ok = ["http://", "https://", "file:///"]
        .iter()
        .any(|p| s.len() > p.len() && s.starts_with(p))
        && s.len() <= 2048
        && !s.chars().any(crate::sanitize::is_hazard)
        && !s.contains(char::is_whitespace);
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "'{}' is not a PAC file URL (http://, https:// or file:///)",
            crate::sanitize::outside_capped(&crate::redact::url_value(s).0, 120)
        ))
    }
}

/// A STUN server for `--stun`: `host:port`, `[v6]:port` for an IPv6 literal.
fn parse_stun(s: &str) -> Result<String, String> {
    crate::request::stun_server(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    All,
}

/// An interface name as the OS accepts it: 1-15 bytes, no '/', whitespace or control characters.
fn parse_interface(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "'{}' is not an interface name (1-15 visible ASCII characters, e.g. wlan0)",
            s.escape_default()
        ))
    }
}

/// The interval of `watch`: at least a second, at most a day.
fn parse_every(s: &str) -> Result<Duration, String> {
    let d = parse_step(s)?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}

impl RunArgs {
    pub fn only_set(&self) -> Option<BTreeSet<Probe>> {
        (!self.only.is_empty()).then(|| self.only.iter().copied().collect())
    }
}

fn parse_probe(s: &str) -> Result<Probe, String> {
    Probe::from_name(s.trim()).ok_or_else(|| {
        format!(
            "unknown probe '{s}' (known: {})",
            Probe::all()
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// A positive duration of at most a day, in humantime syntax.
fn parse_step(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration like 800ms or 5s ({e})"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    if d > Duration::from_secs(86_400) {
        return Err("must be at most 24h".into());
    }
    Ok(d)
}

fn parse_jitter(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration like 30s or 5m ({e})"))?;
    if d > Duration::from_secs(86_400) {
        return Err("must be at most 24h".into());
    }
    Ok(d)
}

/// `IP[:PORT]` (port 53 by default), `tls://host[:port][#IP]` or `https://host[:port][/path][#IP]`.
pub fn parse_resolver(s: &str) -> Result<DnsServer, String> {
    DnsServer::parse(s)
}

/// `off`, or a resolver as [`parse_resolver`] reads it.
pub fn parse_control(s: &str) -> Result<ControlSetting, String> {
    ControlSetting::parse(s)
}

/// A usage error as one line that keeps clap's hints: the missing argument named, the valid
/// values listed, and "did you mean" for a misspelt flag, value or subcommand.
pub fn usage_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = e.to_string();
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() || line.starts_with("tip:") {
            continue;
        }
        parts.push(line.trim_start_matches("error: ").to_owned());
    }
    let mut out = parts.join(" ");
    if out.is_empty() {
        out.push_str("invalid usage");
    }
    let suggested: Vec<String> = [
        ContextKind::SuggestedArg,
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedValue,
    ]
    .into_iter()
    .filter_map(|kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(vec![s.clone()]),
        Some(ContextValue::Strings(v)) => Some(v.clone()),
        _ => None,
    })
    .flatten()
    .collect();
    if !suggested.is_empty() {
        out.push_str(&format!("; did you mean '{}'?", suggested.join("' or '")));
    }
    format!("{out} (see --help)")
}

/// The known name closest to `wanted` (for "did you mean"), when one is close enough to be a
/// likely misspelling: an edit distance of at most a third of its length, `_` and `-` aside.
pub fn closest<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let w = norm(wanted);
    known
        .into_iter()
        .map(|k| (distance(&w, &norm(k)), k))
        .filter(|(d, k)| *d <= (k.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between two character strings.
fn distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> String {
        let mut argv = vec!["bmw-netcheck"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(_) => String::new(),
            Err(e) => usage_line(&e),
        }
    }

    #[test]
    fn usage_errors_keep_their_hints_in_one_line() {
        let missing = line(&["completions"]);
        assert!(missing.contains("<SHELL>"), "{missing}");
        let region = line(&["--region", "europe"]);
        assert!(region.contains("rest_of_world, north_america"), "{region}");
        let flag = line(&["--fromat", "json"]);
        assert!(flag.contains("did you mean '--format'"), "{flag}");
        for l in [missing, region, flag] {
            assert!(!l.contains('\n'), "{l}");
            assert!(l.ends_with("(see --help)"), "{l}");
        }
    }

    #[test]
    fn closest_names_a_likely_misspelling_only() {
        let ids = ["dns_filter", "device_clock", "server_side"];
        assert_eq!(closest("dnsfilter", ids), Some("dns_filter"));
        assert_eq!(closest("server-sied", ids), Some("server_side"));
        assert_eq!(closest("gremlins", ids), None);
    }

    #[test]
    fn resolver_forms() {
        let plain = |s: &str| parse_resolver(s).unwrap().plain_addr();
        assert_eq!(plain("9.9.9.9"), Some("9.9.9.9:53".parse().unwrap()));
        assert_eq!(plain("[::1]:54"), Some("[::1]:54".parse().unwrap()));
        assert_eq!(plain("tls://dns.example"), None);
        assert!(parse_resolver("dns.google").is_err());
        assert!(parse_resolver("1.2.3.4:0").is_err());
        assert!(parse_control("off").is_ok());
        assert!(parse_control("ftp://x").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_step("800ms").unwrap(), Duration::from_millis(800));
        assert!(parse_step("0s").is_err());
        assert!(parse_step("soon").is_err());
        assert!(parse_step("2d").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
