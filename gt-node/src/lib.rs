//! gt-node: a peer that shares and follows git repositories over the BitTorrent mainline DHT.
//!
//! It pulls only refs whose policy decision is accept or propagate, and announces and serves on
//! only those whose decision is propagate, deciding with the same `policy` call as every other
//! gt command.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
