//! The system's roots, read in two steps: its bundle file first, its certificate directories only
//! when a chain fails against the bundle.
//!
//! On Debian and its kin `/etc/ssl/certs` holds a link per certificate of the bundle file, twice
//! (by name and by hash): reading the directory costs about 300 file system calls for what the
//! bundle already gave, and was the largest single cost of a healthy run. A root an
//! administrator placed only in the directory still counts: a chain the bundle does not accept
//! is verified again with the directories read (once per run), so the verdict is the one the
//! whole store gives. Where to look follows rustls-native-certs: `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` when set, else what openssl-probe finds; macOS and Windows read their
//! platform store at once.

use rustls::pki_types::CertificateDer;
use std::path::PathBuf;

/// The system's certificates read so far, and the directories left to read.
pub(super) struct System {
    pub(super) certs: Vec<CertificateDer<'static>>,
    /// Certificate directories not read yet (empty once read, or where there are none).
    pub(super) dirs: Vec<PathBuf>,
    /// Files already read, by identity, so a link in a directory to the bundle is not read again.
    #[cfg(all(unix, not(target_os = "macos")))]
    seen: std::collections::HashSet<(u64, u64)>,
}

impl System {
    /// The first step: the bundle file; the directories too when there is no bundle or it
    /// holds no certificate.
    #[cfg(all(unix, not(target_os = "macos")))]
    pub(super) fn first() -> System {
        let (file, dirs) = paths();
        System::with(file.as_deref(), dirs)
    }

    /// [`System::first`] from a given bundle file and directories.
    #[cfg(all(unix, not(target_os = "macos")))]
    pub(super) fn with(file: Option<&std::path::Path>, dirs: Vec<PathBuf>) -> System {
        let mut sys = System {
            certs: Vec::new(),
            dirs,
            seen: Default::default(),
        };
        if let Some(file) = file {
            sys.read_file(file);
        }
        if sys.certs.is_empty() {
            sys.certs = sys.rest();
        }
        sys
    }

    #[cfg(not(all(unix, not(target_os = "macos"))))]
    pub(super) fn first() -> System {
        System {
            certs: rustls_native_certs::load_native_certs().certs,
            dirs: Vec::new(),
        }
    }

    /// The second step: the certificates of the directories that were not read yet, each file
    /// once (the bundle and the links to files already read are skipped).
    #[cfg(all(unix, not(target_os = "macos")))]
    pub(super) fn rest(&mut self) -> Vec<CertificateDer<'static>> {
        let before = self.certs.len();
        for dir in std::mem::take(&mut self.dirs) {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                self.read_file(&entry.path());
            }
        }
        let mut more = self.certs.split_off(before);
        more.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
        more.dedup();
        more
    }

    #[cfg(not(all(unix, not(target_os = "macos"))))]
    pub(super) fn rest(&mut self) -> Vec<CertificateDer<'static>> {
        Vec::new()
    }

    /// Reads the PEM certificates of one regular file (links followed, as OpenSSL does), unless
    /// it was read already. Unreadable files and broken entries are skipped, as
    /// rustls-native-certs does.
    #[cfg(all(unix, not(target_os = "macos")))]
    fn read_file(&mut self, path: &std::path::Path) {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if !meta.is_file() || !self.seen.insert((meta.dev(), meta.ino())) {
            return;
        }
        if let Ok(file) = std::fs::File::open(path) {
            self.certs.extend(pem_stream(file, READ_CHUNK));
        }
    }
}

/// How much of a certificate file is read at a time.
#[cfg(all(unix, not(target_os = "macos")))]
const READ_CHUNK: usize = 32 * 1024;

/// The certificates of a PEM file, read `chunk` bytes at a time through one buffer; nothing
/// when the file cannot be read to its end (as a file that cannot be opened).
///
/// The bundle (220 KB) used to be read whole into memory of its own, which the allocator takes
/// fresh from the kernel and gives back at once: on a virtual machine touching fresh memory is
/// the dearest part of reading it. One buffer the size of a few certificates is touched once
/// and reused; the certificates themselves are the only memory the file leaves behind.
#[cfg(all(unix, not(target_os = "macos")))]
fn pem_stream(mut r: impl std::io::Read, chunk: usize) -> Vec<CertificateDer<'static>> {
    use std::io::Read as _;
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut buf = Vec::with_capacity(2 * chunk);
    let mut out = Vec::new();
    loop {
        // `read_to_end` asks again after an interrupted read itself.
        let Ok(read) = (&mut r).take(chunk as u64).read_to_end(&mut buf) else {
            return Vec::new();
        };
        // Everything up to the last complete certificate is read now; a certificate cut by the
        // chunk's end waits at the buffer's start for the rest of its text.
        let done = memchr::memmem::rfind(&buf, END).map_or(0, |at| at + END.len());
        out.extend(pem_certificates(&buf[..done]));
        buf.drain(..done);
        if read == 0 {
            return out;
        }
    }
}

/// The certificates of a PEM text; other sections and broken ones are skipped.
///
/// Roots are public, so they need no constant-time decoding, which rustls-pki-types' reader
/// does because it is made for private keys. Each certificate's text and its line breaks are
/// found with `memchr`, and its lines are decoded by a SIMD base64 decoder: the system's bundle
/// (about 150 roots, 220 KB) had been a quarter of an offline run's instructions when read a
/// byte at a time.
#[cfg(all(unix, not(target_os = "macos")))]
fn pem_certificates(text: &[u8]) -> Vec<CertificateDer<'static>> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = memchr::memmem::find(rest, BEGIN) {
        let body = &rest[at + BEGIN.len()..];
        let Some(len) = memchr::memmem::find(body, END) else {
            break;
        };
        // The lines joined (found a vector at a time), then decoded: anything outside the
        // alphabet, or a wrong padding, refuses the certificate.
        let text = &body[..len];
        let mut b64 = Vec::with_capacity(len);
        let mut from = 0;
        for to in memchr::memchr_iter(b'\n', text).chain([text.len()]) {
            b64.extend_from_slice(text[from..to].trim_ascii());
            from = to + 1;
        }
        if let Ok(der) = base64_simd::STANDARD.decode_to_vec(&b64) {
            out.push(CertificateDer::from(der));
        }
        rest = &body[len + END.len()..];
    }
    out
}

/// Where the system keeps its roots: the variables OpenSSL reads, else openssl-probe's finds.
#[cfg(all(unix, not(target_os = "macos")))]
fn paths() -> (Option<PathBuf>, Vec<PathBuf>) {
    let file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let dirs: Vec<PathBuf> = std::env::var_os("SSL_CERT_DIR")
        .map(|d| {
            std::env::split_paths(&d)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if file.is_some() || !dirs.is_empty() {
        return (file, dirs);
    }
    let found = openssl_probe::probe();
    (found.cert_file, found.cert_dir)
}

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    use super::*;
    use std::io::Read;

    fn pem(cert: &rcgen::Certificate) -> String {
        cert.pem()
    }

    fn cert(name: &str) -> rcgen::Certificate {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).expect("self-signed")
    }

    /// The fast reader finds what rustls-pki-types finds in the same text, and skips the rest.
    #[test]
    fn the_pem_reader_agrees_with_the_constant_time_one() {
        use rustls::pki_types::pem::PemObject;
        let (a, b) = (cert("a.test"), cert("b.test"));
        let text = format!(
            "Bag Attributes\n{}\r\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{}",
            pem(&a),
            pem(&b)
        );
        let ours = pem_certificates(text.as_bytes());
        let theirs: Vec<_> = CertificateDer::pem_slice_iter(text.as_bytes())
            .flatten()
            .collect();
        assert_eq!(ours.len(), 2);
        assert_eq!(ours, theirs);
        let broken = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert!(pem_certificates(broken.as_bytes()).is_empty());
    }

    /// The file is read a chunk at a time: a certificate cut anywhere by a chunk's end, even in
    /// a marker, is read whole, and the certificates are those of the whole text.
    #[test]
    fn a_file_read_in_chunks_gives_the_certificates_of_its_whole_text() {
        let certs: Vec<_> = ["a.test", "b.test", "c.test"].map(cert).into();
        let mut text = String::from("# a bundle\n");
        for c in &certs {
            text += &pem(c);
            text += "\n";
        }
        text += "-----BEGIN CERTIFICATE-----\nnot finished";
        let whole = pem_certificates(text.as_bytes());
        assert_eq!(whole.len(), 3);
        for chunk in (1..64).chain([500, 1000, text.len(), 2 * text.len()]) {
            assert_eq!(
                pem_stream(text.as_bytes(), chunk),
                whole,
                "chunk of {chunk} bytes"
            );
        }
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("unreadable"))
            }
        }
        assert!(pem_stream(text.as_bytes().chain(Failing), 64).is_empty());
    }

    /// The bundle is read first; the directory's own certificate only in the second step, and
    /// the directory's link to the bundle and its second link to a file are not read again.
    #[test]
    fn the_directory_is_read_only_when_asked_and_each_file_once() {
        let d = tempfile::tempdir().expect("tempdir");
        let (a, b, c) = (cert("a.test"), cert("b.test"), cert("c.test"));
        let bundle = d.path().join("bundle.pem");
        std::fs::write(&bundle, pem(&a) + &pem(&b)).expect("bundle");
        let dir = d.path().join("certs");
        std::fs::create_dir(&dir).expect("dir");
        std::os::unix::fs::symlink(&bundle, dir.join("ca-certificates.crt")).expect("link");
        std::fs::write(dir.join("local.pem"), pem(&c)).expect("local");
        std::os::unix::fs::symlink(dir.join("local.pem"), dir.join("abcd1234.0")).expect("hash");
        std::fs::write(dir.join("notes.txt"), "not a certificate").expect("notes");

        let mut sys = System::with(Some(&bundle), vec![dir]);
        assert_eq!(sys.certs.len(), 2, "the bundle's two roots");
        let more = sys.rest();
        assert_eq!(more.len(), 1, "only the directory's own root is new");
        assert_eq!(more[0].as_ref(), c.der().as_ref());
        assert!(sys.dirs.is_empty(), "the directories are read once");
        assert!(sys.rest().is_empty());
    }
}
