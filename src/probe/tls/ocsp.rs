//! Reading a stapled OCSP answer: does the server's own revocation answer say "revoked"?
//!
//! Why: a server may staple an OCSP response that says its certificate was revoked; webpki does
//! not look at stapled answers, so without this the handshake would pass. Only the status of the
//! answer about the leaf (matched by serial number) is read (RFC 6960, section 4.2.1); the
//! answer's signature is not checked, so a "revoked" here is the server's own word.

use x509_parser::der_parser::ber::{BerObject, BerObjectContent};
use x509_parser::der_parser::der::parse_der;

/// What a stapled answer says about the certificate with `serial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    Revoked,
    Unknown,
}

/// The status of `serial` in a DER OCSPResponse; `None` when the answer is not readable or does
/// not speak of this certificate.
pub fn status_of(response: &[u8], serial: &[u8]) -> Option<Status> {
    let (_, top) = parse_der(response).ok()?;
    let top = top.as_sequence().ok()?;
    // responseStatus 0 = successful; anything else carries no certificate status.
    if top.first()?.as_u32().ok()? != 0 {
        return None;
    }
    let bytes = inner(top.get(1)?)?;
    let (_, rb) = parse_der(bytes).ok()?;
    let rb = rb.as_sequence().ok()?;
    let basic = rb.get(1)?.as_slice().ok()?;
    let (_, basic) = parse_der(basic).ok()?;
    let tbs = basic.as_sequence().ok()?.first()?;
    let responses = tbs
        .as_sequence()
        .ok()?
        .iter()
        .find(|o| o.header.is_universal() && o.as_sequence().is_ok())?;
    let want = trim(serial);
    for single in responses.as_sequence().ok()? {
        let parts = single.as_sequence().ok()?;
        let cert_id = parts.first()?.as_sequence().ok()?;
        let got = match &cert_id.get(3)?.content {
            BerObjectContent::Integer(b) => trim(b),
            _ => continue,
        };
        if got != want {
            continue;
        }
        return Some(match parts.get(1)?.header.tag().0 {
            0 => Status::Good,
            1 => Status::Revoked,
            _ => Status::Unknown,
        });
    }
    None
}

/// The content of an explicitly tagged element.
fn inner<'a>(o: &'a BerObject<'a>) -> Option<&'a [u8]> {
    match &o.content {
        BerObjectContent::Unknown(any) => Some(any.data),
        BerObjectContent::Tagged(_, _, obj) => obj.as_slice().ok().or_else(|| inner(obj)),
        _ => None,
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let zeros = b.iter().take_while(|x| **x == 0).count();
    &b[zeros.min(b.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_no_answer() {
        assert_eq!(status_of(b"", &[1]), None);
        assert_eq!(status_of(&[0x30, 0x03, 0x0a, 0x01, 0x01], &[1]), None);
        assert_eq!(status_of(&[0xff; 40], &[1]), None);
    }
}
