//! `gt`: signed KeyNote trust policies for git.
//!
//! This file only wires the pieces: parse the command line (cli.rs), run the command (cmd/),
//! and turn the outcome into one of the distinct exit codes of exit.rs.

mod cli;
mod cmd;
mod exit;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    match cmd::run(cli.command) {
        Ok(code) => code.into(),
        Err(err) => {
            eprintln!("gt: error: {err:#}");
            exit::Code::Error.into()
        }
    }
}

/// Log to stderr; `-v` raises the level, `RUST_LOG` overrides it.
fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
