//! `gt keynote`: a drop-in for the reference KeyNote 2.3 `keynote` command-line tool.
//!
//! The arguments after `keynote` are taken verbatim (getopt style, as the reference parses
//! them), and output and exit statuses follow the reference so that existing KeyNote users and
//! the conformance corpus run unchanged. `verify` lives in verify.rs; `sign`, `sigver` and
//! `keygen` (the RFC 2792 tools) in their own modules. Each takes the arguments after its
//! subcommand name plus stdout/stderr writers and returns the exit status.

mod keygen;
mod sign;
mod sigver;
mod verify;

use crate::exit::Code;
use std::ffi::OsString;
use std::io::Write;

/// `gt keynote SUBCOMMAND ARGS...`, parsed by the reference's own rules, not clap's.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The reference tool's arguments: verify | sign | sigver | keygen, then its options.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// The reference's top-level usage text (stderr, exit status 1).
const USAGE: &str = "Usage:\n\tkeygen ...\n\tsign ...\n\tsigver ...\n\tverify ...\nIssue one of the commands by itself to get more help, e.g., keynote sign\n";

/// Dispatch to the reference tool's subcommands.
pub fn run(args: Args) -> anyhow::Result<Code> {
    keynote::install_parser_call_limit();
    // Valid UTF-8 (the usual case) is taken over without a copy.
    let args: Vec<String> = args
        .args
        .into_iter()
        .map(|a| {
            a.into_string()
                .unwrap_or_else(|a| a.to_string_lossy().into_owned())
        })
        .collect();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = stderr.lock();
    let rest = args.get(1..).unwrap_or(&[]);
    if args.first().is_none_or(|c| c != "verify") {
        crate::memory::huge_pages_on();
    }
    let status = match args.first().map(String::as_str) {
        // verify turns huge pages on itself, once it knows whether its input is large.
        Some("verify") => verify::run(rest, &mut out, &mut err),
        Some("sign") => sign::run(rest, &mut out, &mut err),
        Some("sigver") => sigver::run(rest, &mut out, &mut err),
        Some("keygen") => keygen::run(rest, &mut out, &mut err),
        _ => {
            err.write_all(USAGE.as_bytes())?;
            1
        }
    };
    out.flush()?;
    Ok(Code::Raw(u8::try_from(status).unwrap_or(1)))
}
