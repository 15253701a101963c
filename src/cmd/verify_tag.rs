//! `gt verify-tag`: who signed these tags, and does each count?
//!
//! One result per tag, in the order given; `--json` prints one JSON object per line. The
//! verdict rules are the verifier crate's (see its crate docs): a tag passes when every level of
//! its chain has at least one good signature and no signature is bad or malformed.
//! Exit status: 0 every tag passed, 1 some tag failed verification, 2 usage or I/O error
//! (a missing ref, an unreadable file or keyring).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use verifier::{Keyring, SelfSignatureCheck, Status, TagObject, TagReport, TagSource, Verifier};

use crate::exit::Code;

/// `gt verify-tag [--repo DIR] --keyring FILE... [--json] (REF... | --object FILE...)`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The repository to read tags from (default: the one containing the current directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    /// An OpenPGP keyring: an armored or binary file with any number of certificates, or a
    /// directory of such files. Repeat for several.
    #[arg(long = "keyring", value_name = "FILE")]
    pub keyrings: Vec<PathBuf>,

    /// Also use the public keys of your GnuPG keyring (via `gpg --export`; honours GNUPGHOME).
    #[arg(long)]
    pub gpg_keyring: bool,

    /// Print one JSON object per tag, one per line.
    #[arg(long)]
    pub json: bool,

    /// Judge as of this time instead of now: unix seconds (`1780272000`, `@1780272000`) or an
    /// RFC 3339 UTC date (`2026-06-01`, `2026-06-01T00:00:00Z`), as `gt policy check --at`.
    /// `--time` is an older name for it.
    #[arg(long = "at", alias = "time", value_name = "TIME", env = "GT_AT",
          value_parser = super::policy::parse_unix_seconds)]
    pub time: Option<u64>,

    /// Verify raw tag objects (as `git cat-file tag` prints them) read from files instead of
    /// refs. The tag's target need not exist anywhere.
    #[arg(long = "object", value_name = "FILE", conflicts_with = "refs")]
    pub objects: Vec<PathBuf>,

    /// Tags to verify: ref names (`v1.0`, `refs/tags/v1.0`) or full object ids.
    #[arg(value_name = "REF")]
    pub refs: Vec<String>,
}

/// Run `gt verify-tag`.
pub fn run(args: Args) -> anyhow::Result<Code> {
    if args.keyrings.is_empty() && !args.gpg_keyring {
        bail!("give at least one --keyring FILE (or --gpg-keyring)");
    }
    if args.refs.is_empty() && args.objects.is_empty() {
        bail!("give the tags to verify: REF... or --object FILE...");
    }
    // The repository is opened while the keyring loads (two independent start-up costs of a
    // few hundred microseconds each), each on a thread of its own while this one waits: a
    // process's first new thread is queued on its parent's CPU, so one started beside work done
    // here would mostly run after it (keynote::par says more; with `par_jobs` below doing the
    // same, 70 git.git tags went from 12.52 to 9.46 ms, paired). Keyring errors come first.
    let repo_dir = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    let (keyring, opened) = std::thread::scope(|scope| {
        let opened = scope.spawn(|| TagSource::from_git_env(&repo_dir));
        let keyring = scope.spawn(|| load_keyring(&args));
        let keyring = keyring
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        let opened = opened
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (keyring, opened)
    });
    let keyring = keyring?;
    for w in keyring.warnings() {
        tracing::warn!("{w}");
    }
    let time = match args.time {
        Some(t) => UNIX_EPOCH + Duration::from_secs(t),
        None => SystemTime::now(),
    };
    let verifier = Verifier::new(&keyring, time);

    // A repository is needed for refs; for --object files it is only used to follow chains.
    let source = if args.refs.is_empty() {
        opened.ok()
    } else {
        Some(opened.with_context(|| format!("opening repository {}", repo_dir.display()))?)
    };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut worst = Code::Ok;
    let inputs: Vec<(String, Input)> = if args.refs.is_empty() {
        args.objects
            .iter()
            .map(|p| (p.display().to_string(), Input::File(p.clone())))
            .collect()
    } else {
        args.refs
            .iter()
            .map(|r| (r.clone(), Input::Ref(r.clone())))
            .collect()
    };
    // 1. Read and parse every tag object, and 2. verify them, on every core: the public-key
    //    operations dominate, and the keyring, the policy and sequoia's signature cache are
    //    shared safely; each thread reads through its own handle on the repository.
    let (objects, mut reports) = verify_parallel(&verifier, source.as_ref(), inputs);
    // 3. Follow tag chains (rare) through the repository, sequentially.
    for ((_, bytes), report) in objects.iter().zip(reports.iter_mut()) {
        if let (Ok(bytes), Some(r)) = (bytes, report.as_mut())
            && r.chain_error.is_some()
            && source.is_some()
        {
            *r = verifier.verify_bytes_in(source.as_ref(), bytes);
        }
    }
    for ((label, bytes), report) in objects.into_iter().zip(reports) {
        let report = match (bytes, report) {
            (Ok(_), Some(r)) => Ok(r),
            (Err(e), _) => Err(e),
            (Ok(_), None) => Err("not verified".to_owned()),
        };
        match report {
            Ok(report) => {
                if !report.is_verified() && worst == Code::Ok {
                    worst = Code::Denied;
                }
                if args.json {
                    writeln!(out, "{}", json(&label, &report))?;
                } else {
                    human(&mut out, &label, &report)?;
                }
            }
            Err(e) => {
                worst = Code::Error;
                if args.json {
                    let v = serde_json::json!({ "tag": label, "error": e });
                    writeln!(out, "{v}")?;
                } else {
                    out.flush()?;
                    eprintln!("gt: {label}: {e}");
                }
            }
        }
    }
    out.flush()?;
    Ok(worst)
}

/// The keyring from every `--keyring` path and, with `--gpg-keyring`, the GnuPG keyring.
fn load_keyring(args: &Args) -> anyhow::Result<Keyring> {
    let mut keyring = Keyring::new();
    for k in &args.keyrings {
        keyring
            .add_path(k)
            .with_context(|| format!("loading keyring {}", k.display()))?;
    }
    if args.gpg_keyring {
        keyring.add_gpg(None).context("loading the GnuPG keyring")?;
    }
    Ok(keyring)
}

/// Read every input (in the worker threads, each with its own clone of `source`) and verify
/// it with `verifier.verify_bytes`, on up to `available_parallelism` threads; the bytes read
/// (or why not) and the reports, in input order.
///
/// Two rounds of jobs taken from a shared counter (dynamic, so cheap SHA-1 refusals and RSA-4096
/// verifications balance across the threads): the threads first read and parse every object;
/// then they run the self-signature checks of the certificates the tags need (see
/// `Verifier::self_signature_checks`: one job per certificate component, so the threads split
/// them instead of both checking the same certificate when they first validate a signature
/// with it), and verify the tags, one job each, the most expensive first (a tag waits for the
/// checks only where it needs them: see `par_jobs`).
fn verify_parallel(
    verifier: &Verifier<'_>,
    source: Option<&TagSource>,
    inputs: Vec<(String, Input)>,
) -> (Vec<Object>, Vec<Option<TagReport>>) {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 16)
        .min(inputs.len().max(1));
    let sources: Vec<Option<TagSource>> = (0..threads).map(|_| source.cloned()).collect();
    let identity: Vec<usize> = (0..inputs.len()).collect();
    let loaded = par_jobs(sources, &[], &Latch::new(0), &identity, |src, i| {
        let (_, input) = inputs.get(i)?;
        let bytes = match input {
            Input::File(path) => {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            Input::Ref(spec) => match src {
                Some(src) => src
                    .resolve(spec)
                    .and_then(|(oid, _)| src.read_tag(oid))
                    .map_err(|e| e.to_string()),
                None => Err("no repository".to_owned()),
            },
        };
        let parsed = bytes.as_ref().ok().map(|b| TagObject::parse(b));
        // Scheduling hint for the verification round; it also parses (on this thread) the
        // certificates the tag's signatures name.
        let cost = match &parsed {
            Some(Ok(tag)) => verifier.public_key_operations(tag),
            _ => 0,
        };
        Some((bytes, parsed, cost))
    });
    let mut costs = Vec::with_capacity(inputs.len());
    let (objects, parsed): (Vec<_>, Vec<_>) = inputs
        .into_iter()
        .zip(loaded)
        .map(|((label, _), loaded)| {
            let (bytes, parsed, cost) =
                loaded.unwrap_or_else(|| (Err("not read".to_owned()), None, 0));
            costs.push(cost);
            ((label, bytes), parsed)
        })
        .unzip();
    let checks = if threads > 1 {
        verifier.self_signature_checks(parsed.iter().filter_map(|p| p.as_ref()?.as_ref().ok()))
    } else {
        Vec::new()
    };
    // The tags with the most public-key operations first, so that the cheap ones (unknown
    // keys, refused hashes) fill the gaps at the end instead of leaving a thread idle.
    let mut order: Vec<usize> = (0..objects.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(costs.get(i).copied().unwrap_or(0)));
    let checked = Latch::new(checks.len());
    let reports = par_jobs(vec![(); threads], &checks, &checked, &order, |(), i| {
        let (_, bytes) = objects.get(i)?;
        let bytes = bytes.as_ref().ok()?;
        let tag = parsed.get(i)?.as_ref()?;
        Some(verifier.verify_parsed_gated(bytes, tag.as_ref(), &|| checked.wait()))
    });
    (objects, reports)
}

/// A count of outstanding jobs that threads can wait on until it reaches zero.
struct Latch {
    left: Mutex<usize>,
    zero: Condvar,
}

impl Latch {
    fn new(n: usize) -> Latch {
        Latch {
            left: Mutex::new(n),
            zero: Condvar::new(),
        }
    }

    fn count_down(&self) {
        let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.zero.notify_all();
        }
    }

    fn wait(&self) {
        let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        while *left > 0 {
            left = self.zero.wait(left).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Counts a [`Latch`] down when dropped.
struct CountDownOnDrop<'a>(&'a Latch);

impl Drop for CountDownOnDrop<'_> {
    fn drop(&mut self) {
        self.0.count_down();
    }
}

/// `f(state, i)` for every `i` in `order` (indices `0..order.len()`), on one thread per element
/// of `states` (each thread owns one), the threads taking jobs from a shared counter; results
/// in index order. With more than one state the calling thread only waits: the first thread
/// it starts is queued on its own CPU, and the threads wait until all are started
/// (keynote::par says more).
///
/// The threads first run every one of `prelude` (split between them, counting `checked` down
/// as each finishes), then take the jobs. A job that needs the prelude's results waits for
/// `checked` itself, at the point it needs them (`Verifier::verify_parsed_gated`): a tag
/// validated while another thread is still checking that certificate would check the same
/// self-signatures again (sequoia does not lock a signature while verifying it), and waiting
/// there rather than before the job lets the thread do the tag signature's own public-key
/// operation meanwhile.
fn par_jobs<S: Send, T: Send>(
    states: Vec<S>,
    prelude: &[SelfSignatureCheck<'_>],
    checked: &Latch,
    order: &[usize],
    f: impl Fn(&mut S, usize) -> T + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let (next, f) = (&next, &f);
    let worker = move |mut state: S| {
        let mut done = Vec::new();
        loop {
            let job = next.fetch_add(1, Ordering::Relaxed);
            if let Some(check) = prelude.get(job) {
                // Counted down even if the check panics: the other threads must not wait
                // forever for it (the panic is re-raised at the join).
                let _done = CountDownOnDrop(checked);
                check.run();
                continue;
            }
            let Some(&i) = order.get(job - prelude.len()) else {
                break;
            };
            done.push((i, f(&mut state, i)));
        }
        done
    };
    let gate = keynote::par::Gate::default();
    let mut all: Vec<(usize, T)> = std::thread::scope(|scope| {
        if states.len() <= 1 {
            return states.into_iter().next().map(worker).unwrap_or_default();
        }
        let handles = gate.spawn_all(scope, states.into_iter().map(|s| move || worker(s)));
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        all
    });
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// An input's label and its bytes, or why they could not be read.
type Object = (String, Result<Vec<u8>, String>);

enum Input {
    File(PathBuf),
    Ref(String),
}

/// Why a tag failed, in a few words; `None` if it passed.
fn failure(report: &TagReport) -> Option<String> {
    if report.is_verified() {
        return None;
    }
    for (i, level) in report.levels.iter().enumerate() {
        let at = if i == 0 {
            String::new()
        } else {
            format!(" (inner tag, level {})", i + 1)
        };
        if let Some(e) = &level.error {
            return Some(format!("malformed{at}: {e}"));
        }
        if let Some(s) = level.signatures.iter().find(|s| s.status.spoils_tag()) {
            return Some(format!(
                "{} signature{at} (block {}, packet {})",
                s.status, s.block, s.index
            ));
        }
        if level.signatures.is_empty() {
            return Some(format!("unsigned{at}"));
        }
        if !level.signatures.iter().any(|s| s.status == Status::Good) {
            return Some(format!("no good signature{at}"));
        }
    }
    report.chain_error.clone()
}

fn human(out: &mut impl Write, label: &str, report: &TagReport) -> std::io::Result<()> {
    let signers = report.signers();
    match failure(report) {
        None => writeln!(
            out,
            "{label}: OK, {} signer{}",
            signers.len(),
            if signers.len() == 1 { "" } else { "s" }
        )?,
        Some(why) => writeln!(out, "{label}: FAILED: {why}")?,
    }
    let chained = report.levels.len() > 1;
    for (i, level) in report.levels.iter().enumerate() {
        if chained {
            writeln!(
                out,
                "  level {}: tag {} ({})",
                i + 1,
                level.name.as_deref().unwrap_or("?"),
                level.oid
            )?;
        }
        for s in &level.signatures {
            let who = match (&s.signer, &s.issuer) {
                (Some(p), _) => p.to_string(),
                (None, Some(i)) => format!("issuer {i}"),
                (None, None) => "no issuer".to_owned(),
            };
            let when = s.created.map(format_time).unwrap_or_default();
            write!(out, "  {:<19} {who}  {when}", s.status.as_str())?;
            if s.status != Status::Good
                && let Some(d) = &s.detail
            {
                write!(out, "\n  {:<19} {d}", "")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

fn json(label: &str, report: &TagReport) -> serde_json::Value {
    let signatures: Vec<serde_json::Value> = report
        .signatures()
        .map(|(level, s)| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("level".into(), serde_json::json!(level));
            }
            v
        })
        .collect();
    // Levels without their signatures: those are listed once above, each with its level.
    let levels: Vec<serde_json::Value> = report
        .levels
        .iter()
        .map(|l| {
            let mut v = serde_json::to_value(l).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.remove("signatures");
            }
            v
        })
        .collect();
    let outer = report.levels.first();
    serde_json::json!({
        "tag": label,
        "oid": outer.map(|l| l.oid.to_string()),
        "name": outer.and_then(|l| l.name.clone()),
        "verified": report.is_verified(),
        "signers": report.signers(),
        "signatures": signatures,
        "levels": levels,
        "error": failure(report),
    })
}

/// `YYYY-MM-DD HH:MM:SS UTC` for Unix seconds (civil-from-days, proleptic Gregorian).
fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_time_is_utc_civil() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::format_time(1_735_689_600), "2025-01-01 00:00:00 UTC");
        assert_eq!(super::format_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
