//! Adding a signature to a tag in the one-block layout.
//!
//! The recommended stacked layout (see [`crate::parse`]) is one armored block holding every
//! signature packet, each over the tag content. Adding a co-signature therefore means: take the
//! existing block's packets, append the new one, and re-armor the lot after the unchanged
//! content. The new object has a new id; the content (and so every earlier signature) is
//! untouched.

use std::io::Write;

use sequoia_openpgp as openpgp;

use openpgp::armor;
use openpgp::packet::Signature;
use openpgp::parse::Parse;
use openpgp::serialize::Marshal;
use openpgp::{Packet, PacketPile};

use crate::limits::MAX_SIGNATURES_PER_TAG;
use crate::parse::{ParseError, TagObject};

/// Why a signature could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The tag has several blocks (onion layout): appending to the one-block layout would mix
    /// layouts.
    #[error(
        "the tag has {0} signature blocks (onion layout); only one-block tags can be co-signed"
    )]
    Onion(usize),
    /// The new signature is not one signature packet.
    #[error("the new signature is not a single OpenPGP signature: {0}")]
    NotASignature(String),
    /// Adding it would exceed [`MAX_SIGNATURES_PER_TAG`].
    #[error("the tag already carries {0} signatures, the limit")]
    TooMany(usize),
    /// The result does not parse back (should not happen; reported rather than written).
    #[error("the new tag object does not parse: {0}")]
    Reparse(#[from] ParseError),
    /// Serialisation failed.
    #[error("cannot serialise the signature block: {0}")]
    Serialize(String),
}

/// Parse a detached signature, armored or binary, that must be exactly one signature packet.
pub fn parse_detached(bytes: &[u8]) -> Result<Signature, StackError> {
    let pile =
        PacketPile::from_bytes(bytes).map_err(|e| StackError::NotASignature(format!("{e:#}")))?;
    let mut packets = pile.into_children();
    match (packets.next(), packets.next()) {
        (Some(Packet::Signature(sig)), None) => Ok(sig),
        (Some(p), None) => Err(StackError::NotASignature(format!("a {} packet", p.tag()))),
        _ => Err(StackError::NotASignature(
            "expected exactly one packet".to_owned(),
        )),
    }
}

/// A new tag object: `tag`'s content, then one armored block with `tag`'s existing signature
/// packets (byte for byte) followed by `sig`. An unsigned tag gets its first signature.
pub fn add_signature(tag: &TagObject, sig: &Signature) -> Result<Vec<u8>, StackError> {
    if tag.blocks().len() > 1 {
        return Err(StackError::Onion(tag.blocks().len()));
    }
    if tag.packets().len() >= MAX_SIGNATURES_PER_TAG {
        return Err(StackError::TooMany(tag.packets().len()));
    }
    let ser = |e: &dyn std::fmt::Display| StackError::Serialize(format!("{e:#}"));
    let mut binary = Vec::new();
    if let Some(block) = tag.blocks().first() {
        // Re-use the existing packets' bytes exactly, by dearmoring the block again.
        let armored = tag.bytes().get(block.start..block.end).unwrap_or_default();
        let mut r = armor::Reader::from_bytes(
            armored,
            armor::ReaderMode::Tolerant(Some(armor::Kind::Signature)),
        );
        std::io::copy(&mut r, &mut binary).map_err(|e| StackError::Serialize(e.to_string()))?;
    }
    Packet::from(sig.clone())
        .serialize(&mut binary)
        .map_err(|e| ser(&e))?;
    let mut out = tag.content().to_vec();
    let mut w = armor::Writer::new(&mut out, armor::Kind::Signature).map_err(|e| ser(&e))?;
    w.write_all(&binary)
        .map_err(|e| StackError::Serialize(e.to_string()))?;
    w.finalize().map_err(|e| ser(&e))?;
    // Make sure the block ends with a newline like gpg's output, so it parses as one block.
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    TagObject::parse(&out)?;
    Ok(out)
}
