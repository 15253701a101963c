#!/usr/bin/env bash
# Regenerate the OpenPGP fixture keys in this directory with gpg, in a throwaway GNUPGHOME.
#
# The keys have NO security value: their secret halves are committed next to them, without
# passphrases. They exist so that tests are deterministic (generated once, committed).
#
# Every key is created at a faked, fixed time (gpg --faked-system-time) so that signatures
# dated years before the test run still postdate the keys. None expires during tests except
# `expired`, whose expiry is deliberately in the past.
#
# Output per key NAME: NAME.pub.asc (armored certificate), NAME.sec.asc (armored secret key),
# and for `revoked` also revoked.rev.asc (its revocation certificate) and revoked.pub.asc holds
# the certificate *with* the revocation applied, while revoked.sec.asc is the unrevoked key (gpg
# refuses to sign with a revoked key, so tests sign first and verify against the revoked cert).
# FINGERPRINTS lists "NAME FINGERPRINT" lines.
set -euo pipefail
cd "$(dirname "$0")"

GNUPGHOME=$(mktemp -d)
export GNUPGHOME
trap 'gpgconf --kill all >/dev/null 2>&1 || true; rm -rf "$GNUPGHOME"' EXIT

CREATED=20200101T000000   # 2020-01-01T00:00:00Z, for every key but `sha1-selfsig`
g() { gpg --batch --quiet --pinentry-mode loopback --passphrase '' "$@"; }

# name, uid, algo, usage, expiry, [faked creation time], [extra gpg options...]
gen() {
    local name=$1 uid=$2 algo=$3 usage=$4 expire=$5 created=${6:-$CREATED}
    shift 6 || shift $#
    g --faked-system-time "${created}!" "$@" --quick-gen-key "$uid" "$algo" "$usage" "$expire"
}
fpr_of() { gpg --batch --with-colons --list-keys "$1" | awk -F: '/^fpr/ {print $10; exit}'; }
export_key() {
    local name=$1 fpr=$2
    g --armor --export "$fpr" > "$name.pub.asc"
    g --armor --export-secret-keys "$fpr" > "$name.sec.asc"
    echo "$name $fpr" >> FINGERPRINTS
}

rm -f ./*.asc FINGERPRINTS

gen ed25519 "gt test Ed25519 <ed25519@testkeys.invalid>" ed25519 sign never "$CREATED"
export_key ed25519 "$(fpr_of ed25519@testkeys.invalid)"

gen rsa2048 "gt test RSA-2048 <rsa2048@testkeys.invalid>" rsa2048 sign never "$CREATED"
export_key rsa2048 "$(fpr_of rsa2048@testkeys.invalid)"

gen rsa4096 "gt test RSA-4096 <rsa4096@testkeys.invalid>" rsa4096 sign never "$CREATED"
export_key rsa4096 "$(fpr_of rsa4096@testkeys.invalid)"

# A certification-only primary with a separate signing subkey: the signer principal must be the
# primary's fingerprint although the subkey signs.
gen subkey "gt test signing subkey <subkey@testkeys.invalid>" ed25519 cert never "$CREATED"
SUB=$(fpr_of subkey@testkeys.invalid)
g --faked-system-time "${CREATED}!" --quick-add-key "$SUB" ed25519 sign never
export_key subkey "$SUB"

# Expired: created 2020-01-01, expired 2022-01-01.
gen expired "gt test expired <expired@testkeys.invalid>" ed25519 sign 2y "$CREATED"
export_key expired "$(fpr_of expired@testkeys.invalid)"

# Revoked: a hard revocation (reason "no reason specified"), from gpg's own revocation cert.
gen revoked "gt test revoked <revoked@testkeys.invalid>" ed25519 sign never "$CREATED"
REV=$(fpr_of revoked@testkeys.invalid)
export_key revoked "$REV"
sed 's/^:-----BEGIN/-----BEGIN/' "$GNUPGHOME/openpgp-revocs.d/$REV.rev" \
    | sed -n '/-----BEGIN PGP PUBLIC KEY BLOCK-----/,/-----END PGP PUBLIC KEY BLOCK-----/p' \
    > revoked.rev.asc
g --import revoked.rev.asc
g --armor --export "$REV" > revoked.pub.asc

# SHA-1 self-signatures made in 2024, after sequoia's SHA-1 cutoff (2023-02-01): refused.
gen sha1-selfsig "gt test SHA-1 self-signature <sha1@testkeys.invalid>" rsa2048 sign never \
    20240101T000000 --cert-digest-algo SHA1
export_key sha1-selfsig "$(fpr_of sha1@testkeys.invalid)"

# A 1024-bit RSA key: too short for StandardPolicy.
gen rsa1024 "gt test RSA-1024 <rsa1024@testkeys.invalid>" rsa1024 sign never "$CREATED"
export_key rsa1024 "$(fpr_of rsa1024@testkeys.invalid)"

cat FINGERPRINTS
