//! The command-line surface of `gt`: clap definitions only, no I/O and no logic.
//!
//! Each subcommand's arguments live next to its implementation in cmd/; this file only lists
//! the subcommands.

use clap::{Parser, Subcommand};

/// Signed KeyNote trust policies for git: which OpenPGP signatures on a tag let a ref update be
/// accepted into a repository or propagated to other peers.
#[derive(Debug, Parser)]
#[command(name = "gt", version, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run KeyNote queries and tools with the reference `keynote` program's arguments and output
    /// (verify, sign, sigver, keygen).
    #[command(disable_help_flag = true)]
    Keynote(crate::cmd::keynote::Args),
    /// Verify the OpenPGP signatures on tags: who signed, and whether each tag passes.
    VerifyTag(crate::cmd::verify_tag::Args),
    /// Tag operations (`gt tag sign`: add a co-signature to a signed tag).
    Tag(crate::cmd::tag::Args),
    /// Decide ref updates with a signed KeyNote policy; lint and sign policy files.
    Policy(crate::cmd::policy::Args),
    /// Keyring helpers (`gt keyring to-policy`: K of a keyring's keys as a policy).
    Keyring(crate::cmd::keyring::Args),
    /// Git hooks enforcing the policy (`gt hook pre-receive`, `gt hook install`).
    Hook(crate::cmd::hook::Args),
    /// Take one ref from a remote only if the policy accepts it: tag object first, then the rest.
    Pull(crate::cmd::pull::Args),
    /// Share and follow repositories over the mainline DHT, gated by the policy (gt-node).
    Node(crate::cmd::node::Args),
    /// Print a shell completion script generated from gt's command line.
    Completions(crate::cmd::generate::CompletionsArgs),
    /// Print gt's man page (or write every page into a directory).
    Man(crate::cmd::generate::ManArgs),
}
