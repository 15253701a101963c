//! build.rs links gcc's static unwinder (libgcc_eh.a) into the package's binaries so that the
//! shared libgcc_s, whose constructor costs ~0.3 ms of CPUID traps per process on virtual
//! machines, is never loaded. The package's test binaries are linked the same way, so this
//! test checks both halves of that in its own process: libgcc_s is not mapped, and panics still
//! unwind (destructors run, `catch_unwind` and thread joins see the panic), which gt relies on:
//! gt-node contains panics of pack decoding on hostile input in `spawn_blocking` tasks.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether the toolchain has the archive build.rs links (else build.rs changes nothing).
fn static_unwinder_available() -> bool {
    Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .map(|o| std::path::Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_absolute())
        .unwrap_or(false)
}

#[test]
fn libgcc_s_is_not_loaded() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || !static_unwinder_available() {
        eprintln!("skipped: no libgcc_eh.a on this toolchain");
        return;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(maps.contains("libc.so"), "{maps}");
    assert!(!maps.contains("libgcc_s"), "{maps}");
    // The installed binaries too, by their dynamic section.
    for bin in [
        env!("CARGO_BIN_EXE_gt"),
        env!("CARGO_BIN_EXE_git-remote-gittorrent"),
    ] {
        let out = Command::new("ldd").arg(bin).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("libc.so"), "{bin}: {text}");
        assert!(!text.contains("libgcc_s"), "{bin}: {text}");
    }
}

static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Counted;
impl Drop for Counted {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn panics_unwind_through_frames_and_threads() {
    let caught = std::panic::catch_unwind(|| {
        let _guard = Counted;
        let empty: Vec<u8> = Vec::new();
        empty[std::hint::black_box(3)]
    });
    assert!(caught.is_err());
    let joined = std::thread::spawn(|| {
        let _guard = Counted;
        panic!("a worker panics");
    })
    .join();
    assert!(joined.is_err());
    assert_eq!(DROPPED.load(Ordering::SeqCst), 2);
}
