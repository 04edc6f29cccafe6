//! ipv6: is IPv6 broken on this network?
//!
//! When a host has IPv6 addresses, devices try IPv6 first; if IPv6 packets vanish, the app waits
//! for a timeout before falling back, or gives up. The tcp stage tries both families at once and
//! keeps each family's outcome; this probe compares them across endpoints. No probing of its own.

use crate::model::{Check, Probe, Status};
use crate::probe::attempt::{Attempt, Outcome};
use crate::probe::definition::{Definition, Run};

/// The ipv6 probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Ipv6,
    name: "ipv6",
    description: "IPv6 connects against IPv4 ones, to spot a broken IPv6 path",
    codes: &[
        "ipv6.ok",
        "ipv6.broken",
        "ipv6.unavailable",
        "ipv6.timeout",
        "ipv6.skipped",
    ],
    keys: &[],
    metrics: &[],
    needs: &[Probe::Dns, Probe::Tcp],
    run: Run::Reader(|input| run(input.attempts)),
};

/// `attempts`: per endpoint name, the tcp stage's attempts of both families.
pub fn run(attempts: &[(String, Vec<Attempt>)]) -> Check {
    let mut broken = Vec::new();
    let mut working = Vec::new();
    let mut v6_seen = false;
    for (name, list) in attempts {
        // An attempt this device could not even make (no descriptor left) says nothing of IPv6.
        let v6 = list
            .iter()
            .find(|a| a.address.is_ipv6() && a.outcome != Outcome::LocalLimit);
        let v4_ok = list
            .iter()
            .any(|a| a.address.is_ipv4() && a.outcome == Outcome::Ok);
        if let Some(a) = v6 {
            v6_seen = true;
            if a.outcome == Outcome::Ok {
                working.push(name.clone());
            } else if v4_ok {
                broken.push(format!("{name} ({})", a.outcome.label()));
            }
        }
    }
    let data = |c: Check| {
        c.with("working", working.clone())
            .with("broken", broken.clone())
    };
    if !broken.is_empty() {
        return data(Check::new(
            Probe::Ipv6,
            None,
            Status::Warn,
            "ipv6.broken",
            format!(
                "IPv6 connections fail while IPv4 works: {} — apps may hang before falling back",
                broken.join(", ")
            ),
        ));
    }
    if !working.is_empty() {
        return data(Check::new(
            Probe::Ipv6,
            None,
            Status::Pass,
            "ipv6.ok",
            format!(
                "IPv6 works ({} endpoint(s) reached over IPv6)",
                working.len()
            ),
        ));
    }
    let why = if v6_seen {
        "IPv6 and IPv4 both failed: nothing to compare"
    } else {
        "no endpoint had an IPv6 address to try"
    };
    data(Check::new(
        Probe::Ipv6,
        None,
        Status::Skip,
        "ipv6.unavailable",
        why,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(addr: &str, outcome: Outcome) -> Attempt {
        Attempt {
            address: addr.parse().expect("test address"),
            outcome,
            connect_ms: 1.0,
            detail: String::new(),
        }
    }

    #[test]
    fn compares_families() {
        let broken = vec![(
            "api".to_owned(),
            vec![
                att("[::1]:443", Outcome::Timeout),
                att("127.0.0.1:443", Outcome::Ok),
            ],
        )];
        assert_eq!(run(&broken).code, "ipv6.broken");
        let fine = vec![("api".to_owned(), vec![att("[::1]:443", Outcome::Ok)])];
        assert_eq!(run(&fine).code, "ipv6.ok");
        let v4only = vec![("api".to_owned(), vec![att("127.0.0.1:443", Outcome::Ok)])];
        assert_eq!(run(&v4only).code, "ipv6.unavailable");
        let both = vec![(
            "api".to_owned(),
            vec![
                att("[::1]:443", Outcome::Refused),
                att("127.0.0.1:443", Outcome::Refused),
            ],
        )];
        assert_eq!(run(&both).status, Status::Skip);
    }
}
