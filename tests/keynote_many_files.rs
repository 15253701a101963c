//! `gt keynote verify` on many assertion files (row (a)'s 1,001-file delegation chain), the
//! path where the files are read a batch at a time through an io_uring per thread
//! (src/batch_read.rs): its answers and messages are those of the one-file-at-a-time reads,
//! whatever the files are (missing, a directory, unparsable, larger than the ring's two
//! first reads, a named pipe whose writer comes late). The expected stdout and status are the
//! reference `keynote` tool's on the same variants; its stderr differs only for the directory
//! (`read(): Is a directory`: it names the call, we name the file).
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A copy of the 1,001-file chain in a temporary folder, to change one link of.
fn chain_copy() -> (tempfile::TempDir, PathBuf) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("keynote/benches/perf/chain");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// Row (a)'s query (the arguments in args.txt), run in `dir`.
fn query(dir: &Path) -> Output {
    let args = std::fs::read_to_string(dir.join("args.txt")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_gt"))
        .args(["keynote", "verify", "-e", "env", "-r", "false,true"])
        .args(["-k", "requester.key"])
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn the_whole_chain_grants_and_a_missing_or_broken_link_does_not() {
    let (_keep, dir) = chain_copy();
    let out = query(&dir);
    assert_eq!(text(&out.stdout), "Query result = true\n", "{out:?}");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "");

    // One link whose Conditions do not parse: the chain is cut there.
    let link = dir.join("a0500.kn");
    std::fs::write(
        &link,
        "KeyNote-Version: 2\nAuthorizer: \"P0500\"\nLicensees: \"P0501\"\nConditions: app_domain == ;\n",
    )
    .unwrap();
    let out = query(&dir);
    assert_eq!(
        text(&out.stdout),
        "Query result = false\nFailed assertion 500 due to syntax or semantic error.\n",
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(0));

    // A link larger than the ring's first two reads (8 KiB) is read whole.
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("keynote/benches/perf/chain/a0500.kn"),
    )
    .unwrap();
    let words: Vec<String> = (0..3000).map(|i| format!("word{i}")).collect();
    std::fs::write(&link, format!("{original}Comment: {}\n", words.join(" "))).unwrap();
    assert!(std::fs::metadata(&link).unwrap().len() > 20_000);
    let out = query(&dir);
    assert_eq!(text(&out.stdout), "Query result = true\n", "{out:?}");

    // A missing file, then a directory: no answer, the file named, status 1.
    std::fs::remove_file(&link).unwrap();
    let out = query(&dir);
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "a0500.kn: No such file or directory\n");
    assert_eq!(out.status.code(), Some(1));
    std::fs::create_dir(&link).unwrap();
    let out = query(&dir);
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "a0500.kn: Is a directory\n");
    assert_eq!(out.status.code(), Some(1));
}

#[cfg(unix)]
#[test]
fn a_link_that_is_a_named_pipe_is_read_once_its_writer_comes() {
    let (_keep, dir) = chain_copy();
    let link = dir.join("a0500.kn");
    let original = std::fs::read(&link).unwrap();
    std::fs::remove_file(&link).unwrap();
    let made = Command::new("mkfifo").arg(&link).status().unwrap();
    assert!(made.success());
    let writer = std::thread::spawn(move || {
        // Late: gt has opened (or is opening) the pipe by now.
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(link, original).unwrap();
    });
    let out = query(&dir);
    writer.join().unwrap();
    assert_eq!(text(&out.stdout), "Query result = true\n", "{out:?}");
    assert_eq!(out.status.code(), Some(0));
}
