//! Profiles written to a temporary directory, for `--profile`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Thresholds for loopback on a loaded CI machine: the tests are about codes, not about how
/// busy the box is. A latency sample is lost after `--timeout` anyway.
pub const LOOPBACK_THRESHOLDS: &str = "latency_warn_ms = 1000.0\nlatency_fail_ms = 5000.0\n";

/// One `[[endpoint]]`. `public` defaults to `false` here: the fixtures answer with loopback
/// addresses, which the tool counts as a sinkhole for a public name.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSpec {
    pub name: String,
    pub host: String,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub expect_status: Option<Vec<u16>>,
    pub public: bool,
    pub role: Option<String>,
    pub protocol: Option<String>,
}

impl EndpointSpec {
    pub fn new(name: &str, host: &str, port: u16) -> EndpointSpec {
        EndpointSpec {
            name: name.into(),
            host: host.into(),
            port: Some(port),
            path: None,
            expect_status: None,
            public: false,
            role: None,
            protocol: None,
        }
    }

    pub fn path(mut self, path: &str) -> EndpointSpec {
        self.path = Some(path.into());
        self
    }

    pub fn expect_status(mut self, codes: &[u16]) -> EndpointSpec {
        self.expect_status = Some(codes.to_vec());
        self
    }

    pub fn public(mut self, public: bool) -> EndpointSpec {
        self.public = public;
        self
    }

    pub fn role(mut self, role: &str) -> EndpointSpec {
        self.role = Some(role.into());
        self
    }

    pub fn protocol(mut self, protocol: &str) -> EndpointSpec {
        self.protocol = Some(protocol.into());
        self
    }

    pub fn to_toml(&self) -> String {
        let mut t = String::from("[[endpoint]]\n");
        let _ = writeln!(t, "name = {}", quote(&self.name));
        let _ = writeln!(t, "host = {}", quote(&self.host));
        if let Some(port) = self.port {
            let _ = writeln!(t, "port = {port}");
        }
        if let Some(path) = &self.path {
            let _ = writeln!(t, "path = {}", quote(path));
        }
        if let Some(codes) = &self.expect_status {
            let list: Vec<String> = codes.iter().map(u16::to_string).collect();
            let _ = writeln!(t, "expect_status = [{}]", list.join(", "));
        }
        let _ = writeln!(t, "public = {}", self.public);
        if let Some(role) = &self.role {
            let _ = writeln!(t, "role = {}", quote(role));
        }
        if let Some(protocol) = &self.protocol {
            let _ = writeln!(t, "protocol = {}", quote(protocol));
        }
        t
    }
}

/// A TOML basic string. JSON string syntax is a subset TOML accepts.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A profile file in its own temporary directory (deleted when dropped).
pub struct ProfileFile {
    dir: TempDir,
    path: PathBuf,
}

impl ProfileFile {
    /// These endpoints, with [`LOOPBACK_THRESHOLDS`].
    pub fn new(endpoints: &[EndpointSpec]) -> ProfileFile {
        ProfileFile::with_thresholds(endpoints, LOOPBACK_THRESHOLDS)
    }

    /// These endpoints, with `thresholds` as the body of the `[thresholds]` table.
    pub fn with_thresholds(endpoints: &[EndpointSpec], thresholds: &str) -> ProfileFile {
        let mut text = String::from("name = \"fixture\"\n\n");
        for e in endpoints {
            text.push_str(&e.to_toml());
            text.push('\n');
        }
        if !thresholds.is_empty() {
            text.push_str("[thresholds]\n");
            text.push_str(thresholds);
        }
        ProfileFile::raw(&text)
    }

    /// Exactly this text.
    pub fn raw(text: &str) -> ProfileFile {
        let dir = tempfile::Builder::new()
            .prefix("netcheck-profile")
            .tempdir()
            .expect("temporary directory for the profile");
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, text).expect("write the profile");
        ProfileFile { dir, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the profile, for other files of the same test.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
