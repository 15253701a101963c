//! `gt keynote`: a drop-in for the reference KeyNote 2.3 `keynote` command-line tool.
//!
//! The arguments after `keynote` are taken verbatim (getopt style, as the reference parses
//! them), and output and exit statuses follow the reference so that existing KeyNote users and
//! the conformance corpus run unchanged.

use crate::exit::Code;
use std::ffi::OsString;

/// `gt keynote SUBCOMMAND ARGS...`, parsed by the reference's own rules, not clap's.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The reference tool's arguments: verify | sign | sigver | keygen, then its options.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// Dispatch to the reference tool's subcommands.
pub fn run(args: Args) -> anyhow::Result<Code> {
    let _ = args;
    anyhow::bail!("gt keynote: not built yet")
}
