//! `gt keynote keygen`: placeholder until the RFC 2792 tools land (helper C owns this file).

use std::io::Write;

/// Run `keynote keygen` with the arguments after the subcommand name; returns the exit status.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let _ = (args, out);
    let _ = writeln!(err, "keynote keygen: not available yet");
    1
}
