//! Differential conformance: every case of the reference KeyNote corpus
//! (tests/fixtures/keynote-conformance/cases) run through `gt keynote`, comparing standard
//! output and exit status with what the reference printed.
//!
//! A case may differ only if it is listed in tests/fixtures/keynote-conformance/deviations.tsv
//! with the reason (RFC section or safety); the test fails when an unlisted case differs *and*
//! when a listed case starts to match (the list must stay true).
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keynote-conformance")
}

/// Listed deviations: case name -> (what the reference does, what gt does, why).
fn deviations() -> BTreeMap<String, (String, String, String)> {
    let text = std::fs::read_to_string(fixtures().join("deviations.tsv")).unwrap();
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            cols.len(),
            4,
            "deviations.tsv line {}: want 4 tab-separated columns",
            n + 1
        );
        assert!(
            !cols[3].trim().is_empty(),
            "deviations.tsv line {}: the reason must be given",
            n + 1
        );
        let prev = out.insert(
            cols[0].to_owned(),
            (cols[1].to_owned(), cols[2].to_owned(), cols[3].to_owned()),
        );
        assert!(prev.is_none(), "deviations.tsv: {} listed twice", cols[0]);
    }
    out
}

/// Run one case; `Ok(())` when stdout and the exit status match the reference.
fn run_case(dir: &Path) -> Result<(), String> {
    let args: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("args.json")).unwrap()).unwrap();
    let want_out = std::fs::read(dir.join("expected.stdout")).unwrap();
    let want_rc: i32 = std::fs::read_to_string(dir.join("expected.rc"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_gt"))
        .arg("keynote")
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let rc = output.status.code().unwrap_or(-1);
    let mut problems = Vec::new();
    if output.stdout != want_out {
        problems.push(format!(
            "stdout:\n--- reference\n{}--- gt\n{}",
            String::from_utf8_lossy(&want_out),
            String::from_utf8_lossy(&output.stdout)
        ));
    }
    if rc != want_rc {
        problems.push(format!(
            "exit status: reference {want_rc}, gt {rc}; gt stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn reference_corpus() {
    let listed = deviations();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 266, "the corpus has 266 cases");
    for name in listed.keys() {
        assert!(
            cases
                .iter()
                .any(|c| c.file_name().unwrap().to_str() == Some(name.as_str())),
            "deviations.tsv lists {name}, which is not a case"
        );
    }
    let (mut passed, mut deviating) = (0, 0);
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        match (run_case(dir), listed.contains_key(&name)) {
            (Ok(()), false) => passed += 1,
            (Err(_), true) => deviating += 1,
            (Ok(()), true) => failures.push(format!(
                "{name}: listed as a deviation but now matches the reference; remove it from \
                 deviations.tsv"
            )),
            (Err(why), false) => failures.push(format!("{name}: {why}")),
        }
    }
    println!(
        "conformance: {passed} passed, {} failed, {deviating} listed deviations",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
