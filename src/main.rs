//! `gt`: signed KeyNote trust policies for git.
//!
//! This file only wires the pieces: parse the command line (cli.rs), run the command (cmd/),
//! and turn the outcome into one of the distinct exit codes of exit.rs.

mod batch_read;
mod cli;
mod cmd;
mod exit;
mod memory;

use clap::Parser;

/// mimalloc (its v2 line) instead of glibc's malloc. `gt` runs are short and build many small
/// objects: a 10,000-clause policy's AST, 1,000 credentials, a keyring's certificates. glibc
/// faults that memory in page by page (~1.3 µs a fault on our build machines: 1,100 faults for
/// a 430 KB policy) and grows each extra thread's arena with one `mprotect` per few pages;
/// mimalloc maps it in large pieces. Whole-process `gt keynote` runs on the perf inputs take
/// 10-25% less time (keynote/README.md). Only this leaf binary picks it; libraries stay neutral.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // `gt keynote ...` takes the reference tool's arguments verbatim (clap only collects them),
    // and KeyNote scripts call it once per query: skip building clap's whole command tree and
    // the log subscriber, which cost more than a small query itself.
    let mut argv = std::env::args_os();
    if argv.nth(1).is_some_and(|a| a == "keynote") {
        let args = cmd::keynote::Args {
            args: argv.collect(),
        };
        // Huge pages stay off until the command knows it will build something large
        // (cmd/keynote, memory.rs).
        exit::now(report(cmd::keynote::run(args)));
    }
    // Before any child process inherits the flag (memory.rs).
    memory::huge_pages_on();
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    finish(cmd::run(cli.command))
}

/// The process exit status of a command's outcome; errors are printed first.
fn finish(outcome: anyhow::Result<exit::Code>) -> std::process::ExitCode {
    report(outcome).into()
}

/// The exit code of a command's outcome, after printing its error if it failed.
fn report(outcome: anyhow::Result<exit::Code>) -> exit::Code {
    outcome.unwrap_or_else(|err| {
        eprintln!("gt: error: {err:#}");
        exit::Code::Error
    })
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
