//! The exit codes of `gt`, one per class of outcome, so scripts and hooks can tell a policy
//! denial from a broken invocation.
//!
//! `gt keynote` is the exception: it mimics the reference `keynote` tool's exit statuses so that
//! existing KeyNote scripts keep working (see cmd/keynote).

/// What a `gt` command ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Everything asked for was granted or verified.
    Ok,
    /// The command ran, and the answer is "no": a signature did not verify, a ref update was
    /// rejected by policy, a tag is malformed.
    Denied,
    /// The command could not run: bad usage, unreadable input, I/O failure. Nothing was changed.
    Error,
    /// A concurrent update won: the ref was moved or locked by someone else between reading it
    /// and moving it (compare-and-swap lost), so this command's ref update was not made. Running
    /// it again acts on the new state.
    Conflict,
    /// A raw status, for `gt keynote`'s reference-compatible exit statuses.
    Raw(u8),
}

impl Code {
    /// The numeric status.
    pub fn value(self) -> u8 {
        match self {
            Code::Ok => 0,
            Code::Denied => 1,
            Code::Error => 2,
            Code::Conflict => 3,
            Code::Raw(n) => n,
        }
    }
}

impl From<Code> for std::process::ExitCode {
    fn from(code: Code) -> Self {
        std::process::ExitCode::from(code.value())
    }
}

/// End the process with `code` at once, once stdout and stderr are flushed, for `gt keynote`,
/// which KeyNote scripts run once per query.
///
/// Returning from `main` runs the C library's exit handlers, and mimalloc's gives every free
/// page of the heap back to the kernel, one `madvise` at a time: 15 calls after a 1,000-file
/// query, each that cuts into a huge page splitting it, only for the kernel to drop the whole
/// address space a moment later. Ending here took 0.31 ms (4%) off that query (6.91 against
/// 7.21 ms, 60 runs each, interleaved; keynote/README.md, session 13).
pub fn now(code: Code) -> ! {
    use std::io::Write;
    // A failed flush has nowhere left to be reported; the status stands.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: `_exit` only ends the process. Nothing left in it matters to the outcome: the
    // command has returned (its files are closed; what it did not free, such as a query's
    // session, it left to the exit on purpose), output is flushed above, and `gt keynote`
    // starts no thread that outlives the command (keynote::par joins its helpers) and leaves
    // no temporary file.
    unsafe {
        libc::_exit(i32::from(code.value()))
    }
    #[cfg(not(target_os = "linux"))]
    std::process::exit(i32::from(code.value()))
}
