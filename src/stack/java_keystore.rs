//! A Java `cacerts` truststore built from PEM certificates, in the JKS format Debian's own
//! `ca-certificates-java` writes (so `keytool -list -storepass changeit` reads it), without
//! running a JVM at build time.
//!
//! JKS layout: magic `FEEDFEED`, version 2, entry count, then per trusted certificate: tag 2,
//! alias (Java modified UTF-8), creation time in ms, certificate type `X.509`, DER length and
//! bytes; finally SHA-1 over (password as UTF-16BE, `"Mighty Aphrodite"`, everything before).

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// The password Debian's and the JDK's default truststores use.
pub const DEFAULT_PASSWORD: &str = "changeit";

/// Creation time written for every entry, so the keystore is reproducible: the layer mtime.
const ENTRY_TIME_MS: u64 = crate::layer::LAYER_MTIME * 1000;

/// Decode every `CERTIFICATE` block of a PEM text into DER; `None` if a block is malformed.
pub fn pem_certificates(pem: &[u8]) -> Option<Vec<Vec<u8>>> {
    let text = std::str::from_utf8(pem).ok()?;
    let mut certificates = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let encoded = body.take()?;
            certificates.push(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()?,
            );
        } else if let Some(body) = body.as_mut() {
            body.push_str(line);
        }
    }
    if body.is_some() {
        return None;
    }
    Some(certificates)
}

/// Serialize a JKS truststore of `(alias, DER certificate)` pairs, in the given order.
pub fn jks_truststore(certificates: &[(String, Vec<u8>)], password: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xFEED_FEEDu32.to_be_bytes());
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(certificates.len() as u32).to_be_bytes());
    for (alias, der) in certificates {
        out.extend_from_slice(&2u32.to_be_bytes());
        write_utf(&mut out, alias);
        out.extend_from_slice(&ENTRY_TIME_MS.to_be_bytes());
        write_utf(&mut out, "X.509");
        out.extend_from_slice(&(der.len() as u32).to_be_bytes());
        out.extend_from_slice(der);
    }
    let mut hasher = Sha1::new();
    for unit in password.encode_utf16() {
        hasher.update(unit.to_be_bytes());
    }
    hasher.update(b"Mighty Aphrodite");
    hasher.update(&out);
    out.extend_from_slice(&hasher.finalize());
    out
}

/// `DataOutputStream.writeUTF`: a u16 length, then modified UTF-8 (NUL as two bytes).
fn write_utf(out: &mut Vec<u8>, text: &str) {
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c == '\0' {
            bytes.extend_from_slice(&[0xC0, 0x80]);
        } else {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
        }
    }
    let length = bytes.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(length as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..length]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_jks_layout_with_its_integrity_digest() {
        let store = jks_truststore(
            &[("debian:a.pem".to_owned(), vec![1, 2, 3])],
            DEFAULT_PASSWORD,
        );
        assert_eq!(
            &store[..12],
            &[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 1]
        );
        assert_eq!(&store[16..18], &[0, 12]);
        assert_eq!(&store[18..30], b"debian:a.pem");
        let (body, digest) = store.split_at(store.len() - 20);
        let mut hasher = Sha1::new();
        for unit in "changeit".encode_utf16() {
            hasher.update(unit.to_be_bytes());
        }
        hasher.update(b"Mighty Aphrodite");
        hasher.update(body);
        assert_eq!(digest, hasher.finalize().as_slice());
    }

    #[test]
    fn decodes_pem_blocks_and_rejects_truncated_ones() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBA==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(pem).unwrap(), vec![vec![1, 2, 3], vec![4]]);
        assert!(pem_certificates(b"-----BEGIN CERTIFICATE-----\nAQID\n").is_none());
    }
}
