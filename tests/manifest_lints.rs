//! The lint settings of every package in the workspace are the workspace's own.
//!
//! The members inherit `[workspace.lints]`. The root package (the `gt` binary) cannot: Cargo
//! inherits a lints table whole or not at all, and the root must deny unsafe code rather than
//! forbid it (src/memory.rs allows it for its one `.init_array` entry). So the root keeps a
//! copy, and this test holds the copy equal to the workspace table but for that one entry, so
//! that a lint added to one table and not the other fails here instead of drifting.

use toml::{Table, Value};

fn manifest(dir: &str) -> Table {
    let path = format!("{}/{dir}Cargo.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.parse().unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn root_lints_are_the_workspace_lints_with_unsafe_code_denied() {
    let root = manifest("");
    let workspace = &root["workspace"]["lints"];
    assert_eq!(
        workspace["rust"]["unsafe_code"].as_str(),
        Some("forbid"),
        "the workspace forbids unsafe code"
    );
    let mut expected = workspace.clone();
    let Some(rust) = expected.get_mut("rust").and_then(Value::as_table_mut) else {
        panic!("[workspace.lints.rust] is a table");
    };
    rust.insert("unsafe_code".into(), "deny".into());
    assert_eq!(
        root["lints"], expected,
        "the root package's [lints] must be [workspace.lints] with unsafe_code = \"deny\""
    );
}

#[test]
fn every_member_inherits_the_workspace_lints() {
    let root = manifest("");
    let members = root["workspace"]["members"]
        .as_array()
        .expect("workspace.members is a list");
    assert!(!members.is_empty());
    for member in members {
        let dir = member.as_str().expect("a member is a path");
        let m = manifest(&format!("{dir}/"));
        assert_eq!(
            m.get("lints").and_then(|l| l.get("workspace")),
            Some(&Value::Boolean(true)),
            "{dir}/Cargo.toml: [lints] workspace = true"
        );
    }
}
