//! OpenPGP trust: keyrings from apt's `Signed-By` (files or inline blocks) and verification
//! of clear-signed `InRelease` files, in pure Rust.

use std::path::{Path, PathBuf};

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::types::KeyDetails;

use super::error::StackError;

/// Default keyrings when a source has no `Signed-By`: apt's global trust.
pub const APT_TRUSTED: &str = "etc/apt/trusted.gpg";
/// Directory of apt's global trusted keyrings.
pub const APT_TRUSTED_DIR: &str = "etc/apt/trusted.gpg.d";

/// A set of public keys and a description of where they came from (for messages).
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
    description: String,
}

impl Keyring {
    /// Load keyring files, binary (`.gpg`) or armored (`.asc`).
    pub fn from_files(paths: &[PathBuf]) -> Result<Self, StackError> {
        let mut keys = Vec::new();
        for path in paths {
            let bytes = fs_err::read(path).map_err(|source| StackError::ReadKeyring {
                path: path.clone(),
                source,
            })?;
            keys.extend(parse_keys(&bytes, &path.display().to_string())?);
        }
        let description = paths
            .iter()
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Self::non_empty(keys, description)
    }

    /// apt's global trust under `root`: `trusted.gpg` and `trusted.gpg.d/*.{gpg,asc}`.
    pub fn apt_default(root: &Path) -> Result<Self, StackError> {
        let mut paths = Vec::new();
        let legacy = root.join(APT_TRUSTED);
        if legacy.is_file() {
            paths.push(legacy);
        }
        if let Ok(entries) = fs_err::read_dir(root.join(APT_TRUSTED_DIR)) {
            let mut parts: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.extension()
                        .is_some_and(|ext| ext == "gpg" || ext == "asc")
                })
                .collect();
            parts.sort();
            paths.extend(parts);
        }
        Self::from_files(&paths)
    }

    /// Parse an ASCII-armored key block (an inline `Signed-By`).
    pub fn from_armored(text: &str, description: &str) -> Result<Self, StackError> {
        let keys = parse_keys(text.as_bytes(), description)?;
        Self::non_empty(keys, description.to_owned())
    }

    /// Keep only the keys whose primary or subkey fingerprint is listed (apt's fingerprint
    /// form of `Signed-By`).
    pub fn only_fingerprints(self, fingerprints: &[String]) -> Result<Self, StackError> {
        let wanted = |fingerprint: String| {
            fingerprints
                .iter()
                .any(|f| f.eq_ignore_ascii_case(&fingerprint))
        };
        let keys: Vec<SignedPublicKey> = self
            .keys
            .into_iter()
            .filter(|key| {
                wanted(hex::encode(key.fingerprint().as_bytes()))
                    || key
                        .public_subkeys
                        .iter()
                        .any(|sub| wanted(hex::encode(sub.key.fingerprint().as_bytes())))
            })
            .collect();
        let description = format!(
            "{} (fingerprints {})",
            self.description,
            fingerprints.join(", ")
        );
        Self::non_empty(keys, description)
    }

    /// Where the keys came from.
    pub fn description(&self) -> &str {
        &self.description
    }

    fn non_empty(keys: Vec<SignedPublicKey>, description: String) -> Result<Self, StackError> {
        if keys.is_empty() {
            return Err(StackError::EmptyKeyring {
                keyring: description,
            });
        }
        Ok(Self { keys, description })
    }
}

fn parse_keys(bytes: &[u8], what: &str) -> Result<Vec<SignedPublicKey>, StackError> {
    let parse_error = |source| StackError::ParseKeyring {
        keyring: what.to_owned(),
        source,
    };
    let (keys, _headers) = SignedPublicKey::from_reader_many(bytes).map_err(parse_error)?;
    keys.collect::<Result<Vec<_>, _>>().map_err(parse_error)
}

/// Verify a clear-signed `InRelease` and return the text that was signed. At least one of its
/// signatures (Debian signs with several keys) must verify against a key or subkey of
/// `keyring`; only the signed text is returned, so nothing outside the signature is trusted.
pub fn verify_inrelease(bytes: &[u8], keyring: &Keyring, url: &str) -> Result<String, StackError> {
    let text = std::str::from_utf8(bytes).map_err(|_| StackError::NotText {
        url: url.to_owned(),
    })?;
    let (message, _headers) =
        CleartextSignedMessage::from_string(text).map_err(|source| StackError::ParseInRelease {
            url: url.to_owned(),
            source,
        })?;
    let signed = message.signed_text();
    let verified = message.signatures().iter().any(|signature| {
        keyring.keys.iter().any(|key| {
            signature
                .verify(&key.primary_key, signed.as_bytes())
                .is_ok()
                || key
                    .public_subkeys
                    .iter()
                    .any(|sub| signature.verify(&sub.key, signed.as_bytes()).is_ok())
        })
    });
    if !verified {
        return Err(StackError::BadSignature {
            url: url.to_owned(),
            signatures: message.signatures().len(),
            keyring: keyring.description.clone(),
        });
    }
    // The signed text is CRLF-normalized; hand back plain lines.
    Ok(signed.replace("\r\n", "\n"))
}
