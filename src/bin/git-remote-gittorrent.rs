//! `git-remote-gittorrent`: git's remote helper for `gittorrent://<publisher key hex>/<name>`
//! URLs (`git clone`, `git fetch`), deciding every ref with the policy before fetching it.
//!
//! git runs it as `git-remote-gittorrent <remote> <url>` with `GIT_DIR` set and speaks the
//! gitremote-helpers(7) protocol on stdin/stdout; gt-node's `remote_helper::run` does the work
//! through a one-shot DHT client. Configuration (environment first, then git config):
//!
//! | what | environment | git config (multi-valued) |
//! |---|---|---|
//! | DHT bootstrap nodes `HOST:PORT` | `GT_BOOTSTRAP` (comma- or space-separated) | `gt.bootstrap` |
//! | policy files | `GT_POLICY` (`:`-separated) | `gt.policy` |
//! | keyrings (files or directories) | `GT_KEYRING` (`:`-separated) | `gt.keyring` |
//! | decision time (unix seconds) | `GT_AT` | — (default: the clock) |
//! | log level | `RUST_LOG` | — (default: warn) |
//!
//! There is no default bootstrap list: without one the helper refuses to run rather than
//! contact a public network.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use gt_node::policy_gate::PolicyGate;
use gt_node::remote_helper::{HelperConfig, run};
use gt_node::store::PackLimits;

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    match main_inner() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("git-remote-gittorrent: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `git config --get-all KEY` in the repository git runs us for (empty when unset).
fn git_config(key: &str) -> Vec<String> {
    Command::new("git")
        .args(["config", "--get-all", key])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The values of `env` (split on `seps`), else of git config `key`.
fn setting(env: &str, seps: &[char], key: &str) -> Vec<String> {
    match std::env::var(env) {
        Ok(v) if !v.trim().is_empty() => v
            .split(|c| seps.contains(&c))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => git_config(key),
    }
}

fn main_inner() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = match args.as_slice() {
        [_, _remote, url, ..] => url.clone(),
        [_, url] => url.clone(),
        _ => bail!("usage: git-remote-gittorrent <remote> <url> (run by git)"),
    };
    let git_dir = PathBuf::from(std::env::var_os("GIT_DIR").context("GIT_DIR is not set")?);
    let bootstrap = setting("GT_BOOTSTRAP", &[',', ' '], "gt.bootstrap");
    let policies: Vec<PathBuf> = setting("GT_POLICY", &[':'], "gt.policy")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let keyrings: Vec<PathBuf> = setting("GT_KEYRING", &[':'], "gt.keyring")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let now = match std::env::var("GT_AT")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(t) => t,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    };
    let gate = PolicyGate::new(policies, keyrings, None);
    gate.check(UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0)))
        .context("policy for gittorrent:// (GT_POLICY or git config gt.policy)")?;
    let cfg = HelperConfig {
        bootstrap,
        dht_bind: std::net::Ipv4Addr::LOCALHOST,
        now,
        limits: PackLimits::default(),
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            let stdout = tokio::io::stdout();
            run(stdin, stdout, &git_dir, &url, &cfg, &gate).await
        })?;
    Ok(())
}
