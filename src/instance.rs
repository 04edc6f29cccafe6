//! The `instance` label a device reports under (`--push`, `serve`).
//!
//! A fleet needs one stable name per device, and the name travels to a shared monitoring system,
//! so it must not reveal the device. The default is therefore an application-specific id in the
//! way systemd recommends (`sd_id128_get_machine_app_specific`): a keyed hash (HMAC-SHA256) of the
//! machine id (`/etc/machine-id`, else `/var/lib/dbus/machine-id`), never the id itself. It stays
//! the same across runs and reboots, differs between devices, and cannot be turned back into the
//! machine id or matched with what other programs derive from it. Where no machine id exists, the
//! host name is hashed the same way.

use crate::error::AppError;
use aws_lc_rs::hmac;

/// What is hashed with the machine id as the key: names this program and the id's purpose.
const PURPOSE: &[u8] = b"bmw-netcheck instance label v1";

/// The longest `--instance` accepted.
pub const MAX_LEN: usize = 128;

/// `--instance`: letters, digits, `.`, `_`, `-` and `:` (it becomes a URL path segment of the
/// Pushgateway and a label value), at most [`MAX_LEN`] characters.
pub fn parse(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().count() > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        return Err(format!(
            "'{}' is not allowed (letters, digits, '.', '_', '-' and ':' are)",
            bad.escape_default()
        ));
    }
    Ok(s.to_owned())
}

/// The label to use: `--instance`, else the device's derived id.
pub fn of(explicit: Option<&str>) -> Result<String, AppError> {
    if let Some(id) = explicit {
        return Ok(id.to_owned());
    }
    let secret = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .or_else(|| sysinfo::System::host_name().ok().filter(|h| !h.is_empty()));
    match secret {
        Some(s) => Ok(derive(s.as_bytes())),
        None => Err(AppError::usage(
            "this device has no machine id or host name to derive an instance label from: pass --instance ID",
        )),
    }
}

/// `bmw-` and 16 hex digits (64 bits) of HMAC-SHA256(key = the secret, message = [`PURPOSE`]).
pub fn derive(secret: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, PURPOSE);
    let hex: String = tag.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("bmw-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_distinct_and_hide_the_secret() {
        let a = derive(b"0123456789abcdef0123456789abcdef");
        assert_eq!(a, derive(b"0123456789abcdef0123456789abcdef"));
        assert_ne!(a, derive(b"fedcba9876543210fedcba9876543210"));
        assert_eq!(a.len(), 4 + 16);
        assert!(!a.contains("0123456789"));
        assert!(parse(&a).is_ok());
    }

    #[test]
    fn this_device_has_a_valid_default() {
        let id = of(None).expect("a machine id or host name");
        assert!(parse(&id).is_ok(), "{id}");
        assert_eq!(id, of(None).unwrap());
    }

    #[test]
    fn labels_that_would_break_a_path_or_a_label_are_refused() {
        for bad in ["", "a/b", "a b", "x\"y", "é", "a\nb", &"x".repeat(129)] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse("kiosk-07.hall:2").unwrap(), "kiosk-07.hall:2");
    }

    /// The crypto library this HMAC (and rustls) uses is built to seed its random generator from
    /// the operating system (`.cargo/config.toml`): seeding it from CPU jitter costs some 60 ms of
    /// CPU in every run that makes a handshake (BENCHMARKS.md, "Lean and steady").
    #[test]
    fn the_crypto_library_is_seeded_without_cpu_jitter() {
        assert!(
            aws_lc_rs::try_fips_cpu_jitter_entropy().is_err(),
            "aws-lc was built with its CPU jitter seed: AWS_LC_SYS_NO_JITTER_ENTROPY is not set"
        );
    }
}
