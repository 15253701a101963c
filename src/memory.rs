//! Transparent huge pages: off for the first piece of the heap, on for the rest.
//!
//! mimalloc asks the kernel for huge pages (`MADV_HUGEPAGE`) on the memory it maps, so the
//! first allocation of a run, made by the Rust runtime before `main`, faults in and zeroes a
//! whole 2 MiB page. On our build VM that one fault costs 0.3-1 ms (keynote/README.md), a
//! quarter of a small `gt keynote verify`, which touches a few dozen 4 KiB pages in all. A
//! large run still wants huge pages: 4 KiB faults cost ~2.5 µs each there, and a 3,331-clause
//! policy takes 430 more of them without huge pages.
//!
//! So huge pages are switched off for the process before `main` (an `.init_array` entry, run
//! by the C runtime before Rust's), and back on first thing in `main`; `gt keynote verify`
//! turns them back on only when it is about to read a large file, or, for many files, when a
//! reading thread takes its first piece. Its own arguments (2,000 of them for a 1,000-file
//! query) then land in 4 KiB pages of the first region instead of reaching a fresh huge page
//! that the kernel clears before the threads can start: that query took 5.57 ms against 5.79,
//! and one that reads a single small policy 1.25 against 1.30 (interleaved rounds,
//! keynote/README.md, session 13). Switched on just before the threads started, the first
//! allocations of starting them still reached one (2 MiB cleared on the critical path in
//! place of a few 4 KiB faults): from the first piece instead, three huge-page faults a run
//! became two and the query took 4.35-4.80 ms against 4.55-5.05 (three runs of 20 interleaved
//! rounds, session 14). The first 2 MiB region
//! of the heap then already has 4 KiB pages and keeps them; every later region mimalloc
//! touches gets huge pages as before. The kernel checks the flag at each fault, so the switch
//! is per process and needs nothing from the allocator. A process that inherited the flag set
//! (it survives `execve`) keeps it: whoever started gt chose that.
//!
//! A run that is about to build a large tree asks for the first region as one huge page after
//! all ([`heap_start_to_huge_page`]), since the tree would otherwise fault it in 4 KiB at a
//! time.
//!
//! Linux only (the flag is a Linux `prctl`); elsewhere both calls do nothing.

#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `huge_pages_off` set the flag (rather than finding it set already).
#[cfg(target_os = "linux")]
static SET_BEFORE_MAIN: AtomicBool = AtomicBool::new(false);

/// Runs before `main` (and before the Rust runtime's first allocation).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // `link_section`: the one way to run before the runtime's first malloc.
#[unsafe(link_section = ".init_array")]
#[used]
static HUGE_PAGES_OFF_BEFORE_MAIN: extern "C" fn() = huge_pages_off;

/// Turn huge pages off for this process. Errors (a kernel without THP, a seccomp filter) only
/// mean the run keeps the default, so they are ignored.
#[cfg(target_os = "linux")]
extern "C" fn huge_pages_off() {
    if rustix::thread::transparent_huge_pages_are_disabled() == Ok(false)
        && rustix::thread::disable_transparent_huge_pages(true).is_ok()
    {
        SET_BEFORE_MAIN.store(true, Ordering::Relaxed);
    }
}

/// Turn huge pages back on for all later faults, unless they were off when gt started; called
/// first thing in `main` (later in `gt keynote verify`). Calling it again does nothing.
pub fn huge_pages_on() {
    #[cfg(target_os = "linux")]
    if SET_BEFORE_MAIN.swap(false, Ordering::Relaxed) {
        let _ = rustix::thread::disable_transparent_huge_pages(false);
    }
}

/// Make the heap's first 2 MiB region one huge page, for a run about to build a large tree.
///
/// That region keeps 4 KiB pages (huge pages were off when the runtime first touched it), and
/// a large tree lands in it: a 3,331-clause policy took ~250 separate faults there, more than
/// the whole rest of the run. `MADV_COLLAPSE` (Linux 6.1) makes the region one huge page in a
/// single call: the pages touched so far are copied, the rest come zeroed. Measured on that
/// policy: 577 -> 329 page faults, task clock 4.3 -> 2.6 ms (`perf stat -r 30`), wall time
/// -6% against the run without it (interleaved rounds, keynote/README.md, session 10). Like
/// any huge-page fault in mimalloc's heap (which is `MADV_HUGEPAGE`), it may have the kernel
/// compact memory to find a free 2 MiB page. Where the kernel cannot (older kernels, huge pages
/// off for the system or, by the inherited flag, for this process, a huge-page size other
/// than 2 MiB) the call fails and nothing changes.
pub fn heap_start_to_huge_page() {
    #[cfg(target_os = "linux")]
    {
        /// The huge-page size of x86_64 and of 4 KiB-page aarch64.
        const REGION: usize = 2 << 20;
        // A fresh small allocation sits where the heap is filling now: the first region
        // while the run is young.
        let probe = std::hint::black_box(Box::new(0u64));
        let start = (std::ptr::from_ref::<u64>(&probe) as usize) & !(REGION - 1);
        #[allow(unsafe_code)]
        // SAFETY: MADV_COLLAPSE only moves the range's pages into a huge page; no memory's
        // contents change, whoever owns it. The range is the heap's own mapping; if any of
        // it is not mapped the call fails with ENOMEM and changes nothing.
        let _ = unsafe { libc::madvise(start as *mut libc::c_void, REGION, libc::MADV_COLLAPSE) };
        drop(probe);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::thread::transparent_huge_pages_are_disabled;

    /// The test binary links this module too, so its `.init_array` entry ran before the test
    /// harness started; `main` is not run here, so the flag is still set until turned back on.
    /// The only test that touches the (process-wide) flag.
    #[test]
    fn huge_pages_are_off_before_main_and_on_after() {
        assert!(transparent_huge_pages_are_disabled().unwrap());
        let inherited = !super::SET_BEFORE_MAIN.load(super::Ordering::Relaxed);
        super::huge_pages_on();
        // Back on, unless the test process was started with the flag set.
        assert_eq!(transparent_huge_pages_are_disabled().unwrap(), inherited);
        // A child started now (git, gpg) gets the same setting.
        let child = std::process::Command::new("sh")
            .args(["-c", "grep '^THP_enabled:' /proc/self/status"])
            .output()
            .unwrap();
        assert!(child.status.success());
        let line = String::from_utf8(child.stdout).unwrap();
        assert_eq!(line.trim().ends_with('1'), !inherited, "{line}");
    }
}
