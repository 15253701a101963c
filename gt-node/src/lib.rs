//! gt-node: a peer that shares and follows git repositories over the BitTorrent mainline DHT.
//!
//! It pulls only refs whose policy decision is accept or propagate, and announces and serves on
//! only those whose decision is propagate, deciding with the same `policy` call as every other
//! gt command.
//!
//! Modules, bottom up:
//! - [`wire`]: the framed node-to-node protocol (messages, encoding, limits);
//! - [`announce`]: what a node puts in the DHT for a repository (ref map or manifest hash, salt,
//!   info-hash, sequence numbers);
//! - [`dht`]: a thin async wrapper over `mainline` with bounded requests and a loopback testnet;
//! - [`store`]: the node's repositories on disk: pack generation, quarantined pack reception,
//!   connectivity checks, compare-and-swap ref updates;
//! - [`gate`]: the decision interface (reject / accept / propagate) the policy crate implements;
//! - [`transfer`]: the TCP server and the staged client (tag first, pack only on accept);
//! - [`node`]: the daemon: data directory, config, key, state, share / follow / poll / run;
//! - [`remote_helper`]: `git-remote-gittorrent`, the same gated path for `git clone`/`fetch`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod announce;
pub mod dht;
pub mod gate;
pub mod node;
pub mod policy_gate;
pub mod remote_helper;
pub mod store;
pub mod transfer;
pub mod wire;
