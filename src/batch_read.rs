//! Many small files read whole with a few system calls: the files of a batch are opened and
//! read through one io_uring (Linux), where reading each on its own costs four system calls
//! (`openat`, `statx`, `read`, `close`). Used by `gt keynote verify` for many-file queries.
//!
//! Why: a 1,000-credential query opens 1,000 files, and on the virtual machines we measure on
//! those system calls are most of its run. Reading row (a)'s 1,001 files and nothing else
//! (scripts/bench-pair.sh, 16 interleaved rounds, 2 threads, 16 files a batch): 3.13 ms with
//! the four calls a file, 2.68 ms through a ring per thread. The kernel's own work (path walk,
//! page-cache copy) is the same; what goes is the cost of entering and leaving it 4,000 times,
//! and `statx`.
//!
//! How a file is read: three linked requests, `openat` into a slot of the ring's file table
//! (the slot is the descriptor; the next batch's `openat` into it closes the file), a first
//! `read` of up to [`CHUNK`] bytes and a second one after it, run whatever the first returned.
//! A second read that returns 0 is the end of the file, for a regular file and a pipe alike,
//! without a `statx` to tell them apart. A file that is not at its end after two reads (larger
//! than two chunks, or a pipe handing its data over in pieces) is read on from its slot.
//!
//! Where the ring does not read as `open` and `read` would, the file is read by the caller's
//! plain reader instead:
//! - A file that is empty after both reads: read again, an empty regular file is just as
//!   empty, and a named pipe the ring opened without waiting for its writer (io_uring tries
//!   each `openat` without blocking first) is opened again by `open`, which waits. On the
//!   kernel we test on the ring's own `openat` of a named pipe already waits for the writer.
//! - A name with a NUL byte (no system call can take it; the plain reader says so), an `openat`
//!   the kernel calls invalid (a kernel without slot-directed `openat`: the plain reader gives
//!   the true answer), a first read interrupted before it read anything.
//! - Every file, from the moment a ring system call fails (the reader is then left broken, and
//!   its buffers are leaked in case the kernel still writes to them).
//!
//! No ring at all ([`BatchReader::new`] gives `None`): not Linux, a kernel older than 5.19 or
//! with io_uring switched off (`kernel.io_uring_disabled`), a seccomp filter that refuses it.

/// Files one ring has in flight at most: [`BatchReader::read`] takes longer lists a batch at a
/// time. 16 is `gt keynote verify`'s piece of files per turn of its work counter; a batch of 32
/// read no faster (2.68 and 2.71 ms on row (a), same rounds as the module doc's).
pub const BATCH: usize = 16;

/// Bytes each of a file's two first reads may return. A KeyNote credential signed with a
/// 2048-bit RSA key is about 1.3 KB, so nearly every file is read whole by the first read;
/// each file's two chunks are 8 KiB of the reader's buffer, of which a small file touches one
/// page.
pub const CHUNK: usize = 4096;

/// A plain whole-file reader: what the batch reader falls back to (see the module doc).
pub type Plain<'a> = &'a dyn Fn(&str) -> std::io::Result<Vec<u8>>;

#[cfg(target_os = "linux")]
pub use ring::BatchReader;

#[cfg(not(target_os = "linux"))]
pub use none::BatchReader;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod ring {
    use super::{BATCH, CHUNK, Plain};
    use io_uring::{IoUring, opcode, squeue, types};
    use std::io;

    /// Submission-queue entries: three requests a file.
    const ENTRIES: u32 = (3 * BATCH) as u32;

    /// `offset` of a read at the file's current position (-1), which pipes need.
    const CURRENT_POSITION: u64 = u64::MAX;

    /// One thread's ring and buffers. Not `Sync`: one thread submits to it (the ring's
    /// assumption, and the buffers' safety argument, below).
    pub struct BatchReader {
        ring: IoUring,
        /// The batch's file names, each ended by a NUL, handed to the kernel by address.
        names: Vec<u8>,
        /// Two chunks a file, `BATCH` files: the first two reads land here.
        arena: Box<[u8]>,
        /// A ring system call failed: requests may still be in flight, so the buffers they
        /// point into were leaked and every file is read plainly from now on.
        broken: bool,
    }

    /// Where file `i` of a batch has its two chunks in the arena: the first read fills the
    /// first half, the second read the second.
    fn chunks(i: usize) -> std::ops::Range<usize> {
        2 * CHUNK * i..2 * CHUNK * (i + 1)
    }

    /// Whether a request's `-errno` asks for the read to be made again (a signal, or data
    /// not there yet) rather than reporting it.
    fn again(errno: i32) -> bool {
        errno == libc::EINTR || errno == libc::EAGAIN
    }

    /// What each of a file's three requests completed with (a byte count or `-errno`).
    #[derive(Clone, Copy, Default)]
    struct Results {
        open: i32,
        first: i32,
        second: i32,
    }

    impl BatchReader {
        /// A ring for this thread, or `None` where the kernel offers none that can do the
        /// work (the module doc lists when).
        pub fn new() -> Option<BatchReader> {
            let ring = IoUring::new(ENTRIES).ok()?;
            // A sparse table of BATCH slots for `openat` to fill. Registering a sparse table
            // needs Linux 5.19, later than slot-directed `openat` (5.15), so a kernel that
            // accepts this can do all three requests.
            ring.submitter().register_files_sparse(BATCH as u32).ok()?;
            Some(BatchReader {
                ring,
                names: Vec::with_capacity(BATCH * 64),
                arena: vec![0; 2 * CHUNK * BATCH].into_boxed_slice(),
                broken: false,
            })
        }

        /// Read each of `paths` whole: one result per path, in order, as `plain` would give
        /// it (the module doc says when `plain` is asked instead).
        pub fn read(&mut self, paths: &[&str], plain: Plain) -> Vec<io::Result<Vec<u8>>> {
            let mut out = Vec::with_capacity(paths.len());
            for batch in paths.chunks(BATCH) {
                if self.broken {
                    out.extend(batch.iter().map(|p| plain(p)));
                } else {
                    self.read_batch(batch, plain, &mut out);
                }
            }
            out
        }

        /// Leak the buffers requests may still write to and read plainly from now on.
        fn break_down(&mut self) {
            self.broken = true;
            std::mem::forget(std::mem::take(&mut self.names));
            std::mem::forget(std::mem::take(&mut self.arena));
        }

        /// Submit what is queued and wait until `want` completions are there to reap,
        /// waiting again when a signal interrupts; on any other failure the reader breaks
        /// down (requests may still be in flight).
        fn wait_for(&mut self, want: usize) -> io::Result<()> {
            loop {
                match self.ring.submit_and_wait(want) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.break_down();
                        return Err(e);
                    }
                }
            }
        }

        /// Read up to [`BATCH`] files, pushing one result per file onto `out`.
        fn read_batch(&mut self, batch: &[&str], plain: Plain, out: &mut Vec<io::Result<Vec<u8>>>) {
            // The names, NUL-ended, in one buffer that is not touched again until every
            // request has completed. `None`: a name no system call can take.
            self.names.clear();
            let mut starts = [None; BATCH];
            for (start, path) in starts.iter_mut().zip(batch) {
                if !path.as_bytes().contains(&0) {
                    *start = Some(self.names.len());
                    self.names.extend_from_slice(path.as_bytes());
                    self.names.push(0);
                }
            }
            let mut submitted = [false; BATCH];
            let mut pending = 0;
            {
                let mut queue = self.ring.submission();
                for (i, start) in starts.iter().enumerate().take(batch.len()) {
                    let Some(start) = *start else { continue };
                    let slot = i as u32;
                    let Ok(target) = types::DestinationSlot::try_from_slot_target(slot) else {
                        continue;
                    };
                    let tag = 3 * i as u64;
                    // The kernel reads the name and writes the two chunks until these requests
                    // complete: `names` and `arena` are neither touched, moved nor freed until
                    // every completion is reaped below, and are leaked if that cannot be
                    // waited for.
                    let Some(name) = self.names.get(start..) else {
                        continue;
                    };
                    let name = name.as_ptr().cast::<libc::c_char>();
                    let Some(chunks) = self.arena.get_mut(chunks(i)) else {
                        continue;
                    };
                    let (first, second) = chunks.split_at_mut(CHUNK);
                    let (first, second) = (first.as_mut_ptr(), second.as_mut_ptr());
                    let requests = [
                        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), name)
                            .flags(libc::O_RDONLY)
                            .file_index(Some(target))
                            .build()
                            .flags(squeue::Flags::IO_LINK)
                            .user_data(tag),
                        opcode::Read::new(types::Fixed(slot), first, CHUNK as u32)
                            .offset(CURRENT_POSITION)
                            .build()
                            .flags(squeue::Flags::IO_HARDLINK)
                            .user_data(tag + 1),
                        opcode::Read::new(types::Fixed(slot), second, CHUNK as u32)
                            .offset(CURRENT_POSITION)
                            .build()
                            .user_data(tag + 2),
                    ];
                    // SAFETY: the buffers outlive the requests (above).
                    if unsafe { queue.push_multiple(&requests) }.is_ok() {
                        submitted[i] = true;
                        pending += requests.len();
                    }
                }
            }
            let mut results = [Results::default(); BATCH];
            let mut seen = 0;
            while seen < pending {
                if self.wait_for(pending - seen).is_err() {
                    out.extend(batch.iter().map(|p| plain(p)));
                    return;
                }
                for done in self.ring.completion() {
                    seen += 1;
                    let tag = done.user_data() as usize;
                    if let Some(r) = results.get_mut(tag / 3) {
                        match tag % 3 {
                            0 => r.open = done.result(),
                            1 => r.first = done.result(),
                            _ => r.second = done.result(),
                        }
                    }
                }
            }
            for (i, path) in batch.iter().enumerate() {
                let got = if submitted[i] {
                    self.finish(i, results[i], path, plain)
                } else {
                    plain(path)
                };
                out.push(got);
            }
        }

        /// File `i`'s bytes, from what its three requests completed with.
        fn finish(
            &mut self,
            i: usize,
            r: Results,
            path: &str,
            plain: Plain,
        ) -> io::Result<Vec<u8>> {
            if r.open < 0 {
                return match -r.open {
                    libc::EINVAL => plain(path),
                    errno => Err(io::Error::from_raw_os_error(errno)),
                };
            }
            if r.first < 0 {
                return match -r.first {
                    errno if again(errno) => plain(path),
                    errno => Err(io::Error::from_raw_os_error(errno)),
                };
            }
            let (first, second) = self
                .arena
                .get(chunks(i))
                .unwrap_or(&[])
                .split_at_checked(CHUNK)
                .unwrap_or((&[], &[]));
            /// The bytes a read that returned `n` left at the start of `chunk`.
            fn filled(chunk: &[u8], n: i32) -> &[u8] {
                chunk.get(..usize::try_from(n).unwrap_or(0)).unwrap_or(&[])
            }
            let (first, second) = (filled(first, r.first), filled(second, r.second));
            if first.is_empty() && second.is_empty() && r.second >= 0 {
                return plain(path);
            }
            let mut bytes = Vec::with_capacity(first.len() + second.len());
            bytes.extend_from_slice(first);
            bytes.extend_from_slice(second);
            match r.second {
                0 => Ok(bytes),
                n if n > 0 => self.read_rest(i as u32, bytes),
                e if again(-e) => self.read_rest(i as u32, bytes),
                e => Err(io::Error::from_raw_os_error(-e)),
            }
        }

        /// Read the file in `slot` to its end after `bytes`, one request at a time.
        fn read_rest(&mut self, slot: u32, mut bytes: Vec<u8>) -> io::Result<Vec<u8>> {
            loop {
                let have = bytes.len();
                let want = have.clamp(CHUNK, 1 << 20);
                bytes.resize(have + want, 0);
                let Some(spare) = bytes.get_mut(have..) else {
                    return Err(io::ErrorKind::OutOfMemory.into());
                };
                let read = opcode::Read::new(types::Fixed(slot), spare.as_mut_ptr(), want as u32)
                    .offset(CURRENT_POSITION)
                    .build();
                // SAFETY: `bytes` is not touched, moved or freed until the request's
                // completion is reaped, and is leaked if that cannot be waited for.
                if unsafe { self.ring.submission().push(&read) }.is_err() {
                    return Err(io::ErrorKind::Other.into());
                }
                let result = loop {
                    if let Err(e) = self.wait_for(1) {
                        std::mem::forget(bytes);
                        return Err(e);
                    }
                    if let Some(done) = self.ring.completion().next() {
                        break done.result();
                    }
                };
                match result {
                    0 => {
                        bytes.truncate(have);
                        return Ok(bytes);
                    }
                    n if n > 0 => bytes.truncate(have + n as usize),
                    e if again(-e) => bytes.truncate(have),
                    e => return Err(io::Error::from_raw_os_error(-e)),
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod none {
    use super::Plain;

    /// No ring outside Linux: [`BatchReader::new`] always gives `None`.
    pub enum BatchReader {}

    impl BatchReader {
        /// Always `None`: io_uring is a Linux interface.
        pub fn new() -> Option<BatchReader> {
            None
        }

        /// Never called (there is no reader).
        pub fn read(&mut self, _: &[&str], _: Plain) -> Vec<std::io::Result<Vec<u8>>> {
            match *self {}
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
pub(crate) mod tests {
    use super::{BATCH, BatchReader, CHUNK};
    use std::cell::Cell;
    use std::io::Write;
    use std::path::Path;

    fn ring() -> BatchReader {
        BatchReader::new().expect("an io_uring on this machine (Linux 5.19 or later)")
    }

    fn name(path: &Path) -> &str {
        path.to_str().expect("a UTF-8 temporary path")
    }

    /// A new named pipe `fifo` in `dir` (made by `mkfifo`, as a user would).
    pub(crate) fn named_pipe(dir: &Path) -> std::path::PathBuf {
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo {fifo:?}");
        fifo
    }

    #[test]
    fn reads_regular_files_of_every_size_as_std_does_without_falling_back() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [
            1,
            108,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK - 1,
            2 * CHUNK,
            2 * CHUNK + 1,
            5 * CHUNK + 17,
            300_000,
        ];
        // Three batches' worth, so that slots are reused by later batches' files.
        let files: Vec<_> = (0..3 * BATCH + 5)
            .map(|i| {
                let size = sizes[i % sizes.len()];
                let path = dir.path().join(format!("f{i}"));
                let bytes: Vec<u8> = (0..size).map(|b| (b * 7 + i) as u8).collect();
                std::fs::write(&path, &bytes).unwrap();
                path
            })
            .collect();
        let names: Vec<&str> = files.iter().map(|p| name(p)).collect();
        let plain_calls = Cell::new(0);
        let plain = |p: &str| {
            plain_calls.set(plain_calls.get() + 1);
            std::fs::read(p)
        };
        let got = ring().read(&names, &plain);
        assert_eq!(got.len(), names.len());
        for (path, got) in files.iter().zip(got) {
            assert_eq!(got.unwrap(), std::fs::read(path).unwrap(), "{path:?}");
        }
        assert_eq!(plain_calls.get(), 0, "every file read through the ring");
    }

    #[test]
    fn errors_are_the_ones_open_and_read_give() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, "text").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        let missing = dir.path().join("missing");
        let names = [
            name(dir.path()),
            name(&missing),
            name(&real),
            "with\0nul",
            "",
            name(&empty),
        ];
        let plain_calls = Cell::new(0);
        let plain = |p: &str| {
            plain_calls.set(plain_calls.get() + 1);
            std::fs::read(p)
        };
        let got = ring().read(&names, &plain);
        let kind = |i: usize| got[i].as_ref().unwrap_err().kind();
        assert_eq!(kind(0), std::io::ErrorKind::IsADirectory);
        assert_eq!(kind(1), std::io::ErrorKind::NotFound);
        assert_eq!(got[2].as_ref().unwrap(), b"text");
        assert_eq!(kind(3), std::io::ErrorKind::InvalidInput);
        assert_eq!(kind(4), std::io::ErrorKind::NotFound);
        assert!(got[5].as_ref().unwrap().is_empty());
        // Only the name no system call takes and the empty file went to the plain reader.
        assert_eq!(plain_calls.get(), 2);
    }

    #[test]
    fn a_pipe_is_read_to_its_end_across_many_reads() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&reader));
        let text: Vec<u8> = (0..5 * CHUNK + 99).map(|i| (i % 251) as u8).collect();
        let sender = {
            let text = text.clone();
            std::thread::spawn(move || {
                // In pieces, with pauses: the ring's reads find the pipe empty between them.
                for piece in text.chunks(CHUNK / 2 + 3) {
                    writer.write_all(piece).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            })
        };
        let plain = |_: &str| -> std::io::Result<Vec<u8>> { panic!("read plainly") };
        let got = ring().read(&[&path], &plain);
        sender.join().unwrap();
        drop(reader);
        assert_eq!(got.into_iter().next().unwrap().unwrap(), text);
    }

    #[test]
    fn a_named_pipe_opened_before_its_writer_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = named_pipe(dir.path());
        let text = "KeyNote-Version: 2\nAuthorizer: \"POLICY\"\n".repeat(50);
        let writer = {
            let (fifo, text) = (fifo.clone(), text.clone());
            std::thread::spawn(move || {
                // Late: after the ring has started to open or read the pipe.
                std::thread::sleep(std::time::Duration::from_millis(100));
                std::fs::write(fifo, text).unwrap();
            })
        };
        let plain_calls = Cell::new(0);
        let plain = |p: &str| {
            plain_calls.set(plain_calls.get() + 1);
            std::fs::read(p)
        };
        let got = ring().read(&[name(&fifo)], &plain);
        writer.join().unwrap();
        assert_eq!(got.into_iter().next().unwrap().unwrap(), text.as_bytes());
        // Whether the ring waited for the writer itself or left the pipe to the plain reader.
        assert!(plain_calls.get() <= 1);
    }
}
