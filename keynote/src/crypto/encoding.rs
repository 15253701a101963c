//! The ASCII encodings of RFC 2792 keys and signatures (hex and base64) and the reference
//! tool's way of printing an encoded key or signature across indented lines.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

/// Why the hex or base64 text of a key or signature did not decode.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Hex text must have an even number of digits (RFC 2792 §3.1: two digits per byte).
    #[error("odd number of hex digits ({len})")]
    OddHexLength {
        /// Number of characters in the text.
        len: usize,
    },
    /// A character that is not a hex digit.
    #[error("invalid hex digit {byte:#04x} at byte offset {offset}")]
    InvalidHexDigit {
        /// Offset of the offending byte in the encoded text.
        offset: usize,
        /// The offending byte.
        byte: u8,
    },
    /// Base64 text must come in groups of four characters (the reference checks the length
    /// before decoding).
    #[error("base64 length {len} is not a multiple of 4")]
    Base64Length {
        /// Number of characters in the text.
        len: usize,
    },
    /// The text is not valid padded standard base64 (RFC 4648 §4).
    #[error("invalid base64: {reason}")]
    InvalidBase64 {
        /// What the base64 decoder reported, including the offset.
        reason: String,
    },
}

/// The ASCII encoding named by a key or signature-algorithm prefix (`...-hex:` / `...-base64:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextEncoding {
    /// Lower-case hex on output, either case accepted on input.
    Hex,
    /// Standard padded base64 (RFC 4648 §4), no line breaks.
    Base64,
}

impl TextEncoding {
    /// Decode `text` (the part after the prefix's colon).
    pub fn decode(self, text: &str) -> Result<Vec<u8>, DecodeError> {
        match self {
            TextEncoding::Hex => decode_hex(text),
            TextEncoding::Base64 => decode_base64(text),
        }
    }

    /// Encode `bytes` the way the reference does (lower-case hex, padded base64).
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            TextEncoding::Hex => hex::encode(bytes),
            TextEncoding::Base64 => STANDARD.encode(bytes),
        }
    }

    /// The suffix used in prefixes: `"hex"` or `"base64"`.
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Hex => "hex",
            TextEncoding::Base64 => "base64",
        }
    }
}

/// Decode hex digits of either case.
///
/// Deviation: the reference converts each pair with `strtoul`, so a non-hex character silently
/// becomes part of a smaller number ("1g" -> 0x01). That makes many strings denote the same
/// key; we reject them instead (the corpus never relies on it).
pub fn decode_hex(text: &str) -> Result<Vec<u8>, DecodeError> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(DecodeError::OddHexLength { len: bytes.len() });
    }
    let mut out = Vec::with_capacity(bytes.len() / 2);
    for (pair_index, pair) in bytes.chunks_exact(2).enumerate() {
        let mut value = 0u8;
        for (i, &byte) in pair.iter().enumerate() {
            let digit = match byte {
                b'0'..=b'9' => byte - b'0',
                b'a'..=b'f' => byte - b'a' + 10,
                b'A'..=b'F' => byte - b'A' + 10,
                _ => {
                    return Err(DecodeError::InvalidHexDigit {
                        offset: pair_index * 2 + i,
                        byte,
                    });
                }
            };
            value = (value << 4) | digit;
        }
        out.push(value);
    }
    Ok(out)
}

/// Decode standard padded base64.
///
/// As the reference (`kn_decode_key`, `keynote_sigverify_assertion`): the text length must be
/// a multiple of four, whitespace inside is skipped (`b64_pton`), padding and zero trailing bits
/// are required.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, DecodeError> {
    if !text.len().is_multiple_of(4) {
        return Err(DecodeError::Base64Length { len: text.len() });
    }
    let result = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        STANDARD.decode(compact)
    } else {
        STANDARD.decode(text)
    };
    result.map_err(|e| DecodeError::InvalidBase64 {
        reason: e.to_string(),
    })
}

/// Print `text` the way the reference `keynote sign` and `keynote keygen` do (`print_key`):
/// `offset` spaces, a double quote, `algname`, then `text`, breaking with a backslash-newline
/// and `offset` spaces whenever the current line reaches `length` columns (the first line
/// counts the quote and `algname`, as the reference does), then a closing quote and newline.
///
/// `length` smaller than 2 disables wrapping (the reference would loop forever or never wrap).
pub fn print_key(algname: &str, text: &str, offset: usize, length: usize) -> String {
    let indent = " ".repeat(offset);
    let mut out = String::with_capacity(text.len() * 2 + algname.len() + offset + 4);
    out.push_str(&indent);
    out.push('"');
    out.push_str(algname);
    // The reference's column counter: starts at the quote plus algname plus one, and after a
    // break restarts at one, so continuation lines hold `length - 1` characters.
    let mut column = algname.len() + 2;
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if length >= 2 && column == length {
            out.push_str("\\\n");
            out.push_str(&indent);
            column = 1;
        } else {
            out.push(c);
            chars.next();
            column += 1;
        }
    }
    out.push_str("\"\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        assert_eq!(decode_hex("00fFaB").unwrap(), vec![0, 0xff, 0xab]);
        assert_eq!(TextEncoding::Hex.encode(&[0, 0xff, 0xab]), "00ffab");
        assert_eq!(decode_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn hex_errors() {
        assert_eq!(decode_hex("abc"), Err(DecodeError::OddHexLength { len: 3 }));
        assert_eq!(
            decode_hex("a g0"),
            Err(DecodeError::InvalidHexDigit {
                offset: 1,
                byte: b' '
            })
        );
        assert_eq!(
            decode_hex("00g0"),
            Err(DecodeError::InvalidHexDigit {
                offset: 2,
                byte: b'g'
            })
        );
    }

    #[test]
    fn base64_rules() {
        assert_eq!(decode_base64("AAEC").unwrap(), vec![0, 1, 2]);
        assert_eq!(decode_base64("AA==").unwrap(), vec![0]);
        assert_eq!(
            decode_base64("AA").unwrap_err(),
            DecodeError::Base64Length { len: 2 }
        );
        assert!(matches!(
            decode_base64("AB=="),
            Err(DecodeError::InvalidBase64 { .. })
        ));
        assert!(matches!(
            decode_base64("A*=="),
            Err(DecodeError::InvalidBase64 { .. })
        ));
        // Whitespace inside is skipped, but counts towards the multiple-of-4 length check.
        assert_eq!(decode_base64("AA E C  ").unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn print_key_matches_reference_layout() {
        // keynote sign with print-offset 0 and print-length 20 (corpus case 242).
        let sig = "sig-rsa-sha1-hex:2ecd54e5fb65cb136b3c19ebd926d910a71b2a";
        let printed = print_key("", sig, 0, 20);
        assert_eq!(
            printed,
            "\"sig-rsa-sha1-hex:2\\\necd54e5fb65cb136b3c\\\n19ebd926d910a71b2a\"\n"
        );
        // Exact fit: no empty continuation line.
        assert_eq!(print_key("", "abc", 0, 5), "\"abc\"\n");
        assert_eq!(print_key("", "abcd", 0, 5), "\"abc\\\nd\"\n");
        // Offsets indent every line.
        assert_eq!(print_key("k:", "abcdef", 2, 6), "  \"k:ab\\\n  cdef\"\n");
        // Degenerate lengths never loop.
        assert_eq!(print_key("", "abc", 0, 1), "\"abc\"\n");
    }
}
