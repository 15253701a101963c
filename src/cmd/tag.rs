//! `gt tag sign`: add one more signature to a signed tag, in the one-block layout.
//!
//! The tag's content is left untouched, so every existing signature stays valid; the new
//! signature packet joins the existing ones in the single armored block (see the verifier's
//! `stack` module). That makes a new tag object; the ref is moved to it only if it still
//! points at the old one (compare-and-swap), so a concurrent co-signer's update is never lost.
//!
//! Exit status: 0 signed and moved; 2 usage or I/O error; 3 ([`Code::Conflict`]) when another
//! update moved or held the ref between reading the tag and moving it — the ref is untouched,
//! the new object (with this signature) is left unreferenced and named in the message, and
//! running `gt tag sign` again signs the tag as it now is.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context, bail};
use sequoia_openpgp as openpgp;

use openpgp::Cert;
use openpgp::packet::Signature;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::types::SignatureType;
use verifier::repo::RepoError;
use verifier::{TagObject, TagSource};

use crate::exit::Code;

/// `gt tag SUBCOMMAND`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do with the tag.
    #[command(subcommand)]
    pub command: TagCommand,
}

/// Tag subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TagCommand {
    /// Add your signature to an existing tag (one-block layout) and move its ref.
    ///
    /// The ref is moved only if it still points at the tag that was signed. Exit status 3 means
    /// someone else moved it meanwhile (a concurrent co-signer): nothing changed; run again.
    Sign(SignArgs),
}

/// `gt tag sign [--repo DIR] (--key FILE | --gpg [--local-user ID]) REF`
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The repository (default: the one containing the current directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    /// Sign with the secret key in this file (armored or binary, not passphrase-protected).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "gpg",
        required_unless_present = "gpg"
    )]
    pub key: Option<PathBuf>,

    /// Sign with your own GnuPG key, through gpg (`gpg --detach-sign`).
    #[arg(long)]
    pub gpg: bool,

    /// With --gpg: the key to sign with (gpg's --local-user); default: gpg's default key.
    #[arg(long, short = 'u', value_name = "KEYID", requires = "gpg")]
    pub local_user: Option<String>,

    /// The tag's ref (`v1.0` or `refs/tags/v1.0`).
    #[arg(value_name = "REF")]
    pub reference: String,
}

/// Run `gt tag`.
pub fn run(args: Args) -> anyhow::Result<Code> {
    match args.command {
        TagCommand::Sign(a) => sign(a),
    }
}

fn sign(args: SignArgs) -> anyhow::Result<Code> {
    let dir = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    let source =
        TagSource::open(&dir).with_context(|| format!("opening repository {}", dir.display()))?;
    let (old, name) = source.resolve(&args.reference)?;
    let Some(name) = name else {
        bail!(
            "{} is an object id; give the tag's ref name",
            args.reference
        );
    };
    let bytes = source.read_tag(old)?;
    let tag = TagObject::parse(&bytes).with_context(|| format!("{name} ({old})"))?;
    let sig = match &args.key {
        Some(path) => sign_with_file(path, tag.content())?,
        None => sign_with_gpg(args.local_user.as_deref(), tag.content())?,
    };
    let new_bytes = verifier::stack::add_signature(&tag, &sig)?;
    let new = source.write_tag(&new_bytes)?;
    match source.move_ref(&name, old, new, "gt tag sign: add a signature") {
        Ok(()) => {}
        Err(e @ (RepoError::RefMoved { .. } | RepoError::RefLocked { .. })) => {
            // Lost a race with another update (e.g. a concurrent co-signer): say so, and where
            // this signature is, rather than overwrite theirs or drop ours silently.
            eprintln!(
                "gt: {e}\n\
                 gt: your signature was not added to {name}: it is in tag object {new}, which no \
                 ref points at; run `gt tag sign` again to sign the tag as it is now"
            );
            return Ok(Code::Conflict);
        }
        Err(e) => return Err(e.into()),
    }
    println!(
        "{name}: {old} -> {new} ({} signatures)",
        tag.packets().len() + 1
    );
    Ok(Code::Ok)
}

/// A binary signature over `content` by the first secret key in `path` that is alive, unrevoked
/// and signing-capable now.
fn sign_with_file(path: &std::path::Path, content: &[u8]) -> anyhow::Result<Signature> {
    let cert = Cert::from_file(path).with_context(|| format!("reading key {}", path.display()))?;
    let policy = StandardPolicy::new();
    let now = SystemTime::now();
    let key = cert
        .keys()
        .with_policy(&policy, now)
        .secret()
        .alive()
        .revoked(false)
        .for_signing()
        .next()
        .with_context(|| {
            format!(
                "{}: no secret signing key that is valid now (expired, revoked, or public only)",
                path.display()
            )
        })?;
    if !key.key().has_unencrypted_secret() {
        bail!(
            "{}: the secret key is passphrase-protected; use --gpg",
            path.display()
        );
    }
    let mut pair = key.key().clone().into_keypair()?;
    SignatureBuilder::new(SignatureType::Binary).sign_message(&mut pair, content)
}

/// A detached signature over `content` made by gpg, as git makes tag signatures.
fn sign_with_gpg(local_user: Option<&str>, content: &[u8]) -> anyhow::Result<Signature> {
    let mut cmd = Command::new("gpg");
    cmd.args(["--detach-sign", "--armor"]);
    if let Some(u) = local_user {
        cmd.args(["--local-user", u]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running gpg")?;
    child
        .stdin
        .take()
        .context("gpg stdin")?
        .write_all(content)
        .context("writing to gpg")?;
    let out = child.wait_with_output().context("waiting for gpg")?;
    if !out.status.success() {
        bail!("gpg --detach-sign failed ({})", out.status);
    }
    Ok(verifier::stack::parse_detached(&out.stdout)?)
}
