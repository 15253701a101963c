//! `gt pull REMOTE REF`: take one ref from a remote only if the signed policy accepts it —
//! the tag object first, the decision, and only then the rest of the objects and the ref.
//!
//! # Stages
//!
//! 1. `git ls-remote` names the remote ref's object id (and, by its peeled `^{}` line, whether it
//!    is an annotated tag).
//! 2. A **quarantine** is made: a temporary bare repository inside the local git directory whose
//!    `objects/info/alternates` points at the local object store, so it sees every local object
//!    and a fetch into it transfers only what is missing. Nothing in it is part of the local
//!    repository until stage 5.
//! 3. **Tag first.** For an annotated tag, only the tag object(s) (every level of a tag chain)
//!    enter the quarantine:
//!    - a remote that is a local path (a directory, or a configured remote whose URL is one) has
//!      the tag objects read straight from its object store with gix: no transfer at all;
//!    - any other remote (`file://`, `ssh://`, `https://`, ...) gets a filtered fetch
//!      (`--depth=1 --filter=object:type=tag`) into a separate scratch repository. Servers that
//!      do not allow filters (`uploadpack.allowFilter` unset) ignore the filter and send the
//!      tag's whole depth-1 history instead: still only into scratch space, decided before any
//!      of it is kept, but not cheap. gt reports which stage ran (`tag-first` or `quarantine`).
//!
//!    A branch or other non-tag ref has no tag to decide on first: its objects are fetched into
//!    the quarantine before the decision (`quarantine` stage), which the policy needs anyway to
//!    know whether the update is a fast-forward.
//! 4. **Decide** with the policy over the quarantine (source `pull`). A rejection ends here: the
//!    quarantine is deleted, no ref changes, no object enters the local repository. Exit 1.
//! 5. On accept, the rest is fetched into the quarantine, its connectivity checked
//!    (`git rev-list --objects --missing=error NEW --not --alternate-refs`), its packs and loose
//!    objects moved into the local store, and the ref moved with compare-and-swap
//!    (`git update-ref REF NEW OLD`, OLD being what the ref held when the pull started, or "must
//!    not exist"): a concurrent change of the local ref fails the pull instead of being lost.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context, bail};

use super::hook::{PolicyArgs, git, load_evaluator, repo_id};
use crate::exit::Code;

/// Arguments of `gt pull`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Annotated tags are decided on the tag object alone: a remote that is a \
    local path has it read directly, other remotes get a filtered fetch (--depth=1 \
    --filter=object:type=tag; servers without uploadpack.allowFilter send the depth-1 history \
    instead, reported as stage tag-first-unfiltered). Branches are fetched into a quarantine \
    first. Nothing enters the repository before the policy accepts; the ref moves only if it \
    still holds the value it had when the pull started.\n\n\
    Exit status: 0 updated or up to date, 1 rejected by policy, 2 error."
)]
pub struct Args {
    /// A configured remote name, a path to a repository, or a URL.
    pub remote: String,
    /// The ref to take: a full name (refs/tags/v1.0), or a short one (v1.0: refs/tags/v1.0,
    /// else refs/heads/v1.0).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The local repository to update.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Policy, keyrings and decision time.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Which path the objects took before the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Only the tag object(s) were in hand when the decision was made.
    TagFirst,
    /// A filtered tag-first fetch whose server ignored the filter: the tag's depth-1 history
    /// was fetched into scratch space before the decision (still not into the repository).
    TagFirstUnfiltered,
    /// Everything was fetched into the quarantine before the decision.
    Quarantine,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::TagFirst => "tag-first",
            Stage::TagFirstUnfiltered => "tag-first-unfiltered",
            Stage::Quarantine => "quarantine",
        }
    }
}

/// Run `gt pull`.
pub fn run(args: Args) -> anyhow::Result<Code> {
    // One decision time, taken once before anything is fetched.
    let now = args.policy.at.unwrap_or_else(SystemTime::now);
    let repo = &args.repo;
    let local = verifier::TagSource::open(repo)
        .with_context(|| format!("opening the local repository {}", repo.display()))?;
    let evaluator = load_evaluator(&local, &args.policy, now)?;
    let repo_id = repo_id(local.repository());

    let git_dir = PathBuf::from(git(repo, &["rev-parse", "--absolute-git-dir"])?);
    let objects = absolute(repo, &git(repo, &["rev-parse", "--git-path", "objects"])?);
    let url = remote_url(repo, &args.remote);

    let (ref_name, new, is_tag_object) = ls_remote(repo, &args.remote, &args.reference)?;
    let old = local_ref(local.repository(), &ref_name)?;
    if old == Some(new) {
        return report(&args, &ref_name, None, old, new, None, "already up to date");
    }

    let quarantine = Quarantine::create(&git_dir, &objects)?;
    let stage = if is_tag_object {
        fetch_tag_objects(&url, &ref_name, new, &quarantine)?
    } else {
        quarantine.fetch_all(&url, &ref_name, new)?;
        Stage::Quarantine
    };

    let source =
        verifier::TagSource::open(&quarantine.dir).context("opening the pull quarantine")?;
    let old_id = old.unwrap_or_else(policy::zero_oid);
    let update =
        policy::RefUpdate::new(repo_id, ref_name.clone(), old_id, new, policy::Source::Pull);
    let verdict = evaluator.decide(&update, &source);
    if !verdict.is_allowed() {
        // Dropping the quarantine deletes every object fetched for this pull.
        drop(quarantine);
        report(
            &args,
            &ref_name,
            Some(&verdict),
            old,
            new,
            Some(stage),
            "rejected",
        )?;
        return Ok(Code::Denied);
    }
    if stage != Stage::Quarantine {
        quarantine.fetch_all(&url, &ref_name, new)?;
    }
    quarantine.check_connected(new)?;
    quarantine.migrate(&objects)?;
    let old_arg = old.map_or_else(|| "0".repeat(new.kind().len_in_hex()), |o| o.to_string());
    git(
        repo,
        &[
            "update-ref",
            "-m",
            &format!("gt pull {} {ref_name}", args.remote),
            &ref_name,
            &new.to_string(),
            &old_arg,
        ],
    )
    .context("moving the local ref (did it change during the pull?)")?;
    report(
        &args,
        &ref_name,
        Some(&verdict),
        old,
        new,
        Some(stage),
        "updated",
    )?;
    Ok(Code::Ok)
}

/// Print the outcome, human or JSON.
fn report(
    args: &Args,
    ref_name: &str,
    verdict: Option<&policy::Verdict>,
    old: Option<gix::ObjectId>,
    new: gix::ObjectId,
    stage: Option<Stage>,
    result: &str,
) -> anyhow::Result<Code> {
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = serde_json::json!({
            "ref": ref_name,
            "remote": args.remote,
            "decision": verdict.map(|v| v.decision.as_str()),
            "signers": verdict.map(|v| v.signers.clone()).unwrap_or_default(),
            "reasons": verdict.map(|v| v.reasons.clone()).unwrap_or_default(),
            "old": old.map(|o| o.to_string()),
            "new": new.to_string(),
            "stage": stage.map(Stage::as_str),
            "result": result,
        });
        writeln!(out, "{v}")?;
    } else {
        match verdict {
            None => writeln!(out, "{ref_name}: {result}")?,
            Some(v) => {
                writeln!(
                    out,
                    "{ref_name}: {} ({result}; decided {}) {} -> {new}",
                    v.decision.as_str(),
                    stage.map_or("", Stage::as_str),
                    old.map_or_else(|| "(none)".to_owned(), |o| o.to_string()),
                )?;
                if !v.signers.is_empty() {
                    writeln!(out, "  signers: {}", v.signers.join(", "))?;
                }
                for r in &v.reasons {
                    writeln!(out, "  {r}")?;
                }
            }
        }
    }
    Ok(Code::Ok)
}

/// `path` made absolute against `base` when relative.
fn absolute(base: &Path, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    let p = if p.is_absolute() { p } else { base.join(p) };
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// Where `remote` points: a configured remote's URL, or `remote` itself. Local paths are made
/// absolute (the quarantine runs git elsewhere).
fn remote_url(repo: &Path, remote: &str) -> String {
    let url = git(repo, &["remote", "get-url", remote]).unwrap_or_else(|_| remote.to_owned());
    match local_path(repo, &url) {
        Some(p) => p.display().to_string(),
        None => url,
    }
}

/// The directory of a remote given as a plain local path (not `file://` or any other URL, and
/// not scp-like `host:path`), if it exists.
fn local_path(repo: &Path, url: &str) -> Option<PathBuf> {
    if url.contains("://") {
        return None;
    }
    let p = Path::new(url);
    let p = if p.is_absolute() {
        p.to_owned()
    } else {
        repo.join(p)
    };
    if p.is_dir() {
        std::fs::canonicalize(&p).ok()
    } else {
        None
    }
}

/// Find the remote ref: its full name, its object id, and whether it is an annotated tag
/// (`git ls-remote` prints a peeled `NAME^{}` line for those).
fn ls_remote(
    repo: &Path,
    remote: &str,
    reference: &str,
) -> anyhow::Result<(String, gix::ObjectId, bool)> {
    let candidates: Vec<String> = if reference.starts_with("refs/") {
        vec![reference.to_owned()]
    } else {
        vec![
            format!("refs/tags/{reference}"),
            format!("refs/heads/{reference}"),
        ]
    };
    // The peeled `NAME^{}` lines only match patterns that name them.
    let patterns: Vec<String> = candidates
        .iter()
        .flat_map(|c| [c.clone(), format!("{c}^{{}}")])
        .collect();
    let mut argv = vec!["ls-remote", "--", remote];
    argv.extend(patterns.iter().map(String::as_str));
    let listing = git(repo, &argv)?;
    let mut found: Vec<(String, gix::ObjectId)> = Vec::new();
    let mut peeled: Vec<String> = Vec::new();
    for line in listing.lines() {
        let Some((hex, name)) = line.split_once('\t') else {
            bail!("unexpected git ls-remote output line {line:?}");
        };
        let oid = gix::ObjectId::from_hex(hex.as_bytes())
            .map_err(|e| anyhow::anyhow!("git ls-remote printed a bad id {hex:?}: {e}"))?;
        match name.strip_suffix("^{}") {
            Some(base) => peeled.push(base.to_owned()),
            None => found.push((name.to_owned(), oid)),
        }
    }
    for c in &candidates {
        if let Some((name, oid)) = found.iter().find(|(n, _)| n == c) {
            return Ok((name.clone(), *oid, peeled.contains(name)));
        }
    }
    bail!("remote {remote:?} has no ref {}", candidates.join(" or "))
}

/// The local ref's current object id (not peeled), if it exists.
fn local_ref(repo: &gix::Repository, name: &str) -> anyhow::Result<Option<gix::ObjectId>> {
    let r = repo
        .try_find_reference(name)
        .with_context(|| format!("reading the local ref {name}"))?;
    match r {
        None => Ok(None),
        Some(r) => match r.target().try_id() {
            Some(id) => Ok(Some(id.to_owned())),
            None => bail!("the local ref {name} is symbolic; gt pull only moves direct refs"),
        },
    }
}

/// Stage 3: bring only the tag object(s) of `new` (every level of a chain) into the quarantine.
fn fetch_tag_objects(
    url: &str,
    ref_name: &str,
    new: gix::ObjectId,
    quarantine: &Quarantine,
) -> anyhow::Result<Stage> {
    let q = verifier::TagSource::open(&quarantine.dir).context("opening the pull quarantine")?;
    let copy_chain = |from: &verifier::TagSource| -> anyhow::Result<()> {
        let mut oid = new;
        for _ in 0..verifier::limits::MAX_CHAIN_DEPTH {
            let bytes = from
                .read_tag(oid)
                .with_context(|| format!("reading tag object {oid} from {url}"))?;
            let written = q
                .write_tag(&bytes)
                .context("writing into the pull quarantine")?;
            if written != oid {
                bail!("the remote's object {oid} hashes to {written}: corrupt remote repository");
            }
            match verifier::TagObject::parse(&bytes) {
                Ok(t) if t.header().target_kind == gix::objs::Kind::Tag => {
                    oid = t.header().target;
                }
                // The policy rejects malformed tags with the verifier's error; not our job here.
                _ => return Ok(()),
            }
        }
        Ok(())
    };
    if let Some(dir) = local_path(Path::new("."), url) {
        let remote = verifier::TagSource::open(&dir)
            .with_context(|| format!("opening the remote repository {}", dir.display()))?;
        copy_chain(&remote)?;
        return Ok(Stage::TagFirst);
    }
    // A scratch partial clone, separate from the quarantine: its shallow/promisor state must not
    // leak into the repository that receives the real objects.
    let scratch = tempfile::Builder::new()
        .prefix("gt-pull-tag-")
        .tempdir_in(&quarantine.dir)
        .context("creating the tag-fetch scratch repository")?;
    let s = scratch.path();
    git(s, &["init", "-q", "--bare"])?;
    for (k, v) in [
        ("core.repositoryformatversion", "1"),
        ("extensions.partialClone", "gtremote"),
        ("remote.gtremote.url", url),
        ("remote.gtremote.promisor", "true"),
    ] {
        git(s, &["config", k, v])?;
    }
    let dst = format!("+{ref_name}:refs/gt-pull/tag");
    let messages = fetch(
        s,
        &[
            "fetch",
            "-q",
            "--no-tags",
            "--no-write-fetch-head",
            "--depth=1",
            "--filter=object:type=tag",
            "gtremote",
            &dst,
        ],
    )?;
    let fetched = git(s, &["rev-parse", "--verify", "refs/gt-pull/tag"])?;
    if gix::ObjectId::from_hex(fetched.as_bytes()).ok() != Some(new) {
        bail!("the remote's {ref_name} moved during the pull ({new} -> {fetched}); retry");
    }
    let from = verifier::TagSource::open(s).context("opening the tag-fetch scratch repository")?;
    copy_chain(&from)?;
    // git's words when the server does not allow filters (uploadpack.allowFilter unset).
    if messages.contains("filtering not recognized by server") {
        Ok(Stage::TagFirstUnfiltered)
    } else {
        Ok(Stage::TagFirst)
    }
}

/// Run a git fetch, showing its progress as a bar when stderr is a terminal; returns git's
/// messages (progress lines removed).
fn fetch(dir: &Path, argv: &[&str]) -> anyhow::Result<String> {
    let tty = std::io::stderr().is_terminal();
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(argv);
    if tty {
        cmd.arg("--progress");
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running git {}", argv.join(" ")))?;
    let stderr = child.stderr.take().context("git's stderr")?;
    let messages = super::progress::follow_git_progress(stderr, tty);
    let status = child.wait().context("waiting for git fetch")?;
    if !status.success() {
        bail!("git {} failed: {}", argv.join(" "), messages.trim());
    }
    Ok(messages)
}

/// A temporary bare repository inside the local git directory that sees the local objects
/// through `objects/info/alternates`; deleted when dropped.
struct Quarantine {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Quarantine {
    fn create(git_dir: &Path, objects: &Path) -> anyhow::Result<Quarantine> {
        let tmp = tempfile::Builder::new()
            .prefix("gt-pull-")
            .tempdir_in(git_dir)
            .with_context(|| format!("creating a quarantine in {}", git_dir.display()))?;
        let dir = tmp.path().to_owned();
        git(&dir, &["init", "-q", "--bare"])?;
        let alternates = dir.join("objects/info/alternates");
        std::fs::write(&alternates, format!("{}\n", objects.display()))
            .with_context(|| format!("writing {}", alternates.display()))?;
        Ok(Quarantine { dir, _tmp: tmp })
    }

    /// Fetch `ref_name` and everything it needs into the quarantine (objects the local store
    /// already has are not transferred: git negotiates with the alternate's refs).
    fn fetch_all(&self, url: &str, ref_name: &str, new: gix::ObjectId) -> anyhow::Result<()> {
        let dst = format!("+{ref_name}:refs/gt-pull/new");
        fetch(
            &self.dir,
            &[
                "fetch",
                "-q",
                "--no-tags",
                "--no-write-fetch-head",
                url,
                &dst,
            ],
        )?;
        let fetched = git(&self.dir, &["rev-parse", "--verify", "refs/gt-pull/new"])?;
        if gix::ObjectId::from_hex(fetched.as_bytes()).ok() != Some(new) {
            bail!("the remote's {ref_name} moved during the pull ({new} -> {fetched}); retry");
        }
        Ok(())
    }

    /// Every object reachable from `new` is present (in the quarantine or the local store).
    fn check_connected(&self, new: gix::ObjectId) -> anyhow::Result<()> {
        git(
            &self.dir,
            &[
                "rev-list",
                "--objects",
                "--missing=error",
                "--quiet",
                &new.to_string(),
                "--not",
                "--alternate-refs",
            ],
        )
        .context("connectivity check of the fetched objects")?;
        Ok(())
    }

    /// Move the quarantine's packs and loose objects into the local object store. Pack data and
    /// reverse indexes go first and the `.idx` last, as git does: a pack becomes visible only
    /// once its index exists.
    fn migrate(&self, objects: &Path) -> anyhow::Result<()> {
        let src = self.dir.join("objects");
        let pack_src = src.join("pack");
        let pack_dst = objects.join("pack");
        std::fs::create_dir_all(&pack_dst)?;
        let mut packs: Vec<PathBuf> = Vec::new();
        if pack_src.is_dir() {
            for e in std::fs::read_dir(&pack_src)? {
                packs.push(e?.path());
            }
        }
        let rank = |p: &PathBuf| match p.extension().and_then(|e| e.to_str()) {
            Some("pack") => 0,
            Some("rev") => 1,
            Some("idx") => 2,
            _ => 3,
        };
        packs.retain(|p| rank(p) < 3);
        packs.sort_by_key(rank);
        for p in packs {
            let name = p.file_name().context("pack file name")?;
            move_file(&p, &pack_dst.join(name))?;
        }
        for e in std::fs::read_dir(&src)? {
            let d = e?.path();
            let Some(name) = d.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) || !d.is_dir() {
                continue;
            }
            let dst = objects.join(name);
            std::fs::create_dir_all(&dst)?;
            for f in std::fs::read_dir(&d)? {
                let f = f?.path();
                let fname = f.file_name().context("object file name")?;
                move_file(&f, &dst.join(fname))?;
            }
        }
        Ok(())
    }
}

/// Rename `from` to `to` (same filesystem: the quarantine lives in the git directory), never
/// replacing an existing object file (same name means same content).
fn move_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        return Ok(());
    }
    std::fs::rename(from, to)
        .or_else(|_| std::fs::copy(from, to).map(|_| ()))
        .with_context(|| format!("moving {} to {}", from.display(), to.display()))
}
