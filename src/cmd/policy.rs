//! `gt policy check | lint | sign`: decide ref updates with a signed KeyNote policy, find
//! mistakes in policy files, and sign credentials.
//!
//! Exit statuses (exit.rs): `check` 0 when every update is accepted or propagated, 1 when any
//! is rejected, 2 on errors (an unreadable policy, an unknown ref); `lint` 0 when no error was
//! found (warnings allowed), 1 when one was; `sign` 0 or 2.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, Subcommand};
use policy::{Evaluator, RefUpdate, Source, Verdict, zero_oid};
use verifier::TagSource;

use crate::exit::Code;

/// `gt policy`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// The `gt policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide ref updates: reject, accept or propagate, with the signers and the why.
    Check(CheckArgs),
    /// Report syntax errors, unsigned or badly signed credentials and unknown attributes.
    Lint(LintArgs),
    /// Sign the credentials of a policy file with an OpenPGP key (file or GnuPG).
    Sign(SignArgs),
}

/// `gt policy check`.
#[derive(Debug, ClapArgs)]
pub struct CheckArgs {
    /// The repository (default: the one containing the current directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    /// A trusted policy file (its `Authorizer: "POLICY"` assertions are the trust roots).
    /// Repeat for several.
    #[arg(long = "policy", value_name = "FILE", required = true)]
    pub policies: Vec<PathBuf>,

    /// An OpenPGP keyring file or directory. Repeat for several.
    #[arg(long = "keyring", value_name = "FILE")]
    pub keyrings: Vec<PathBuf>,

    /// One JSON object per ref and line: ref, decision, signers, granted_by, reasons, env.
    #[arg(long)]
    pub json: bool,

    /// Decide as of this time: unix seconds (`1780272000`, `@1780272000`) or an RFC 3339 UTC
    /// date (`2026-06-01`, `2026-06-01T00:00:00Z`). Default: now.
    #[arg(long, value_name = "TIME", env = "GT_AT")]
    pub at: Option<String>,

    /// Ignore the repository's own policy (refs/gt/policy).
    #[arg(long)]
    pub no_repo_policy: bool,

    /// The `repo` attribute (default: git config `gt.repo` of the repository, as for the hook
    /// and `gt pull`, else the repository's path).
    #[arg(long, value_name = "ID")]
    pub repo_id: Option<String>,

    /// Decide every ref under refs/tags/ (as if each were being created at its current value).
    #[arg(long, conflicts_with = "refs")]
    pub all_tags: bool,

    /// `REF` decides creating REF at its current value; `REF:NEW_OID` decides moving REF from
    /// its current value (or nothing) to NEW_OID, which must be in the repository.
    #[arg(value_name = "REF[:NEW_OID]", required_unless_present = "all_tags")]
    pub refs: Vec<String>,
}

/// `gt policy lint`.
#[derive(Debug, ClapArgs)]
pub struct LintArgs {
    /// Keyrings to check credential signatures with (without one, OpenPGP signatures by
    /// unknown keys are warnings, not errors).
    #[arg(long = "keyring", value_name = "FILE")]
    pub keyrings: Vec<PathBuf>,

    /// Check signatures as of this time (see `gt policy check --at`). Default: now.
    #[arg(long, value_name = "TIME", env = "GT_AT")]
    pub at: Option<String>,

    /// The files are meant for refs/gt/policy (POLICY assertions there are ignored).
    #[arg(long)]
    pub repository: bool,

    /// One JSON object per finding and line.
    #[arg(long)]
    pub json: bool,

    /// Policy files.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// `gt policy sign`.
#[derive(Debug, ClapArgs)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["key", "gpg"])))]
pub struct SignArgs {
    /// An OpenPGP secret key file (unencrypted, e.g. `sq key generate` or `gpg
    /// --export-secret-keys` output of a key without passphrase).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Sign with your GnuPG key (`gpg --detach-sign`; honours GNUPGHOME).
    #[arg(long)]
    pub gpg: bool,

    /// With --gpg: the key to sign with (default: each credential's Authorizer).
    #[arg(long, value_name = "ID", requires = "gpg")]
    pub local_user: Option<String>,

    /// With --gpg: the gpg program.
    #[arg(long, value_name = "PATH", default_value = "gpg", requires = "gpg")]
    pub gpg_program: PathBuf,

    /// The signature's creation time (see `gt policy check --at`). Default: now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,

    /// Write the signed file here instead of replacing FILE.
    #[arg(long, short, value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// The credential file; rewritten in place (atomically) unless --output is given.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Run `gt policy ...`.
pub fn run(args: Args) -> anyhow::Result<Code> {
    match args.command {
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Lint(a) => lint(a),
        PolicyCommand::Sign(a) => sign(a),
    }
}

/// Parse a decision time: unix seconds (optionally `@`), or `YYYY-MM-DD[THH:MM:SS[Z]]` UTC.
pub fn parse_time(s: &str) -> anyhow::Result<SystemTime> {
    let bad = || anyhow::anyhow!("{s:?} is not a time: give unix seconds or 2026-06-01T00:00:00Z");
    let digits = s.strip_prefix('@').unwrap_or(s);
    if let Ok(secs) = digits.parse::<u64>() {
        // `UNIX_EPOCH + d` panics past the platform's last representable instant.
        return UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(bad);
    }
    let s2 = s.trim_end_matches('Z');
    let (date, time) = s2.split_once('T').unwrap_or((s2, "00:00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let t: Vec<i64> = time
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let ([y, m, day], [hh, mm, ss]) = (d.as_slice(), t.as_slice()) else {
        return Err(bad());
    };
    let (y, m, day) = (*y, *m, *day);
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(0..24).contains(hh)
        || !(0..60).contains(mm)
        || !(0..=60).contains(ss)
    {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian, UTC.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let secs = u64::try_from(secs).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

/// [`parse_time`] as whole seconds since the Unix epoch (for `gt verify-tag --at`).
pub fn parse_unix_seconds(s: &str) -> anyhow::Result<u64> {
    let t = parse_time(s)?;
    Ok(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

fn time_or_now(at: Option<&str>) -> anyhow::Result<SystemTime> {
    at.map_or_else(|| Ok(SystemTime::now()), parse_time)
}

fn check(args: CheckArgs) -> anyhow::Result<Code> {
    let now = time_or_now(args.at.as_deref())?;
    let dir = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    let objects =
        TagSource::open(&dir).with_context(|| format!("opening repository {}", dir.display()))?;
    let mut evaluator = Evaluator::from_paths(&args.policies, &args.keyrings, now)
        .context("loading the policy and keyrings")?;
    for w in evaluator.keyring().warnings() {
        tracing::warn!("{w}");
    }
    if !args.no_repo_policy {
        evaluator
            .add_repository_policy(&objects)
            .context("reading the repository's own policy (refs/gt/policy)")?;
    }
    // The same `repo` as the hook and `gt pull` give this repository, so all three decide alike.
    let repo_id = args
        .repo_id
        .clone()
        .unwrap_or_else(|| super::hook::repo_id(objects.repository()));

    let mut updates = Vec::new();
    let mut errors = 0usize;
    if args.all_tags {
        let platform = objects
            .repository()
            .references()
            .context("listing references")?;
        let mut tags: Vec<(String, gix::ObjectId)> = Vec::new();
        for r in platform.prefixed("refs/tags/").context("listing tags")? {
            let r = r.map_err(|e| anyhow::anyhow!("reading a tag ref: {e}"))?;
            if let Some(id) = r.try_id() {
                tags.push((r.name().as_bstr().to_string(), id.detach()));
            }
        }
        tags.sort();
        for (name, id) in tags {
            updates.push(RefUpdate::new(&repo_id, name, zero_oid(), id, Source::Cli));
        }
    } else {
        for spec in &args.refs {
            match parse_spec(&objects, spec) {
                Ok((name, old, new)) => {
                    updates.push(RefUpdate::new(&repo_id, name, old, new, Source::Cli));
                }
                Err(e) => {
                    eprintln!("gt: error: {spec}: {e:#}");
                    errors += 1;
                }
            }
        }
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut rejected = 0usize;
    for u in &updates {
        let v = evaluator.decide(u, &objects);
        if !v.is_allowed() {
            rejected += 1;
        }
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&v)?)?;
        } else {
            write_human(&mut out, &v, evaluator.keyring())?;
        }
    }
    if !args.json && updates.len() > 1 {
        writeln!(
            out,
            "{} ref(s): {} allowed, {rejected} rejected",
            updates.len(),
            updates.len() - rejected
        )?;
    }
    out.flush()?;
    Ok(if errors > 0 {
        Code::Error
    } else if rejected > 0 {
        Code::Denied
    } else {
        Code::Ok
    })
}

/// `REF` or `REF:NEW_OID` to (full ref name, old, new).
fn parse_spec(
    objects: &TagSource,
    spec: &str,
) -> anyhow::Result<(String, gix::ObjectId, gix::ObjectId)> {
    let (name, new) = match spec.rsplit_once(':') {
        Some((n, oid)) if oid.len() == 40 => {
            let oid = gix::ObjectId::from_hex(oid.as_bytes())
                .with_context(|| format!("{oid:?} is not a full object id"))?;
            (n, Some(oid))
        }
        _ => (spec, None),
    };
    match new {
        None => {
            let (oid, full) = objects.resolve(name)?;
            let full = full.with_context(|| {
                format!("{name:?} is an object id; give a ref name (REF or REF:NEW_OID)")
            })?;
            Ok((full, zero_oid(), oid))
        }
        Some(new) => {
            let (old, full) = match objects.resolve(name) {
                Ok((oid, Some(full))) => (oid, full),
                _ if name.starts_with("refs/") => (zero_oid(), name.to_owned()),
                _ => bail!(
                    "{name:?} does not exist; give the full ref name (refs/tags/{name}) to decide creating it"
                ),
            };
            Ok((full, old, new))
        }
    }
}

fn write_human(
    out: &mut impl Write,
    v: &Verdict,
    keyring: &verifier::Keyring,
) -> anyhow::Result<()> {
    let e = v.explain(keyring);
    writeln!(out, "{:<9} {}", e.word, e.summary)?;
    for d in &e.details {
        writeln!(out, "          {d}")?;
    }
    Ok(())
}

fn load_keyring(paths: &[PathBuf]) -> anyhow::Result<verifier::Keyring> {
    let mut keyring = verifier::Keyring::new();
    for k in paths {
        keyring
            .add_path(k)
            .with_context(|| format!("loading keyring {}", k.display()))?;
    }
    Ok(keyring)
}

fn lint(args: LintArgs) -> anyhow::Result<Code> {
    let now = time_or_now(args.at.as_deref())?;
    let keyring = std::sync::Arc::new(load_keyring(&args.keyrings)?);
    let placement = if args.repository {
        policy::Placement::Repository
    } else {
        policy::Placement::Local
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut errors = 0usize;
    for path in &args.files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{name} is not UTF-8 (byte {})",
                e.utf8_error().valid_up_to()
            )
        })?;
        for m in policy::lint(&name, &text, keyring.clone(), now, placement) {
            if m.severity == policy::Severity::Error {
                errors += 1;
            }
            if args.json {
                writeln!(out, "{}", serde_json::to_string(&m)?)?;
            } else {
                writeln!(out, "{m}")?;
            }
        }
    }
    Ok(if errors > 0 { Code::Denied } else { Code::Ok })
}

fn sign(args: SignArgs) -> anyhow::Result<Code> {
    use sequoia_openpgp::parse::Parse;
    let now = time_or_now(args.at.as_deref())?;
    let name = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {name}"))?;
    let cert;
    let key = match &args.key {
        Some(path) => {
            cert = sequoia_openpgp::Cert::from_file(path)
                .with_context(|| format!("reading secret key {}", path.display()))?;
            policy::SigningKey::Cert(&cert)
        }
        None => policy::SigningKey::Gpg {
            program: &args.gpg_program,
            local_user: args.local_user.as_deref(),
            faked_time: args.at.is_some().then_some(now),
        },
    };
    let signed = policy::sign_file(&name, &text, &key, now)?;
    let target = args.output.as_deref().unwrap_or(&args.file);
    write_atomically(target, signed.text.as_bytes())?;
    for o in &signed.signed {
        eprintln!("signed {o}");
    }
    for (o, why) in &signed.skipped {
        eprintln!("left unsigned {o}: {why}");
    }
    Ok(Code::Ok)
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a policy.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| anyhow::anyhow!("replacing {}: {}", path.display(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_both_spellings() {
        let t = |s| {
            parse_time(s)
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(t("1780272000"), 1_780_272_000);
        assert_eq!(t("@1780272000"), 1_780_272_000);
        assert_eq!(t("2026-06-01"), 1_780_272_000);
        assert_eq!(t("2026-06-01T00:00:00Z"), 1_780_272_000);
        assert_eq!(t("1970-01-01T00:00:01Z"), 1);
        assert_eq!(t("2000-03-01T12:30:00Z"), 951_913_800);
        assert!(parse_time("2026-13-01").is_err());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("18446744073709551615").is_err());
        assert_eq!(parse_unix_seconds("2026-06-01").unwrap(), 1_780_272_000);
        assert_eq!(parse_unix_seconds("@1780272000").unwrap(), 1_780_272_000);
    }
}
