//! `gt keynote verify`: run one KeyNote query with the reference CLI's options and output.
//!
//! Options (getopt style; option arguments attached or separate; options and file names may be
//! mixed, as with GNU getopt): `-e FILE` action environment, `-r v0,v1,...` ordered compliance
//! values, `-k FILE` a requester's principal (repeatable), `-l FILE` a trusted assertion
//! (repeatable), then untrusted assertion files. Assertion ids are assigned as the reference
//! does: `-l` files in order, then untrusted files in reverse command-line order. Messages and
//! exit statuses are the reference's, byte for byte on stdout.

use crate::batch_read::BatchReader;
use keynote::ast::StrExpr;
use keynote::{Assertion, Session, Trust};
use std::io::Write;
use std::sync::{Arc, Mutex};

const USAGE: &str = "Arguments:\n\t-h:             This message\n\t-r <valuelist>: Comma separated, ordered return-value list\n\t-e <filename>:  Environment settings\n\t-l <filename>:  Trusted (local) assertion\n\t-k <filename>:  File containing key\nFollowed by a list of:\n\t<filename>:     Non-local assertion\n";

/// One parsed command-line item, in order (borrowed from the arguments).
enum Item<'a> {
    Env(&'a str),
    Values(&'a str),
    Key(&'a str),
    Trusted(&'a str),
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

/// Parse a file's bytes as one assertion (its Conditions on up to `threads` threads), keeping
/// the text without a copy; `None` if it does not parse. Why is not kept: the reference's
/// message names only the file, and a `ParseError` would make each of a 1,000-file query's
/// results 56 bytes instead of 16, all copied into fresh memory on the way back from the
/// reading threads.
fn parse_file(bytes: Vec<u8>, threads: usize) -> Option<Arc<Assertion>> {
    Assertion::parse_owned(text_of(bytes), threads)
        .ok()
        .map(Arc::new)
}

/// A file read and parsed ahead of time (`None`: it did not parse), or why reading failed.
type Loaded = Result<Option<Arc<Assertion>>, std::io::Error>;

/// A whole file in four system calls (open, statx, read, close) where `std::fs::read` makes
/// five (a last read to see end-of-file): how fewer than [`PARALLEL_READ_MIN_FILES`] files are
/// read, and what the ring of src/batch_read.rs falls back to. A regular file is read up to the
/// size it had when opened; anything else (a pipe, `<(...)`) to its end.
fn read_file(path: &str) -> std::io::Result<Vec<u8>> {
    open_file(path).and_then(read_opened)
}

/// A file opened for [`read_opened`], with its size if it is a regular file.
type Opened = (std::fs::File, Option<usize>);

/// Open `path` and look up its size: the first half of [`read_file`].
fn open_file(path: &str) -> std::io::Result<Opened> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let size = meta
        .is_file()
        .then(|| usize::try_from(meta.len()).unwrap_or(0));
    Ok((file, size))
}

/// Read an opened file whole: the second half of [`read_file`].
fn read_opened((mut file, size): Opened) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    if let Some(size) = size {
        // One read of the whole size (`read_to_end` would start small and grow).
        bytes.resize(size, 0);
        let mut filled = 0;
        while let Some(rest) = bytes.get_mut(filled..).filter(|r| !r.is_empty()) {
            match file.read(rest) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        bytes.truncate(filled);
    } else {
        file.read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

thread_local! {
    /// This thread's ring for reading many files (src/batch_read.rs), made on first use;
    /// `Some(None)`: none could be made here, read plainly.
    static READER: std::cell::RefCell<Option<Option<BatchReader>>> =
        const { std::cell::RefCell::new(None) };
}

/// Read a piece of files whole, one result per path: through this thread's ring where there
/// is one, else one [`read_file`] each.
fn read_piece(paths: &[&str]) -> Vec<std::io::Result<Vec<u8>>> {
    READER.with_borrow_mut(|reader| match reader.get_or_insert_with(BatchReader::new) {
        Some(ring) => ring.read(paths, &read_file),
        None => paths.iter().map(|p| read_file(p)).collect(),
    })
}

/// Below this many bytes in all, a handful of files is parsed on the calling thread. Measured
/// on this project's 2-core build machine (keynote/README.md, session 5): on a busy day the
/// second thread made a 467 KB, 10,000-clause policy slower (median 22.1 ms against 17.7 ms
/// on one core) and a 154 KB one too (11.7 against 9.0 ms); on a quiet day it gained ~14% on
/// a 428 KB one. Losing up to a quarter to win a seventh is a bad trade, so only text of a
/// size whose parse takes tens of milliseconds is shared.
const PARALLEL_PARSE_MIN_BYTES: usize = 1024 * 1024;

/// From this many bytes of assertions read on the calling thread, the heap's first region is
/// made one huge page before parsing (src/memory.rs). Its cost, one 2 MiB page cleared and the
/// pages touched so far copied, is that of ~100 separate page faults. Measured on the first
/// N clauses of the 3,331-clause policy (interleaved rounds, with against without): 9 KB
/// +0.3 ms, 31 KB even, 64 KB -0.16 ms, 154 KB -0.3 ms. Measured again once files were opened
/// and sized before the collapse (session 12, 16-20 rounds, always against never): 8-16 KB
/// +0.22-0.24 ms, 31 KB +0.04, 47 KB -0.01 to -0.03, 64 KB -0.15 to +0.06, 80 KB -0.15 to
/// -0.22, 97 KB -0.24 to -0.29: the break-even is still around 50-64 KB.
const HUGE_HEAP_MIN_BYTES: usize = 64 * 1024;

/// From this many files on, reading is spread over the workers too, each reading its pieces
/// through an io_uring of its own (src/batch_read.rs).
const PARALLEL_READ_MIN_FILES: usize = 16;

/// Files per piece of reading and parsing handed to a thread, when there are many: one batch
/// of the thread's ring.
const READ_PIECE: usize = crate::batch_read::BATCH;

/// Read and parse assertion files on all cores: parsing dominates `verify` on large inputs,
/// and files are independent. Work is handed out a piece at a time (keynote::par), so a
/// thread that starts late takes less instead of holding the others up. Results come back in
/// the order of `paths` (one per path, errors kept to be reported later, in command-line
/// order). `cores` is asked only when there is something to share.
fn load_all(paths: &[&str], cores: &dyn Fn() -> usize) -> Vec<Loaded> {
    let parse = |bytes: Vec<u8>| parse_file(bytes, 1);
    if paths.len() >= PARALLEL_READ_MIN_FILES {
        let workers = cores().clamp(1, 8);
        return keynote::par::share_pieces(paths, READ_PIECE, workers, |piece| {
            // The reading threads' heaps in huge pages, from the first piece a thread takes:
            // the arguments read so far and what starting the threads allocates stay in 4 KiB
            // pages (src/memory.rs). Later calls do nothing.
            crate::memory::huge_pages_on();
            read_piece(piece)
                .into_iter()
                .map(|read| read.map(parse))
                .collect()
        });
    }
    // A few files, perhaps large ones (10,000 clauses in one file or over four): read them
    // here, then share the parsing out when there is enough text. They are opened and sized
    // first, so that a large input's heap region becomes one huge page before the file
    // bytes land in it (a 154 KB policy read first took 38 page faults of its own there).
    let opened: Vec<_> = paths.iter().map(|p| open_file(p)).collect();
    let sized: usize = opened
        .iter()
        .filter_map(|o| o.as_ref().ok().and_then(|(_, size)| *size))
        .sum();
    if sized >= HUGE_HEAP_MIN_BYTES {
        crate::memory::huge_pages_on();
        crate::memory::heap_start_to_huge_page();
    }
    let read: Vec<std::io::Result<Vec<u8>>> = opened
        .into_iter()
        .map(|o| o.and_then(read_opened))
        .collect();
    let total: usize = read.iter().map(|r| r.as_ref().map_or(0, Vec::len)).sum();
    let workers = if total < PARALLEL_PARSE_MIN_BYTES {
        1
    } else {
        cores().clamp(1, 8)
    };
    if read.len() < workers {
        // Fewer files than cores: each file's Conditions is split between the cores.
        let parse_split = |bytes: Vec<u8>| parse_file(bytes, workers);
        return read.into_iter().map(|r| r.map(parse_split)).collect();
    }
    // Files between the cores, one at a time; each is taken out of its cell by the one thread
    // that claims it. A file whose cell was emptied by a thread that then panicked (which
    // parsing must not do) is read again here.
    let cells: Vec<Mutex<Option<std::io::Result<Vec<u8>>>>> =
        read.into_iter().map(|r| Mutex::new(Some(r))).collect();
    keynote::par::share(&cells, workers, |cell| {
        let r = cell.lock().ok()?.take()?;
        Some(r.map(parse))
    })
    .into_iter()
    .zip(paths)
    .map(|(loaded, p)| loaded.unwrap_or_else(|| read_file(p).map(parse)))
    .collect()
}

/// Add one assertion file, read and parsed by [`load_all`] (read here if it was not),
/// reporting problems as the reference does.
fn add_file(
    session: &mut Session,
    loaded: Option<Loaded>,
    path: &str,
    trust: Trust,
    err: &mut dyn Write,
) -> Result<(), i32> {
    let result = loaded.unwrap_or_else(|| read_file(path).map(|b| parse_file(b, 1)));
    match result {
        Ok(Some(a)) => {
            session.add_parsed(a, trust);
        }
        Ok(None) => {
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
    match read_file(path) {
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
    // Sized once for the most the arguments can hold: grown by doubling instead, the lists of
    // a 1,000-file query were copied ten times, each time into memory not touched before.
    let mut items = Vec::with_capacity(args.len());
    let mut files = Vec::with_capacity(args.len());
    let mut i = 0;
    let mut options_done = false;
    while let Some(arg) = args.get(i) {
        i += 1;
        if options_done || !arg.starts_with('-') || arg == "-" {
            files.push(arg.as_str());
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
                            v.as_str()
                        }
                        None => {
                            let _ = writeln!(err, "keynote: option requires an argument -- '{c}'");
                            let _ = err.write_all(USAGE.as_bytes());
                            return 1;
                        }
                    }
                } else {
                    attached
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

    let mut assertion_paths: Vec<&str> = Vec::with_capacity(items.len() + files.len());
    assertion_paths.extend(items.iter().filter_map(|i| match i {
        Item::Trusted(p) => Some(*p),
        _ => None,
    }));
    assertion_paths.extend(files.iter().copied());
    // Asked at most once, and only when there is something to share between cores.
    let cores_cell = std::cell::OnceCell::new();
    let cores = || *cores_cell.get_or_init(super::cpus);
    // Made before the files are loaded (while huge pages are still off, src/memory.rs) rather
    // than after: measured, not explained. Row b1 (one 3,331-clause policy), three runs of 20
    // interleaved rounds: 2.40 -> 2.23, 2.34 -> 2.16, 2.50 -> 2.26 ms, with the same number of
    // page and huge-page faults; other rows even or a little faster (keynote/README.md,
    // session 14).
    let mut session = Session::default();
    session.reserve(assertion_paths.len());
    // One result per path: the trusted files' in order, then the untrusted files'.
    let mut loaded = load_all(&assertion_paths, &cores).into_iter();
    // Signatures (several files) or a long Conditions program (load_all asked for the cores
    // because the text is large) may use every core.
    if assertion_paths.len() > 1 || cores_cell.get().is_some() {
        session.set_parallelism(cores());
    }
    let (mut have_env, mut have_values, mut have_key, mut have_trusted) =
        (false, false, false, false);
    for item in items {
        match item {
            Item::Env(path) => {
                let text = match read(path, err) {
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
                let text = match read(path, err) {
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
                if let Err(code) = add_file(&mut session, loaded.next(), path, Trust::Trusted, err)
                {
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
    let mut untrusted: Vec<Loaded> = loaded.collect();
    for path in files.iter().rev() {
        if let Err(code) = add_file(&mut session, untrusted.pop(), path, Trust::Untrusted, err) {
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
    0
}

#[cfg(test)]
mod tests {
    use super::read_file;

    #[test]
    fn read_file_reads_regular_files_and_pipes_whole() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, &text).unwrap();
        assert_eq!(read_file(plain.to_str().unwrap()).unwrap(), text.as_bytes());
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        assert!(read_file(empty.to_str().unwrap()).unwrap().is_empty());
        // A named pipe (what `-l <(cmd)` passes): no size to trust, read to the end.
        let fifo = crate::batch_read::tests::named_pipe(dir.path());
        let writer = {
            let (fifo, text) = (fifo.clone(), text.clone());
            std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
        };
        assert_eq!(read_file(fifo.to_str().unwrap()).unwrap(), text.as_bytes());
        writer.join().unwrap();
        assert_eq!(
            read_file(dir.path().join("missing").to_str().unwrap())
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
