//! `gt hook pre-receive` (the server-side enforcement point: decide every ref update of a push
//! with the signed policy before git accepts any of it) and `gt hook install` (put that hook in a
//! repository).
//!
//! # All-or-nothing pushes
//!
//! git runs the pre-receive hook once per push, with every ref update on stdin, after the pushed
//! objects arrived in a quarantine directory and before any ref moves. If the hook exits
//! non-zero, git refuses *every* ref of the push and deletes the quarantine
//! (githooks(5), "pre-receive"). So under gt's hook a push is all-or-nothing: one rejected ref
//! refuses the whole push, the repository's refs and object store stay exactly as they were, and
//! the pusher sees each rejection's reason as a `remote: gt: ...` line.
//!
//! # Where the policy comes from
//!
//! `--policy` / `--keyring` flags if given, else the multi-valued git config keys `gt.policy` and
//! `gt.keyring` of the receiving repository (`gt hook install` writes them). Relative paths are
//! relative to the repository: its work tree if it has one, else its git directory. No policy
//! configured is an error (exit 2), never an implicit accept.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};

use crate::exit::Code;

/// Most ref updates one push may carry. git.git has ~1,000 tags and a distro mirror ~100,000;
/// beyond that a single push is far more likely to be a resource attack than a release.
pub const MAX_HOOK_UPDATES: usize = 200_000;

/// Most bytes read from the hook's stdin: [`MAX_HOOK_UPDATES`] lines of two 64-hex ids (SHA-256
/// repositories) and a typical ref name fit comfortably; input beyond it is refused unread.
pub const MAX_HOOK_INPUT_BYTES: u64 = 256 * 1024 * 1024;

/// Longest ref name accepted in hook input (bytes). git itself has no hard limit, but paths on
/// common filesystems stop at 4096 bytes, so a longer ref could not be stored loose anyway.
pub const MAX_REF_NAME_BYTES: usize = 4096;

/// Most rejection reasons printed to the pusher; the rest are counted. A rejected 10,000-tag
/// push would otherwise scroll 10,000 `remote:` lines past the one that explains it.
pub const MAX_REPORTED_REJECTIONS: usize = 100;

/// Arguments of `gt hook`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which hook operation.
    #[command(subcommand)]
    pub command: HookCommand,
}

/// The `gt hook` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum HookCommand {
    /// Run as git's pre-receive hook: decide every `OLD NEW REF` line on stdin with the policy;
    /// exit 1 (git refuses the whole push) if any update is rejected.
    #[command(
        after_help = "Pushes are all-or-nothing under this hook: if any ref update is \
        rejected, git refuses every ref of the push and the repository is left unchanged.\n\n\
        Policy and keyrings come from --policy/--keyring, else from git config gt.policy and \
        gt.keyring (several values allowed; relative paths are relative to the repository)."
    )]
    PreReceive(PreReceiveArgs),
    /// Install `gt hook pre-receive` as a repository's pre-receive hook and record the policy
    /// and keyrings in its git config.
    Install(InstallArgs),
}

/// The policy inputs shared by every enforcement point.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// A trusted policy file (KeyNote assertions); repeat for several. Default: git config
    /// gt.policy.
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// An OpenPGP keyring file or directory of certificates; repeat for several. Default: git
    /// config gt.keyring.
    #[arg(long = "keyring", value_name = "FILE")]
    pub keyrings: Vec<PathBuf>,
    /// Decide as of this time (unix seconds, `@SECONDS`, or 2026-06-01T00:00:00Z) instead of
    /// now, as `gt policy check --at` does.
    #[arg(long, value_name = "TIME", env = "GT_AT", value_parser = super::policy::parse_time)]
    pub at: Option<SystemTime>,
}

/// Arguments of `gt hook pre-receive`.
#[derive(Debug, clap::Args)]
pub struct PreReceiveArgs {
    /// Policy, keyrings and decision time.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Arguments of `gt hook install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The repository (bare or not) to install the hook into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Policy file to record in git config gt.policy (replaces the existing values).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Keyring to record in git config gt.keyring (replaces the existing values).
    #[arg(long = "keyring", value_name = "FILE")]
    pub keyrings: Vec<PathBuf>,
    /// Replace an existing pre-receive hook that gt did not write.
    #[arg(long)]
    pub force: bool,
}

/// Run `gt hook ...`.
pub fn run(args: Args) -> anyhow::Result<Code> {
    match args.command {
        HookCommand::PreReceive(a) => pre_receive(a),
        HookCommand::Install(a) => install(a),
    }
}

/// One line of pre-receive input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookLine {
    /// The ref's current value (zero: the ref is being created).
    pub old: gix::ObjectId,
    /// The proposed value (zero: the ref is being deleted).
    pub new: gix::ObjectId,
    /// The full ref name.
    pub ref_name: String,
}

/// Parse git's pre-receive input: one `OLD SP NEW SP REF` line per update (githooks(5)).
/// Any malformed line fails the whole input, naming the line, so nothing is half-decided.
pub fn parse_hook_input(input: impl Read) -> anyhow::Result<Vec<HookLine>> {
    parse_hook_input_limited(input, MAX_HOOK_UPDATES, MAX_HOOK_INPUT_BYTES)
}

/// [`parse_hook_input`] with explicit limits (so tests can reach them cheaply).
fn parse_hook_input_limited(
    input: impl Read,
    max_updates: usize,
    max_bytes: u64,
) -> anyhow::Result<Vec<HookLine>> {
    let mut reader = std::io::BufReader::new(input.take(max_bytes + 1));
    let mut lines = Vec::new();
    let mut total: u64 = 0;
    let mut buf = Vec::new();
    let mut lineno = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .context("reading the pre-receive input on stdin")?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > max_bytes {
            bail!("pre-receive input is larger than {max_bytes} bytes");
        }
        lineno += 1;
        if lineno > max_updates {
            bail!("pre-receive input has more than {max_updates} ref updates");
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        lines.push(parse_hook_line(line).with_context(|| {
            format!(
                "pre-receive input line {lineno} ({:?})",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            )
        })?);
    }
    Ok(lines)
}

fn parse_hook_line(line: &[u8]) -> anyhow::Result<HookLine> {
    let text = std::str::from_utf8(line).context("not UTF-8")?;
    let mut parts = text.splitn(3, ' ');
    let (Some(old), Some(new), Some(ref_name)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("expected `OLD-ID NEW-ID REFNAME`");
    };
    let oid = |field: &str, s: &str| -> anyhow::Result<gix::ObjectId> {
        if !(s.len() == 40 || s.len() == 64) {
            bail!("{field} id {s:?} is not 40 or 64 hex digits");
        }
        gix::ObjectId::from_hex(s.as_bytes())
            .map_err(|e| anyhow::anyhow!("{field} id {s:?} is not a hex object id: {e}"))
    };
    let old = oid("old", old)?;
    let new = oid("new", new)?;
    if old.kind() != new.kind() {
        bail!("old and new ids use different hash functions");
    }
    if ref_name.len() > MAX_REF_NAME_BYTES {
        bail!("ref name is longer than {MAX_REF_NAME_BYTES} bytes");
    }
    if !ref_name.starts_with("refs/") {
        bail!("ref name {ref_name:?} does not start with refs/");
    }
    gix::refs::FullName::try_from(ref_name)
        .map_err(|e| anyhow::anyhow!("ref name {ref_name:?} is not a valid ref name: {e}"))?;
    Ok(HookLine {
        old,
        new,
        ref_name: ref_name.to_owned(),
    })
}

/// The policy and keyring files to use: the flags if given, else the repository's git config
/// (`gt.policy`, `gt.keyring`), relative paths resolved against `base`.
pub fn configured_files(
    repo: &gix::Repository,
    args: &PolicyArgs,
) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let base = repo.workdir().unwrap_or_else(|| repo.git_dir()).to_owned();
    let from_config = |key: &str| -> anyhow::Result<Vec<PathBuf>> {
        let snapshot = repo.config_snapshot();
        snapshot
            .strings(key)
            .unwrap_or_default()
            .into_iter()
            .map(|v| {
                gix::path::from_bstring(v)
                    .map(|p| base.join(p))
                    .map_err(|e| anyhow::anyhow!("git config {key}: not a usable path: {e}"))
            })
            .collect()
    };
    let policies = if args.policies.is_empty() {
        from_config("gt.policy")?
    } else {
        args.policies.clone()
    };
    let keyrings = if args.keyrings.is_empty() {
        from_config("gt.keyring")?
    } else {
        args.keyrings.clone()
    };
    if policies.is_empty() {
        bail!(
            "no policy configured for {}: pass --policy FILE or set git config gt.policy \
             (gt hook install --policy FILE does)",
            base.display()
        );
    }
    Ok((policies, keyrings))
}

/// Load the trusted policy files and keyrings (flags or git config) into an evaluator for the
/// decision time `now`, adding the repository's own `refs/gt/policy` credentials if it has any.
pub fn load_evaluator(
    source: &verifier::TagSource,
    args: &PolicyArgs,
    now: SystemTime,
) -> anyhow::Result<policy::Evaluator> {
    let (policies, keyrings) = configured_files(source.repository(), args)?;
    let mut evaluator = policy::Evaluator::from_paths(&policies, &keyrings, now)
        .context("loading the policy and keyrings")?;
    evaluator
        .add_repository_policy(source)
        .context("reading the repository's own policy (refs/gt/policy)")?;
    Ok(evaluator)
}

/// The `repo` action attribute for a local repository: git config `gt.repo` if set (so a
/// policy can name a repository independently of where it is stored), else the canonical path
/// of its work tree, or of its git directory when bare.
pub fn repo_id(repo: &gix::Repository) -> String {
    if let Some(name) = repo.config_snapshot().string("gt.repo") {
        return name.to_string();
    }
    let dir = repo.workdir().unwrap_or_else(|| repo.git_dir());
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_owned())
        .display()
        .to_string()
}

/// The repository this hook runs for: `$GIT_DIR` (git sets it for hooks) or the current directory.
fn hook_repo_dir() -> PathBuf {
    std::env::var_os("GIT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `gt hook pre-receive`.
fn pre_receive(args: PreReceiveArgs) -> anyhow::Result<Code> {
    // One decision time for the whole push: every update is judged by the same clock.
    let now = args.policy.at.unwrap_or_else(SystemTime::now);
    let updates = parse_hook_input(std::io::stdin().lock())?;
    let dir = hook_repo_dir();
    let source = verifier::TagSource::from_git_env(&dir)
        .with_context(|| format!("opening the receiving repository {}", dir.display()))?;
    let evaluator = load_evaluator(&source, &args.policy, now)?;
    let repo_id = repo_id(source.repository());
    let verdicts = decide_all(&dir, &source, &evaluator, &repo_id, &updates)?;
    let mut rejected = 0usize;
    let mut err = std::io::stderr().lock();
    for (u, verdict) in updates.iter().zip(&verdicts) {
        if !verdict.is_allowed() {
            rejected += 1;
            let why = if verdict.reasons.is_empty() {
                "denied by policy".to_owned()
            } else {
                verdict.reasons.join("; ")
            };
            if rejected <= MAX_REPORTED_REJECTIONS {
                writeln!(err, "gt: {}: rejected: {why}", u.ref_name)?;
            }
        }
    }
    if rejected > MAX_REPORTED_REJECTIONS {
        writeln!(
            err,
            "gt: ... and {} more rejected update(s)",
            rejected - MAX_REPORTED_REJECTIONS
        )?;
    }
    if rejected > 0 {
        writeln!(
            err,
            "gt: push refused: {rejected} of {} ref update(s) rejected by policy; pushes are \
             all-or-nothing, so no ref was updated",
            updates.len()
        )?;
        return Ok(Code::Denied);
    }
    Ok(Code::Ok)
}

/// Fewest updates per worker thread: below this, opening another object store costs more than
/// the signatures it would verify in parallel.
pub const MIN_UPDATES_PER_WORKER: usize = 256;

/// Most worker threads deciding one push: decisions are CPU-bound (signature verification), so
/// more threads than cores only add contention; 8 bounds a big server's share per push.
pub const MAX_WORKERS: usize = 8;

/// Decide every update, in input order. A big push is split into contiguous chunks decided on
/// up to [`MAX_WORKERS`] threads, each with its own object store handle (gix handles are not
/// shared across threads); the evaluator, and so the decision time, is the same for all.
fn decide_all(
    dir: &Path,
    source: &verifier::TagSource,
    evaluator: &policy::Evaluator,
    repo_id: &str,
    updates: &[HookLine],
) -> anyhow::Result<Vec<policy::Verdict>> {
    let decide_one = |objects: &verifier::TagSource, u: &HookLine| {
        let update = policy::RefUpdate::new(
            repo_id.to_owned(),
            u.ref_name.clone(),
            u.old,
            u.new,
            policy::Source::PreReceive,
        );
        evaluator.decide(&update, objects)
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = cores
        .min(MAX_WORKERS)
        .min(updates.len() / MIN_UPDATES_PER_WORKER)
        .max(1);
    if workers == 1 {
        return Ok(updates.iter().map(|u| decide_one(source, u)).collect());
    }
    let chunk = updates.len().div_ceil(workers);
    // The threads wait until all are started, so the first does not hold up the start of the
    // others (keynote::par says why).
    let gate = keynote::par::Gate::default();
    std::thread::scope(|scope| {
        let handles = gate.spawn_all(
            scope,
            updates.chunks(chunk).map(|part| {
                move || -> anyhow::Result<Vec<policy::Verdict>> {
                    let objects = verifier::TagSource::from_git_env(dir).with_context(|| {
                        format!("opening the receiving repository {}", dir.display())
                    })?;
                    Ok(part.iter().map(|u| decide_one(&objects, u)).collect())
                }
            }),
        );
        let mut all = Vec::with_capacity(updates.len());
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("a decision thread panicked"))??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// The hook script `gt hook install` writes: exec this very binary, by absolute path.
fn hook_script(gt: &Path) -> String {
    let quoted = gt.display().to_string().replace('\'', r"'\''");
    format!(
        "#!/bin/sh\n\
         # Installed by `gt hook install`. Every push is decided by gt's signed KeyNote policy\n\
         # (git config gt.policy, gt.keyring). Pushes are all-or-nothing: if gt rejects any ref\n\
         # update, git refuses the whole push.\n\
         exec '{quoted}' hook pre-receive\n"
    )
}

/// Run git in `dir`, returning trimmed stdout or an error with git's message.
pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "git {} in {} failed: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
}

/// `gt hook install`.
fn install(args: InstallArgs) -> anyhow::Result<Code> {
    let repo = &args.repo;
    let hooks = PathBuf::from(git(repo, &["rev-parse", "--git-path", "hooks"])?);
    let hooks = if hooks.is_absolute() {
        hooks
    } else {
        repo.join(hooks)
    };
    let canon = |files: &[PathBuf]| -> anyhow::Result<Vec<String>> {
        files
            .iter()
            .map(|f| {
                std::fs::canonicalize(f)
                    .with_context(|| format!("{} not found", f.display()))
                    .map(|p| p.display().to_string())
            })
            .collect()
    };
    let policies = canon(&args.policies)?;
    let keyrings = canon(&args.keyrings)?;
    // Load what will be enforced now, so a typo fails the install rather than every later push.
    if !policies.is_empty() {
        let p: Vec<PathBuf> = policies.iter().map(PathBuf::from).collect();
        let k: Vec<PathBuf> = keyrings.iter().map(PathBuf::from).collect();
        policy::Evaluator::from_paths(&p, &k, SystemTime::now())
            .context("the policy given to gt hook install does not load")?;
    }
    let gt = std::env::current_exe().context("finding the path of the gt binary")?;
    let gt = std::fs::canonicalize(&gt).unwrap_or(gt);
    let script = hook_script(&gt);
    let path = hooks.join("pre-receive");
    match std::fs::read(&path) {
        Ok(existing) if existing == script.as_bytes() => {}
        Ok(_) if !args.force => bail!(
            "{} exists and was not written by this gt; rerun with --force to replace it",
            path.display()
        ),
        Ok(_) => write_hook(&hooks, &path, &script)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_hook(&hooks, &path, &script)?,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    for (key, values) in [("gt.policy", &policies), ("gt.keyring", &keyrings)] {
        if values.is_empty() {
            continue;
        }
        // Replace, not append: the flags state the whole configuration.
        let _ = git(repo, &["config", "--unset-all", key]);
        for v in values {
            git(repo, &["config", "--add", key, v])?;
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "installed {}", path.display())?;
    Ok(Code::Ok)
}

/// Write the hook atomically: a temporary file in the hooks directory, made executable, then
/// renamed over the target, so git never runs a half-written hook.
fn write_hook(hooks: &Path, path: &Path, script: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(hooks).with_context(|| format!("creating {}", hooks.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".pre-receive.gt-")
        .tempfile_in(hooks)
        .with_context(|| format!("creating a temporary file in {}", hooks.display()))?;
    tmp.write_all(script.as_bytes())?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o755))?;
    }
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn parses_updates_and_names_the_bad_line() {
        let ok = format!("{Z} {A} refs/tags/v1\n{A} {Z} refs/heads/main\n");
        let lines = parse_hook_input(ok.as_bytes()).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].ref_name, "refs/tags/v1");
        assert!(lines[0].old.is_null() && lines[1].new.is_null());

        for (bad, what) in [
            (format!("{Z} {A}\n"), "expected"),
            (format!("{Z} xyz refs/tags/v1\n"), "not 40 or 64"),
            (format!("{Z} {A} tags/v1\n"), "does not start with refs/"),
            (format!("{Z} {A} refs/tags/a..b\n"), "not a valid ref name"),
            (format!("{Z} {}g refs/tags/v\n", &A[..39]), "not a hex"),
        ] {
            let input = format!("{Z} {A} refs/tags/ok\n{bad}");
            let err = format!("{:#}", parse_hook_input(input.as_bytes()).unwrap_err());
            assert!(err.contains("line 2"), "{err}");
            assert!(err.contains(what), "{err}");
        }
    }

    #[test]
    fn ref_name_limit_is_enforced_at_the_boundary() {
        let name = |n: usize| format!("refs/{}", "a".repeat(n - 5));
        let at = format!("{Z} {A} {}\n", name(MAX_REF_NAME_BYTES));
        assert!(parse_hook_input(at.as_bytes()).is_ok());
        let over = format!("{Z} {A} {}\n", name(MAX_REF_NAME_BYTES + 1));
        let err = format!("{:#}", parse_hook_input(over.as_bytes()).unwrap_err());
        assert!(err.contains("longer than"), "{err}");
    }

    #[test]
    fn update_and_byte_limits_are_enforced_at_the_boundary() {
        let line = format!("{Z} {A} refs/tags/v1\n");
        let three = line.repeat(3);
        assert_eq!(
            parse_hook_input_limited(three.as_bytes(), 3, 1 << 20)
                .unwrap()
                .len(),
            3
        );
        let err = parse_hook_input_limited(three.as_bytes(), 2, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("more than 2 ref updates"), "{err}");
        let n = three.len() as u64;
        assert!(parse_hook_input_limited(three.as_bytes(), 3, n).is_ok());
        let err = parse_hook_input_limited(three.as_bytes(), 3, n - 1).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn hook_script_quotes_the_binary_path() {
        let s = hook_script(Path::new("/opt/it's/gt"));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains(r"exec '/opt/it'\''s/gt' hook pre-receive"));
    }
}
