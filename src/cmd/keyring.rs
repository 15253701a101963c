//! `gt keyring to-policy`: write a KeyNote POLICY assertion requiring K of a keyring's keys.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};

use crate::exit::Code;

/// `gt keyring`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: KeyringCommand,
}

/// The `gt keyring` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyringCommand {
    /// Print a policy requiring K of the keyring's keys to sign a tag (e.g. a distro's
    /// maintainer keyring for release tags).
    ToPolicy(ToPolicyArgs),
}

/// What the generated policy grants.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Value {
    /// Take the tag into the repository.
    Accept,
    /// Take it and pass it on to peers.
    Propagate,
}

/// `gt keyring to-policy`.
#[derive(Debug, ClapArgs)]
pub struct ToPolicyArgs {
    /// The keyring: a file (armored or binary, many certificates) or a directory of them.
    #[arg(value_name = "KEYRING", required = true)]
    pub keyrings: Vec<PathBuf>,

    /// How many distinct keys must sign (K of N).
    #[arg(long, value_name = "K")]
    pub threshold: usize,

    /// A regular expression (POSIX extended, KeyNote `~=`) the full ref name must match.
    #[arg(long, value_name = "REGEX", default_value = "^refs/tags/")]
    pub ref_pattern: String,

    /// What the policy grants.
    #[arg(long, value_enum, default_value = "accept")]
    pub value: Value,

    /// Write to this file (atomically) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Run `gt keyring ...`.
pub fn run(args: Args) -> anyhow::Result<Code> {
    match args.command {
        KeyringCommand::ToPolicy(a) => to_policy(a),
    }
}

fn to_policy(args: ToPolicyArgs) -> anyhow::Result<Code> {
    let mut keyring = verifier::Keyring::new();
    for k in &args.keyrings {
        keyring
            .add_path(k)
            .with_context(|| format!("loading keyring {}", k.display()))?;
    }
    let source = args
        .keyrings
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let text = policy::to_policy::keyring_policy(
        &keyring,
        &policy::to_policy::ToPolicy {
            threshold: args.threshold,
            ref_pattern: Some(&args.ref_pattern),
            value: match args.value {
                Value::Accept => policy::Decision::Accept,
                Value::Propagate => policy::Decision::Propagate,
            },
            source: &source,
        },
    )?;
    match &args.output {
        Some(path) => crate::cmd::policy::write_atomically(path, text.as_bytes())?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(Code::Ok)
}
