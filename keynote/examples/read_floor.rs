//! The floor of a many-file query read file by file: read files and nothing else, the way the
//! reference reads assertion files (open, size, read, close; no parsing, no query), and
//! `gt keynote verify` reads fewer than 16. scripts/bench-keynote.sh times it on the 1,000
//! files of row (a), next to gt and the reference, to show how much of a run reading alone
//! takes on the machine at hand. gt reads many files through io_uring instead (src/batch_read.rs
//! in the gt package), with fewer system calls than this floor makes.
//!
//!   read_floor [-j THREADS] FILE...
//!
//! With `-j 2` or more the files are shared between threads as `gt keynote verify` shares
//! them (keynote::par, 16 files a piece). Prints the number of bytes read; a file that cannot
//! be read is an error (exit status 1).

use std::io::Read;

/// Files per piece handed to a thread: the same as `gt keynote verify`'s `READ_PIECE`.
const PIECE: usize = 16;

fn read(path: &String) -> std::io::Result<usize> {
    let mut file = std::fs::File::open(path)?;
    let size = usize::try_from(file.metadata()?.len()).unwrap_or(0);
    let mut bytes = vec![0; size];
    file.read_exact(&mut bytes)?;
    Ok(bytes.len())
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut threads = 1;
    if args.first().map(String::as_str) == Some("-j") {
        threads = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1);
        args.drain(..2.min(args.len()));
    }
    let sizes = keynote::par::share_in_pieces(&args, PIECE, threads, read);
    let mut total = 0;
    for (path, size) in args.iter().zip(sizes) {
        match size {
            Ok(n) => total += n,
            Err(e) => {
                eprintln!("read_floor: {path}: {e}");
                std::process::exit(1);
            }
        }
    }
    println!("{total}");
}
