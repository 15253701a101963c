//! Every example policy in policies/ decides a fixed set of real, gpg-signed ref updates the way
//! its comments say. The examples are documentation; this test keeps them true.
//!
//! One repository holds tags signed by the test keys in every interesting combination; each
//! policy set is run through `gt policy check --json` and its decision for every ref compared
//! with the table below. The test fails if a file in policies/ is not part of some set.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Layout, World, pubkey, stderr};

const KEYS: [&str; 4] = ["ed25519", "rsa2048", "rsa4096", "subkey"];

fn policies_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
}

/// The policy sets: name, files.
const SETS: [(&str, &[&str]); 5] = [
    ("distro", &["distro.kn"]),
    ("single", &["single-maintainer.kn"]),
    ("mirror", &["mirror.kn"]),
    ("kernel", &["kernel.kn", "kernel-delegations.kn"]),
    ("gt", &["gt.kn"]),
];

/// Ref spec, then the expected decision per set, in the order of [`SETS`]:
/// R reject, A accept, P propagate.
const TABLE: [(&str, &str); 16] = [
    // A = ed25519, B = rsa2048, C = rsa4096, D = subkey     distro single mirror kernel gt
    ("refs/tags/v1.0", "RPARR"),              // A
    ("refs/tags/v2.0", "PPPRP"),              // A + B, one block
    ("refs/tags/v2.1", "RRPPP"),              // B + C, onion
    ("refs/tags/v3.0", "RRAPR"),              // C
    ("refs/tags/v4.0", "RRRRR"),              // unsigned
    ("refs/tags/security/2025-001", "PRAPR"), // C
    ("refs/tags/security/2025-002", "RPARR"), // A
    ("refs/tags/net-6.1", "RPAPR"),           // A, delegated net-* by the lead
    ("refs/tags/net-6.2", "RRARR"),           // B, not delegated net-*
    ("refs/tags/usb-6.1", "RRAAR"),           // B, delegated usb-* (accept only)
    ("refs/tags/usb-gadget-6.1", "RRAAR"),    // D, sub-delegated by B
    ("refs/tags/usb-6.2", "RRARR"),           // D, outside the sub-delegation
    ("refs/tags/nightly", "RRARA"),           // B
    ("NIGHTLY_MOVE", "RRRRA"),                // nightly moved to another B-signed object
    ("MAIN_FF", "RRARA"),                     // main fast-forwarded
    ("MAIN_NON_FF", "RRRRR"),                 // main rewritten
];

struct Repo {
    w: World,
    dir: PathBuf,
    specs: BTreeMap<&'static str, String>,
}

fn tag(w: &World, dir: &Path, name: &str, target: &str, keys: &[&str], layout: Layout) -> String {
    w.tag_ref(dir, name, name, target, keys, layout)
}

fn build() -> Repo {
    let w = World::new(&KEYS);
    let dir = w.repo("example");
    let c1 = w.git(&dir, &["rev-parse", "HEAD"]);
    let one = Layout::OneBlock;
    tag(&w, &dir, "v1.0", &c1, &["ed25519"], one);
    tag(&w, &dir, "v2.0", &c1, &["ed25519", "rsa2048"], one);
    tag(
        &w,
        &dir,
        "v2.1",
        &c1,
        &["rsa2048", "rsa4096"],
        Layout::Onion,
    );
    tag(&w, &dir, "v3.0", &c1, &["rsa4096"], one);
    tag(&w, &dir, "v4.0", &c1, &[], one);
    tag(&w, &dir, "security/2025-001", &c1, &["rsa4096"], one);
    tag(&w, &dir, "security/2025-002", &c1, &["ed25519"], one);
    tag(&w, &dir, "net-6.1", &c1, &["ed25519"], one);
    tag(&w, &dir, "net-6.2", &c1, &["rsa2048"], one);
    tag(&w, &dir, "usb-6.1", &c1, &["rsa2048"], one);
    tag(&w, &dir, "usb-gadget-6.1", &c1, &["subkey"], one);
    tag(&w, &dir, "usb-6.2", &c1, &["subkey"], one);
    tag(&w, &dir, "nightly", &c1, &["rsa2048"], one);
    // Tomorrow's nightly: same name, new target, not yet under the ref.
    let c2 = w.commit(&dir, "second");
    let nightly2 = w.make_tag(&dir, "nightly", &c2, &["rsa2048"], one);
    // main back at c1: c2 is a fast-forward; a parentless commit is not.
    w.git(&dir, &["update-ref", "refs/heads/main", &c1]);
    let tree = w.git(&dir, &["rev-parse", &format!("{c1}^{{tree}}")]);
    let orphan = w.git(&dir, &["commit-tree", &tree, "-m", "rewritten history"]);
    let mut specs = BTreeMap::new();
    specs.insert("NIGHTLY_MOVE", format!("refs/tags/nightly:{nightly2}"));
    specs.insert("MAIN_FF", format!("refs/heads/main:{c2}"));
    specs.insert("MAIN_NON_FF", format!("refs/heads/main:{orphan}"));
    Repo { w, dir, specs }
}

/// Run `gt policy check --json` on every ref of the table with `files`; ref spec -> (decision,
/// reasons, warnings).
fn check(r: &Repo, files: &[PathBuf]) -> BTreeMap<String, serde_json::Value> {
    let mut args: Vec<String> = vec![
        "policy".into(),
        "check".into(),
        "--json".into(),
        "--repo".into(),
        r.dir.display().to_string(),
    ];
    for f in files {
        args.push("--policy".into());
        args.push(f.display().to_string());
    }
    for k in KEYS {
        args.push("--keyring".into());
        args.push(pubkey(k).display().to_string());
    }
    let mut order = Vec::new();
    for (spec, _) in TABLE {
        let s = r
            .specs
            .get(spec)
            .cloned()
            .unwrap_or_else(|| spec.to_owned());
        order.push(spec.to_owned());
        args.push(s);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = r.w.gt(&r.dir, &args);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "gt policy check failed: {}",
        stderr(&out)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), order.len(), "one JSON line per ref");
    order.into_iter().zip(lines).collect()
}

fn letter(decision: &str) -> char {
    match decision {
        "reject" => 'R',
        "accept" => 'A',
        "propagate" => 'P',
        other => panic!("unknown decision {other}"),
    }
}

#[test]
fn every_example_policy_decides_as_documented() {
    let r = build();
    // Every file in policies/ belongs to a set.
    let mut listed: Vec<String> = SETS
        .iter()
        .flat_map(|(_, f)| f.iter().map(|s| s.to_string()))
        .collect();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(policies_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".kn"))
        .collect();
    present.sort();
    assert_eq!(listed, present, "every policies/*.kn file is evaluated");

    let mut failures = Vec::new();
    for (i, (set, files)) in SETS.iter().enumerate() {
        let paths: Vec<PathBuf> = files.iter().map(|f| policies_dir().join(f)).collect();
        let got = check(&r, &paths);
        for (spec, expected) in TABLE {
            let want = expected.chars().nth(i).unwrap();
            let v = &got[spec];
            let decision = v["decision"].as_str().unwrap();
            if letter(decision) != want {
                failures.push(format!(
                    "{set}: {spec}: expected {want}, got {decision}; reasons {}; warnings {}",
                    v["reasons"], v["warnings"]
                ));
            }
            // Every rejection says why; every grant says by what.
            if decision == "reject" {
                assert!(!v["reasons"].as_array().unwrap().is_empty(), "{set} {spec}");
            } else {
                let by = v["granted_by"].as_array().unwrap();
                assert!(!by.is_empty(), "{set} {spec}");
                for o in by {
                    assert!(
                        files
                            .iter()
                            .any(|f| o["file"].as_str().unwrap().ends_with(f))
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn example_rejections_explain_what_is_missing() {
    let r = build();
    let got = check(&r, &[policies_dir().join("distro.kn")]);
    let reasons = got["refs/tags/v1.0"]["reasons"].to_string();
    assert!(reasons.contains("needs 2 of {"), "{reasons}");
    assert!(reasons.contains("got {gt test Ed25519"), "{reasons}");
    assert!(reasons.contains("distro.kn:"), "{reasons}");
    let reasons = got["refs/tags/v4.0"]["reasons"].to_string();
    assert!(reasons.contains("not signed"), "{reasons}");
    // The delegation path of a granted kernel tag: the root, then the lead's credential, then
    // the lieutenant's sub-delegation.
    let got = check(
        &r,
        &[
            policies_dir().join("kernel.kn"),
            policies_dir().join("kernel-delegations.kn"),
        ],
    );
    let by: Vec<String> = got["refs/tags/usb-gadget-6.1"]["granted_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{}:{}", o["file"].as_str().unwrap(), o["line"]))
        .collect();
    assert_eq!(by.len(), 3, "{by:?}");
    assert!(by[0].ends_with("kernel.kn:9"), "{by:?}");
    assert!(
        by.iter()
            .filter(|o| o.contains("kernel-delegations.kn"))
            .count()
            == 2
    );
}

#[test]
fn a_tampered_delegation_is_ignored_and_reported() {
    let r = build();
    let text = std::fs::read_to_string(policies_dir().join("kernel-delegations.kn")).unwrap();
    // Widen the networking delegation without re-signing it.
    let forged = text.replace("^refs/tags/net-", "^refs/tags/");
    assert_ne!(forged, text);
    let path = r.w.path("forged.kn");
    std::fs::write(&path, forged).unwrap();
    let got = check(&r, &[policies_dir().join("kernel.kn"), path]);
    for spec in ["refs/tags/net-6.1", "refs/tags/v1.0"] {
        let v = &got[spec];
        assert_eq!(v["decision"], "reject", "{spec}: {v}");
        let warnings = v["warnings"].to_string();
        assert!(warnings.contains("forged.kn:"), "{warnings}");
        assert!(warnings.contains("does not verify"), "{warnings}");
    }
    // The untouched delegations still work.
    assert_eq!(got["refs/tags/usb-6.1"]["decision"], "accept");
}

#[test]
fn every_example_policy_lints_clean() {
    let w = World::new(&[]);
    for entry in std::fs::read_dir(policies_dir()).unwrap() {
        let path = entry.unwrap().path();
        let mut args = vec!["policy".to_owned(), "lint".to_owned()];
        for k in KEYS {
            args.push("--keyring".into());
            args.push(pubkey(k).display().to_string());
        }
        args.push(path.display().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = w.gt(w.tmp.path(), &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
