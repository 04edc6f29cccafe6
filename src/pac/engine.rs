//! A PAC file run in QuickJS (`rquickjs`), as outside input: the script gets a memory limit, a
//! stack limit and a wall-clock bound enforced by QuickJS's interrupt handler (a script that
//! loops forever is stopped, not waited for), and nothing but the PAC helper functions. The
//! context has no module loader, no `os` or `std` module and no timers: the only ways out of the
//! script are [`dnsResolve`-style look-ups](Lookup), each bounded by the caller and counted here.

use rquickjs::{CaughtError, Context, Function, Runtime, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The helper functions PAC files expect, written in JavaScript (see the file's comment).
const PRELUDE: &str = include_str!("prelude.js");

/// A host name to its addresses, bounded by the caller; empty when it does not resolve.
pub type Lookup = Arc<dyn Fn(&str) -> Vec<IpAddr> + Send + Sync>;

/// The bounds of one PAC evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time for compiling the script and every `FindProxyForURL` call together.
    pub time: Duration,
    /// The engine's heap.
    pub memory: usize,
    /// Look-ups the script may make (`dnsResolve`, `isInNet`, ...); later ones answer nothing.
    pub lookups: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            time: Duration::from_secs(2),
            memory: 32 << 20,
            lookups: 32,
        }
    }
}

/// Why a PAC file gave no answers at all.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptError {
    /// The script does not compile, or its top level throws.
    Broken(String),
    /// It ran past the time bound and was stopped.
    Stopped(Duration),
    /// It asked for more memory than it is given.
    OutOfMemory,
    /// It defines no `FindProxyForURL` function.
    NoFunction,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptError::Broken(why) => write!(f, "the script fails: {why}"),
            ScriptError::Stopped(t) => write!(
                f,
                "the script ran longer than {} and was stopped",
                humantime::format_duration(*t)
            ),
            ScriptError::OutOfMemory => write!(f, "the script needed more memory than allowed"),
            ScriptError::NoFunction => write!(f, "the script defines no FindProxyForURL function"),
        }
    }
}

/// What one `FindProxyForURL(url, host)` call gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The string it returned.
    Text(String),
    /// It threw; the message.
    Threw(String),
    /// It returned something that is not a string; its type.
    NotText(String),
}

/// Runs `script` and calls `FindProxyForURL(url, host)` for each of `asks`, in order.
pub fn evaluate(
    script: &str,
    asks: &[(String, String)],
    lookup: Lookup,
    my_ip: IpAddr,
    limits: Limits,
) -> Result<Vec<Answer>, ScriptError> {
    let rt = Runtime::new().map_err(|e| ScriptError::Broken(e.to_string()))?;
    rt.set_memory_limit(limits.memory);
    rt.set_max_stack_size(512 * 1024);
    let stopped = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + limits.time;
    let flag = stopped.clone();
    rt.set_interrupt_handler(Some(Box::new(move || {
        let over = Instant::now() >= until;
        if over {
            flag.store(true, Ordering::Relaxed);
        }
        over
    })));
    let ctx = Context::full(&rt).map_err(|e| ScriptError::Broken(e.to_string()))?;
    let limit_error = |why: String| {
        if stopped.load(Ordering::Relaxed) {
            ScriptError::Stopped(limits.time)
        } else if why.contains("out of memory") {
            ScriptError::OutOfMemory
        } else {
            ScriptError::Broken(why)
        }
    };
    ctx.with(|ctx| {
        install(&ctx, lookup, my_ip, limits.lookups)
            .map_err(|e| ScriptError::Broken(caught(&ctx, e)))?;
        ctx.eval::<(), _>(PRELUDE)
            .map_err(|e| ScriptError::Broken(caught(&ctx, e)))?;
        ctx.eval::<(), _>(script)
            .map_err(|e| limit_error(caught(&ctx, e)))?;
        let find: Function = ctx
            .globals()
            .get::<_, Value>("FindProxyForURL")
            .ok()
            .and_then(|v| v.into_function())
            .ok_or(ScriptError::NoFunction)?;
        let mut answers = Vec::with_capacity(asks.len());
        for (url, host) in asks {
            let answer = match find.call::<_, Value>((url.as_str(), host.as_str())) {
                Ok(v) => match v.as_string().map(|s| s.to_string()) {
                    Some(Ok(s)) => Answer::Text(s),
                    _ => Answer::NotText(v.type_name().to_owned()),
                },
                Err(e) => {
                    let why = caught(&ctx, e);
                    if stopped.load(Ordering::Relaxed) || why.contains("out of memory") {
                        return Err(limit_error(why));
                    }
                    Answer::Threw(why)
                }
            };
            answers.push(answer);
        }
        Ok(answers)
    })
}

/// The functions that need the program: name look-ups (bounded in number) and the address this
/// device uses.
fn install(
    ctx: &rquickjs::Ctx<'_>,
    lookup: Lookup,
    my_ip: IpAddr,
    max: usize,
) -> rquickjs::Result<()> {
    let used = Arc::new(AtomicUsize::new(0));
    let resolve = {
        let (lookup, used) = (lookup.clone(), used.clone());
        move |host: String| -> Vec<IpAddr> {
            if used.fetch_add(1, Ordering::Relaxed) >= max {
                return Vec::new();
            }
            if let Ok(ip) = host.parse::<IpAddr>() {
                return vec![ip];
            }
            lookup(&host)
        }
    };
    let first = resolve.clone();
    let globals = ctx.globals();
    globals.set(
        "__pacDnsResolve",
        Function::new(ctx.clone(), move |host: String| {
            first(host)
                .into_iter()
                .find(IpAddr::is_ipv4)
                .map(|ip| ip.to_string())
        })?,
    )?;
    globals.set(
        "dnsResolveEx",
        Function::new(ctx.clone(), move |host: String| {
            let all: Vec<String> = resolve(host).iter().map(ToString::to_string).collect();
            all.join(";")
        })?,
    )?;
    let mine = my_ip.to_string();
    let mine_ex = mine.clone();
    globals.set(
        "myIpAddress",
        Function::new(ctx.clone(), move || mine.clone())?,
    )?;
    globals.set(
        "myIpAddressEx",
        Function::new(ctx.clone(), move || mine_ex.clone())?,
    )?;
    Ok(())
}

/// A thrown value or engine error in a few words (the message of an `Error`, the value itself
/// otherwise), capped: a script may throw megabytes.
fn caught(ctx: &rquickjs::Ctx<'_>, e: rquickjs::Error) -> String {
    let text = match CaughtError::from_error(ctx, e) {
        CaughtError::Exception(ex) => ex.message().unwrap_or_else(|| "an exception".into()),
        CaughtError::Value(v) => v
            .as_string()
            .and_then(|s| s.to_string().ok())
            .unwrap_or_else(|| format!("a {} value", v.type_name())),
        CaughtError::Error(e) => e.to_string(),
    };
    crate::sanitize::outside_capped(&text, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str, host: &str) -> Result<Vec<Answer>, ScriptError> {
        let lookup: Lookup = Arc::new(|h: &str| {
            if h == "intranet.corp.lan" {
                vec!["10.1.2.3".parse().unwrap()]
            } else {
                Vec::new()
            }
        });
        let limits = Limits {
            time: Duration::from_millis(300),
            ..Limits::default()
        };
        let asks = vec![(format!("https://{host}/"), host.to_owned())];
        evaluate(
            script,
            &asks,
            lookup,
            "192.168.1.20".parse().unwrap(),
            limits,
        )
    }

    fn text(s: &str) -> Result<Vec<Answer>, ScriptError> {
        Ok(vec![Answer::Text(s.into())])
    }

    #[test]
    fn helpers_answer_like_browsers() {
        let pac = r#"function FindProxyForURL(url, host) {
            if (isPlainHostName(host)) return "DIRECT";
            if (shExpMatch(host, "*.bmwgroup.com")) return "PROXY p1:3128; DIRECT";
            if (dnsDomainIs(host, ".corp.lan") && isInNet(host, "10.0.0.0", "255.0.0.0"))
                return "PROXY inside:8080";
            if (isInNet(myIpAddress(), "192.168.0.0", "255.255.0.0")) return "PROXY home:1";
            return "DIRECT"; }"#;
        assert_eq!(
            run(pac, "cocoapi.bmwgroup.com"),
            text("PROXY p1:3128; DIRECT")
        );
        assert_eq!(run(pac, "intranet.corp.lan"), text("PROXY inside:8080"));
        assert_eq!(run(pac, "printer"), text("DIRECT"));
        assert_eq!(run(pac, "other.example"), text("PROXY home:1"));
        let levels = "function FindProxyForURL(u, h) { return String(dnsDomainLevels(h)) + \
                      localHostOrDomainIs('www', 'www.corp.lan') + convert_addr('10.0.0.1') + \
                      isResolvable('nowhere.lan') + weekdayRange('SUN', 'SAT') + \
                      timeRange(0, 24) + dateRange(1, 31); }";
        assert_eq!(
            run(levels, "a.b.c"),
            text("2true167772161falsetruetruetrue")
        );
    }

    #[test]
    fn a_loop_is_stopped_and_memory_is_bounded() {
        let forever = "function FindProxyForURL(u, h) { while (true) {} }";
        assert_eq!(
            run(forever, "x"),
            Err(ScriptError::Stopped(Duration::from_millis(300)))
        );
        let top = "while (true) {}";
        assert!(matches!(run(top, "x"), Err(ScriptError::Stopped(_))));
        let greedy = "function FindProxyForURL(u, h) { var a = []; \
                      for (;;) a.push(new Array(100000).fill(u)); }";
        assert!(matches!(
            run(greedy, "x"),
            Err(ScriptError::OutOfMemory | ScriptError::Stopped(_))
        ));
    }

    #[test]
    fn throws_garbage_and_broken_scripts_are_named() {
        let throws = "function FindProxyForURL(u, h) { throw new Error('no rule for ' + h); }";
        assert_eq!(
            run(throws, "x.lan"),
            Ok(vec![Answer::Threw("no rule for x.lan".into())])
        );
        let number = "function FindProxyForURL(u, h) { return 42; }";
        assert_eq!(run(number, "x"), Ok(vec![Answer::NotText("int".into())]));
        assert!(matches!(
            run("function (", "x"),
            Err(ScriptError::Broken(_))
        ));
        assert_eq!(run("var x = 1;", "x"), Err(ScriptError::NoFunction));
    }

    #[test]
    fn the_script_has_no_way_out() {
        let probe = "function FindProxyForURL(u, h) { return [typeof require, typeof os, \
                     typeof std, typeof fetch, typeof XMLHttpRequest, typeof setTimeout].join(); }";
        assert_eq!(
            run(probe, "x"),
            text("undefined,undefined,undefined,undefined,undefined,undefined")
        );
    }
}
