//! `gt keynote verify` on a large policy asks for the heap's first region as one huge page
//! (src/memory.rs), so the tree it builds costs few page faults beyond a small query's.
//!
//! Alone in its test binary: children's page faults are read with `RUSAGE_CHILDREN`, which
//! counts every child this process has waited for, so no other test may start any.
#![cfg(target_os = "linux")]
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// Minor page faults of all waited-for children so far.
fn children_minor_faults() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    #[allow(unsafe_code)]
    // SAFETY: getrusage writes one `rusage` into the buffer it is given, which is that size.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    #[allow(unsafe_code)]
    // SAFETY: zero-initialised, and filled in by the successful call above.
    let usage = unsafe { usage.assume_init() };
    usage.ru_minflt
}

/// The minor page faults of one `gt keynote verify` of `policy` in the perf inputs' `folder`
/// with compliance values `values`, after checking its answer.
fn faults_of_query(folder: &str, values: &str, policy: &str, answer: &str) -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("keynote/benches/perf")
        .join(folder);
    let before = children_minor_faults();
    let out = Command::new(env!("CARGO_BIN_EXE_gt"))
        .args(["keynote", "verify", "-e", "env", "-r", values])
        .args(["-k", "requester.key", "-l", policy])
        .current_dir(&dir)
        .output()
        .unwrap();
    let faults = children_minor_faults() - before;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), format!("Query result = {answer}"));
    faults
}

/// Whether this kernel can give a process huge pages at all.
fn huge_pages_available() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|mode| !mode.contains("[never]"))
}

#[test]
fn a_large_policy_faults_its_tree_in_as_one_huge_page() {
    if !huge_pages_available() {
        eprintln!("skipped: transparent huge pages are off on this kernel");
        return;
    }
    // Best of three each: another process's activity can only add faults.
    let best = |query: &dyn Fn() -> i64| (0..3).map(|_| query()).min().unwrap();
    let small = best(&|| faults_of_query("chain", "false,true", "policy.kn", "false"));
    let large = best(&|| faults_of_query("clauses", "v0,v1,v2", "policy-3331.kn", "v2"));
    // Measured (release build): the 3,331-clause policy's tree took ~270 faults more than a
    // one-assertion query with its 4 KiB pages, ~20 more as one huge page.
    assert!(
        large - small < 150,
        "3,331 clauses: {large} page faults; one short assertion: {small}"
    );
}
