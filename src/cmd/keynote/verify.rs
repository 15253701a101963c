//! `gt keynote verify`: run one KeyNote query with the reference CLI's options and output.
//!
//! Options (getopt style; option arguments attached or separate; options and file names may be
//! mixed, as with GNU getopt): `-e FILE` action environment, `-r v0,v1,...` ordered compliance
//! values, `-k FILE` a requester's principal (repeatable), `-l FILE` a trusted assertion
//! (repeatable), then untrusted assertion files. Assertion ids are assigned as the reference
//! does: `-l` files in order, then untrusted files in reverse command-line order. Messages and
//! exit statuses are the reference's, byte for byte on stdout.

use keynote::ast::StrExpr;
use keynote::{Assertion, ParseError, Session, Trust};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

const USAGE: &str = "Arguments:\n\t-h:             This message\n\t-r <valuelist>: Comma separated, ordered return-value list\n\t-e <filename>:  Environment settings\n\t-l <filename>:  Trusted (local) assertion\n\t-k <filename>:  File containing key\nFollowed by a list of:\n\t<filename>:     Non-local assertion\n";

/// One parsed command-line item, in order.
enum Item {
    Env(String),
    Values(String),
    Key(String),
    Trusted(String),
}

/// The C library's wording for common I/O errors (the reference uses `perror`).
fn strerror(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "No such file or directory".into(),
        PermissionDenied => "Permission denied".into(),
        IsADirectory => "Is a directory".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s.get(..i).unwrap_or(&s).to_owned(),
                None => s,
            }
        }
    }
}

/// File bytes as text, invalid UTF-8 replaced as the reference's byte-oriented reader would
/// see it; valid UTF-8 (the usual case) is taken as it is, without the slower lossy scan.
fn text_of(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// A file read and parsed ahead of time (or why that failed).
type Loaded = Result<Result<Arc<Assertion>, ParseError>, std::io::Error>;

/// Read and parse assertion files on all cores: parsing dominates `verify` on large inputs,
/// and files are independent. Errors are kept and reported later, in command-line order.
fn load_all(paths: &[&str], cores: usize) -> HashMap<String, Loaded> {
    let load = |path: &str| -> Loaded {
        let bytes = std::fs::read(path)?;
        Ok(Assertion::parse(&text_of(bytes)).map(Arc::new))
    };
    let workers = cores.clamp(1, 8);
    if paths.len() < 16 || workers == 1 {
        return paths.iter().map(|p| ((*p).to_owned(), load(p))).collect();
    }
    let chunk = paths.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|p| ((*p).to_owned(), load(p)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = HashMap::new();
        for h in handles {
            // A worker only panics if the parser does, which it must not; fall back to an
            // empty result so the files are read again on the main thread.
            out.extend(h.join().unwrap_or_default());
        }
        out
    })
}

/// Add one assertion file, reporting problems as the reference does.
fn add_file(
    session: &mut Session,
    loaded: &mut HashMap<String, Loaded>,
    path: &str,
    trust: Trust,
    err: &mut dyn Write,
) -> Result<(), i32> {
    let result = match loaded.remove(path) {
        Some(r) => r,
        None => std::fs::read(path).map(|b| Assertion::parse(&text_of(b)).map(Arc::new)),
    };
    match result {
        Ok(Ok(a)) => {
            session.add_parsed(a, trust);
        }
        Ok(Err(_)) => {
            let _ = writeln!(err, "Error for assertion in file <{path}>, errno -2.");
        }
        Err(e) => {
            let _ = writeln!(err, "{path}: {}", strerror(&e));
            return Err(1);
        }
    }
    Ok(())
}

fn read(path: &str, err: &mut dyn Write) -> Result<String, i32> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(text_of(bytes)),
        Err(e) => {
            let _ = writeln!(err, "{path}: {}", strerror(&e));
            Err(1)
        }
    }
}

/// Run `verify` with the arguments after the subcommand name; returns the exit status.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if args.is_empty() {
        let _ = err.write_all(USAGE.as_bytes());
        return 1;
    }
    // getopt("he:l:k:r:"), permuting like GNU getopt: options anywhere, `--` ends them.
    let mut items = Vec::new();
    let mut files = Vec::new();
    let mut i = 0;
    let mut options_done = false;
    while let Some(arg) = args.get(i) {
        i += 1;
        if options_done || !arg.starts_with('-') || arg == "-" {
            files.push(arg.clone());
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        // Every option but -h takes an argument, attached ("-lfile") or next.
        let Some(c) = arg.chars().nth(1) else {
            continue;
        };
        match c {
            'h' => {
                let _ = err.write_all(USAGE.as_bytes());
                return 0;
            }
            'e' | 'r' | 'k' | 'l' => {
                let attached = arg.get(1 + c.len_utf8()..).unwrap_or("");
                let value = if attached.is_empty() {
                    match args.get(i) {
                        Some(v) => {
                            i += 1;
                            v.clone()
                        }
                        None => {
                            let _ = writeln!(err, "keynote: option requires an argument -- '{c}'");
                            let _ = err.write_all(USAGE.as_bytes());
                            return 1;
                        }
                    }
                } else {
                    attached.to_owned()
                };
                items.push(match c {
                    'e' => Item::Env(value),
                    'r' => Item::Values(value),
                    'k' => Item::Key(value),
                    _ => Item::Trusted(value),
                });
            }
            other => {
                let _ = writeln!(err, "keynote: invalid option -- '{other}'");
                let _ = err.write_all(USAGE.as_bytes());
                return 1;
            }
        }
    }

    let assertion_paths: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            Item::Trusted(p) => Some(p.as_str()),
            _ => None,
        })
        .chain(files.iter().map(String::as_str))
        .collect();
    // Asked once: each call reads several cgroup files.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut loaded = load_all(&assertion_paths, cores);
    let mut session = Session::default();
    session.set_parallelism(cores);
    let (mut have_env, mut have_values, mut have_key, mut have_trusted) =
        (false, false, false, false);
    for item in items {
        match item {
            Item::Env(path) => {
                let text = match read(&path, err) {
                    Ok(t) => t,
                    Err(code) => return code,
                };
                match keynote::parse_action_environment(&text) {
                    Ok(list) => {
                        for (name, value) in list {
                            if session.set_attribute(&name, &value).is_err() {
                                let _ = writeln!(
                                    err,
                                    "Syntax error in environment file <{path}>, line 1"
                                );
                                return 1;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(
                            err,
                            "Syntax error in environment file <{path}>, line {}",
                            e.line()
                        );
                        return 1;
                    }
                }
                have_env = true;
            }
            Item::Values(list) => {
                if have_values {
                    let _ = writeln!(err, "Do not define two sets of return values.");
                    return 1;
                }
                session.set_values(list.split(',').filter(|v| !v.is_empty()));
                have_values = true;
            }
            Item::Key(path) => {
                let text = match read(&path, err) {
                    Ok(t) => t,
                    Err(code) => return code,
                };
                let principal = match keynote::parser::parse_str_expr(&text) {
                    Ok(StrExpr::Lit(s)) => s,
                    _ => {
                        let _ = writeln!(err, "Syntax error adding authorizer {path}");
                        return 1;
                    }
                };
                if session.add_authorizer(&principal).is_err() {
                    let _ = writeln!(err, "Syntax error adding authorizer {path}");
                    return 1;
                }
                have_key = true;
            }
            Item::Trusted(path) => {
                if let Err(code) = add_file(&mut session, &mut loaded, &path, Trust::Trusted, err) {
                    return code;
                }
                have_trusted = true;
            }
        }
    }
    if !have_values {
        let _ = writeln!(err, "Should set return values before evaluations begin.");
        return 1;
    }
    if !have_env {
        let _ = writeln!(err, "Should set environment before evaluations begin.");
        return 1;
    }
    if !have_key {
        let _ = writeln!(err, "Should specify at least one action authorizer.");
        return 1;
    }
    if !have_trusted {
        let _ = writeln!(
            err,
            "Should specify at least one trusted assertion (POLICY)."
        );
        return 1;
    }
    // The reference adds untrusted files last to first.
    for path in files.iter().rev() {
        if let Err(code) = add_file(&mut session, &mut loaded, path, Trust::Untrusted, err) {
            return code;
        }
    }
    let result = match session.query() {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "keynote: {e}");
            return 1;
        }
    };
    let _ = writeln!(out, "Query result = {}", result.value);
    for f in &result.failures {
        let why = if f.reason.is_signature() {
            "signature verification failure"
        } else {
            "syntax or semantic error"
        };
        let _ = writeln!(out, "Failed assertion {} due to {why}.", f.assertion);
    }
    // The process exits next: freeing every assertion's AST one node at a time would cost
    // about a twentieth of a 1,000-assertion run for nothing.
    std::mem::forget(session);
    std::mem::forget(loaded);
    0
}
