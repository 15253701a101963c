//! The name of a signer: `openpgp:<PRIMARY KEY FINGERPRINT>`.
//!
//! One spelling per key, so that KeyNote principals, JSON output and policy files compare as
//! strings: upper-case hex without spaces, 40 digits for v4 keys and 64 for v6 keys. Parsing is
//! lenient (lower case, spaces and an optional `0x` are accepted); display is canonical.

use std::fmt;
use std::str::FromStr;

use sequoia_openpgp::Fingerprint;

/// The prefix of every OpenPGP principal.
pub const PREFIX: &str = "openpgp:";

/// An OpenPGP signer, named by its primary key's fingerprint.
///
/// Ordering is the byte order of the canonical string, so a `BTreeSet<Principal>` lists signers
/// in a stable order (the `signers` action attribute relies on it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Principal(String);

/// Why a string is not an OpenPGP principal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrincipalError {
    /// The string does not start with `openpgp:`.
    #[error("principal {0:?} does not start with \"openpgp:\"")]
    Prefix(String),
    /// A character that is neither a hex digit nor a space, at this offset after the prefix.
    #[error("principal {input:?}: character {ch:?} at offset {offset} is not a hex digit")]
    NotHex {
        /// The whole input.
        input: String,
        /// The offending character.
        ch: char,
        /// Its byte offset in the input.
        offset: usize,
    },
    /// The fingerprint has the wrong number of digits (40 for v4 keys, 64 for v6 keys).
    #[error("principal {input:?} has {digits} hex digits; a v4 fingerprint has 40, a v6 one 64")]
    Length {
        /// The whole input.
        input: String,
        /// How many hex digits were found.
        digits: usize,
    },
}

impl Principal {
    /// The principal of the key with this (primary key) fingerprint.
    pub fn from_fingerprint(fpr: &Fingerprint) -> Principal {
        Principal(format!("{PREFIX}{}", fpr.to_hex()))
    }

    /// The canonical string, e.g. `openpgp:96E07AF25771955980DAD10020D04E5A713660A7`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The fingerprint part, upper-case hex.
    pub fn fingerprint_hex(&self) -> &str {
        self.0.get(PREFIX.len()..).unwrap_or_default()
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Principal {
    type Err = PrincipalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix(PREFIX)
            .ok_or_else(|| PrincipalError::Prefix(s.to_owned()))?;
        let rest_offset = PREFIX.len();
        let (rest, skip) = match rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            Some(r) => (r, 2),
            None => (rest, 0),
        };
        let mut hex = String::with_capacity(64);
        for (i, ch) in rest.char_indices() {
            if ch == ' ' {
                continue;
            }
            if !ch.is_ascii_hexdigit() {
                return Err(PrincipalError::NotHex {
                    input: s.to_owned(),
                    ch,
                    offset: rest_offset + skip + i,
                });
            }
            hex.push(ch.to_ascii_uppercase());
        }
        if hex.len() != 40 && hex.len() != 64 {
            return Err(PrincipalError::Length {
                input: s.to_owned(),
                digits: hex.len(),
            });
        }
        Ok(Principal(format!("{PREFIX}{hex}")))
    }
}

impl serde::Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_lenient_display_is_canonical() {
        let p: Principal = "openpgp:96e0 7af2 5771 9559 80da  d100 20d0 4e5a 7136 60a7"
            .parse()
            .unwrap();
        assert_eq!(
            p.to_string(),
            "openpgp:96E07AF25771955980DAD10020D04E5A713660A7"
        );
        assert_eq!(p.fingerprint_hex().len(), 40);
        let q: Principal = "openpgp:0x96E07AF25771955980DAD10020D04E5A713660A7"
            .parse()
            .unwrap();
        assert_eq!(p, q);
    }

    #[test]
    fn parse_errors_say_what() {
        assert!(matches!(
            "gpg:96E0".parse::<Principal>(),
            Err(PrincipalError::Prefix(_))
        ));
        assert!(matches!(
            "openpgp:96E0Z".parse::<Principal>(),
            Err(PrincipalError::NotHex {
                ch: 'Z',
                offset: 12,
                ..
            })
        ));
        assert!(matches!(
            "openpgp:96E0".parse::<Principal>(),
            Err(PrincipalError::Length { digits: 4, .. })
        ));
        // 64 digits: a v6 fingerprint.
        let v6 = format!("openpgp:{}", "ab".repeat(32));
        assert_eq!(
            v6.parse::<Principal>().unwrap().fingerprint_hex(),
            "AB".repeat(32)
        );
    }

    #[test]
    fn from_fingerprint_matches_parse() {
        let fpr: Fingerprint = "96E07AF25771955980DAD10020D04E5A713660A7".parse().unwrap();
        let p = Principal::from_fingerprint(&fpr);
        assert_eq!(p, p.as_str().parse().unwrap());
    }
}
