//! `git-remote-gittorrent`: the git remote helper (gitremote-helpers(7)) behind
//! `git clone gittorrent://<publisher key hex>/<repo>`, going through the same gated path as a
//! following node.
//!
//! - `capabilities`: `fetch` and `option`.
//! - `list`: reads the repository's DHT item (and its manifest when it refers to one), finds
//!   serving nodes, and for every ref fetches only the tag chain (or commit) and asks the
//!   [`Gate`]. Only refs the gate accepts or propagates are listed, so git never asks for the
//!   others, and a rejected tag costs its tag object. A branch (a commit) is decided as a node
//!   decides it, with its pack in quarantine (`fast_forward` needs the history): accepted, its
//!   objects go in at once; rejected, the quarantine is dropped.
//! - `fetch <oid> <name>`: fetches the packs of the listed refs into the repository's quarantine,
//!   checks connectivity, and moves them in; git updates its refs itself afterwards.
//!
//! The binary is a few lines around [`run`] once the policy crate's gate is wired in (it picks
//! the gate, the bootstrap list and the decision time at its top level).

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use gix::ObjectId;
use gix::objs::Kind;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tracing::{info, warn};

use crate::announce::{self, ItemContent, RefMap};
use crate::dht::{DhtConfig, DhtNode};
use crate::gate::{Gate, RefUpdateCtx, Verdict};
use crate::node::NodeError;
use crate::store::{PackLimits, Repo};
use crate::transfer::{self, Connection};
use crate::wire::MAX_WANTS;

/// URL scheme handled by the helper.
pub const SCHEME: &str = "gittorrent://";

/// Most command lines read from git in one session; git sends one per ref and a few more.
pub const MAX_COMMANDS: usize = 100_000;

/// How the helper reaches the DHT and decides.
#[derive(Debug, Clone)]
pub struct HelperConfig {
    /// DHT bootstrap nodes (required: there is no public default).
    pub bootstrap: Vec<String>,
    /// Address the helper's DHT client binds to.
    pub dht_bind: Ipv4Addr,
    /// Decision time, unix seconds.
    pub now: i64,
    /// Pack limits.
    pub limits: PackLimits,
}

/// Parse `gittorrent://<64 hex digits>/<name>` (a trailing `.git` or `/` is ignored).
pub fn parse_url(url: &str) -> Result<([u8; 32], String), NodeError> {
    let rest = url
        .strip_prefix(SCHEME)
        .ok_or_else(|| NodeError::Invalid(format!("{url:?}: not a {SCHEME} URL")))?;
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    crate::node::parse_repo_ref(rest)
}

/// Run the helper protocol on `input`/`output` for the repository at `git_dir` and `url`.
pub async fn run<R, W>(
    mut input: R,
    mut output: W,
    git_dir: &Path,
    url: &str,
    cfg: &HelperConfig,
    gate: &dyn Gate,
) -> Result<(), NodeError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (publisher, name) = parse_url(url)?;
    if cfg.bootstrap.is_empty() {
        return Err(NodeError::Invalid(
            "no DHT bootstrap nodes configured (there is no public default)".into(),
        ));
    }
    let repo = Repo::open(git_dir)?;
    let mut session: Option<Session> = None;
    let mut line = String::new();
    let io = |e: std::io::Error| NodeError::Io {
        what: "talk to git",
        path: git_dir.into(),
        source: e,
    };
    for _ in 0..MAX_COMMANDS {
        line.clear();
        if input.read_line(&mut line).await.map_err(io)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end();
        if cmd.is_empty() {
            return Ok(());
        } else if cmd == "capabilities" {
            output.write_all(b"fetch\noption\n\n").await.map_err(io)?;
        } else if cmd.starts_with("option ") {
            output.write_all(b"unsupported\n").await.map_err(io)?;
        } else if cmd == "list" || cmd == "list for-push" {
            let s = Session::open(&publisher, &name, cfg, &repo, gate).await?;
            let mut out = String::new();
            for (r, oid) in &s.listed {
                out.push_str(&format!("{oid} {r}\n"));
            }
            if s.listed.contains_key("refs/heads/main") {
                out.push_str("@refs/heads/main HEAD\n");
            }
            out.push('\n');
            output.write_all(out.as_bytes()).await.map_err(io)?;
            session = Some(s);
        } else if let Some(first) = cmd.strip_prefix("fetch ") {
            // A batch of fetch lines, ended by a blank line.
            let mut wants = vec![first.to_owned()];
            loop {
                line.clear();
                if input.read_line(&mut line).await.map_err(io)? == 0 || line.trim_end().is_empty()
                {
                    break;
                }
                if let Some(w) = line.trim_end().strip_prefix("fetch ") {
                    wants.push(w.to_owned());
                }
                if wants.len() > MAX_COMMANDS {
                    return Err(NodeError::Invalid("too many fetch lines".into()));
                }
            }
            let s = session
                .as_mut()
                .ok_or_else(|| NodeError::Invalid("fetch before list".into()))?;
            let mut oids = Vec::new();
            for w in &wants {
                let hex = w.split_whitespace().next().unwrap_or_default();
                let oid = ObjectId::from_hex(hex.as_bytes())
                    .map_err(|_| NodeError::Invalid(format!("bad fetch line {w:?}")))?;
                if !s.accepted.contains(&oid) {
                    return Err(NodeError::Invalid(format!("{oid} was not listed")));
                }
                oids.push(oid);
            }
            s.fetch(&repo, &oids, cfg.limits).await?;
            output.write_all(b"\n").await.map_err(io)?;
        } else {
            return Err(NodeError::Invalid(format!(
                "unsupported helper command {cmd:?}"
            )));
        }
        output.flush().await.map_err(io)?;
    }
    Err(NodeError::Invalid("too many commands".into()))
}

struct Session {
    conn: Connection,
    listed: BTreeMap<String, ObjectId>,
    accepted: HashSet<ObjectId>,
}

impl Session {
    async fn open(
        publisher: &[u8; 32],
        name: &str,
        cfg: &HelperConfig,
        repo: &Repo,
        gate: &dyn Gate,
    ) -> Result<Session, NodeError> {
        let dht = DhtNode::start(&DhtConfig {
            bootstrap: cfg.bootstrap.clone(),
            bind: cfg.dht_bind,
            port: 0,
            server_mode: false,
        })
        .await?;
        let item = dht
            .get_item(publisher, name)
            .await?
            .ok_or_else(|| NodeError::Invalid(format!("no DHT item for {name}")))?;
        let peers = dht.find_peers(publisher, name).await?;
        let mut conn = None;
        let mut last = NodeError::Invalid(format!("no node serves {name}"));
        for p in peers.into_iter().take(crate::node::MAX_PEERS_TRIED) {
            match transfer::connect(SocketAddr::V4(p), publisher, name, None).await {
                Ok(c) => {
                    conn = Some(c);
                    break;
                }
                Err(e) => last = e.into(),
            }
        }
        let mut conn = conn.ok_or(last)?;
        let refs: RefMap = match announce::decode_item(item.value())? {
            ItemContent::Refs(r) => r,
            ItemContent::Manifest { sha256, count } => {
                let bytes = conn.want_manifest(&sha256).await?;
                announce::decode_manifest(&bytes, &sha256, count)?
            }
        };
        let local = repo.refs()?;
        let mut listed = BTreeMap::new();
        let mut accepted = HashSet::new();
        for (r, new) in refs {
            let (kind, tags) = match conn.want_tag_chain(new).await {
                Ok(x) => x,
                Err(e) => {
                    warn!(r#ref = %r, error = %e, "skipping ref");
                    continue;
                }
            };
            let ctx = RefUpdateCtx {
                repo: name.to_owned(),
                publisher: *publisher,
                served_by: conn.server_key,
                ref_name: r.clone(),
                old: local.get(&r).copied(),
                new,
                new_kind: kind,
                seq: item.seq(),
                now: cfg.now,
            };
            let d = if kind == Kind::Commit {
                // A branch: decided with its history readable (`fast_forward`), as the node
                // does; an accepted pack's objects go in now (git moves the refs after
                // `fetch`, which then finds them present), a rejected one is dropped.
                match Self::decide_branch(&mut conn, repo, gate, &ctx, cfg.limits).await {
                    Ok(d) => d,
                    Err(e) => {
                        warn!(r#ref = %r, error = %e, "skipping ref");
                        continue;
                    }
                }
            } else {
                gate.decide(&ctx, &tags)
            };
            info!(r#ref = %r, verdict = ?d.verdict, explanation = %d.explanation, "gate decision");
            if d.verdict != Verdict::Reject {
                accepted.insert(new);
                listed.insert(r, new);
            }
        }
        Ok(Session {
            conn,
            listed,
            accepted,
        })
    }

    async fn decide_branch(
        conn: &mut Connection,
        repo: &Repo,
        gate: &dyn Gate,
        ctx: &RefUpdateCtx,
        limits: PackLimits,
    ) -> Result<crate::gate::GateDecision, NodeError> {
        let q = conn.want_pack_quarantined(repo, &[ctx.new], limits).await?;
        let dirs = [q.objects_dir().to_owned(), repo.objects_dir()];
        let d = gate.decide_received(ctx, &[], &dirs);
        if d.verdict != Verdict::Reject {
            tokio::task::spawn_blocking(move || q.commit_objects())
                .await
                .map_err(|e| NodeError::Invalid(format!("background task failed: {e}")))??;
        }
        Ok(d)
    }

    async fn fetch(
        &mut self,
        repo: &Repo,
        oids: &[ObjectId],
        limits: PackLimits,
    ) -> Result<(), NodeError> {
        for chunk in oids.chunks(MAX_WANTS) {
            let missing: Vec<ObjectId> = chunk
                .iter()
                .filter(|o| !repo.has_object(o).unwrap_or(false))
                .copied()
                .collect();
            if missing.is_empty() {
                continue;
            }
            let q = self
                .conn
                .want_pack_quarantined(repo, &missing, limits)
                .await?;
            tokio::task::spawn_blocking(move || q.commit_objects())
                .await
                .map_err(|e| NodeError::Invalid(format!("background task failed: {e}")))??;
        }
        Ok(())
    }
}
