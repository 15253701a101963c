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

/// How many threads a `gt keynote` command may share its work between: the CPUs its affinity
/// mask allows, 1 if that cannot be told.
///
/// Not `std::thread::available_parallelism`, which also reads the cgroup's CPU quota: on our
/// build machines (cgroup v1) that is 16 system calls before the first reading thread can
/// start, 0.06-0.09 ms, and a 1,000-file query took 5.25 ms with it against 5.15 without (20
/// rounds; 7.33 against 6.43 ms on a slower stretch of the VM, 16 rounds). What the quota
/// would change is small for these commands: it caps CPU time per 100 ms period, which a
/// query's few milliseconds do not reach, and beyond it more threads only share the same
/// time. Each use clamps the count (8 reading threads, 16 for `sigver`, 64 for signature
/// checks).
pub(super) fn cpus() -> usize {
    #[cfg(target_os = "linux")]
    if let Ok(set) = rustix::thread::sched_getaffinity(None) {
        return set.count().max(1) as usize;
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The same count as coreutils' `nproc`, which also asks the affinity mask.
    #[test]
    fn cpus_is_what_nproc_says() {
        let out = std::process::Command::new("nproc")
            .env_remove("OMP_NUM_THREADS")
            .env_remove("OMP_THREAD_LIMIT")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let nproc: usize = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(super::cpus(), nproc);
        // A thread narrowed to one CPU counts one.
        let narrowed = std::thread::spawn(|| {
            let allowed = rustix::thread::sched_getaffinity(None).unwrap();
            let first = (0..rustix::thread::CpuSet::MAX_CPU)
                .find(|c| allowed.is_set(*c))
                .unwrap();
            let mut one = rustix::thread::CpuSet::new();
            one.set(first);
            rustix::thread::sched_setaffinity(None, &one).unwrap();
            super::cpus()
        });
        assert_eq!(narrowed.join().unwrap(), 1);
    }
}
