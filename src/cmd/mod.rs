//! Command implementations: each module turns parsed arguments into library calls and output.

pub mod generate;
pub mod hook;
pub mod keynote;
pub mod keyring;
pub mod node;
pub mod policy;
pub mod progress;
pub mod pull;
pub mod tag;
pub mod verify_tag;

use crate::cli::Command;
use crate::exit::Code;

/// Run one command to completion.
pub fn run(command: Command) -> anyhow::Result<Code> {
    match command {
        Command::Keynote(args) => keynote::run(args),
        Command::VerifyTag(args) => verify_tag::run(args),
        Command::Tag(args) => tag::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Keyring(args) => keyring::run(args),
        Command::Hook(args) => hook::run(args),
        Command::Pull(args) => pull::run(args),
        Command::Node(args) => node::run(args),
        Command::Completions(args) => generate::completions(args),
        Command::Man(args) => generate::man(args),
    }
}
