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
