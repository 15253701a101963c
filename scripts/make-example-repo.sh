#!/usr/bin/env bash
# Build gt's bundled example repository in DIR with real git and gpg and the committed test keys
# (testkeys/: no security value). Every signature is made at a faked time of 2025-01-01, so the
# result is the same on every machine except for the commit/tag object ids' dependence on
# nothing else: dates, names and keys are all fixed.
#
#   scripts/make-example-repo.sh DIR
#
# Tags (see policies/distro.kn, which the demo checks them against):
#   v1.0               one block, 1 signature  (ed25519)              -> under-signed for 2-of
#   v2.0               one block, 2 signatures (ed25519 + rsa2048)    -> 2-of, one block
#   v2.1               onion, 2 blocks         (rsa2048, then ed25519 over block 1)
#   v2.2               tag chain: rsa2048 signs a tag of a tag signed by subkey
#   v3.0-rc1           ed25519 + rsa4096 (a maintainer and the security team) -> 1 maintainer only
#   v0.9               annotated but unsigned
#   security/2025-001  rsa4096 alone (the security team)
#   v4.0-mislabelled   a tag object whose header says v4.0            -> name mismatch
set -euo pipefail
shopt -s inherit_errexit

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
DIR=$1
HERE=$(cd "$(dirname "$0")/.." && pwd)
KEYS=$HERE/testkeys
fpr() { awk -v n="$1" '$1 == n {print $2}' "$KEYS/FINGERPRINTS"; }

GNUPGHOME=$(mktemp -d)
export GNUPGHOME
trap 'gpgconf --kill all >/dev/null 2>&1 || true; rm -rf "$GNUPGHOME"' EXIT
for k in ed25519 rsa2048 rsa4096 subkey; do
    gpg --batch --quiet --import "$KEYS/$k.sec.asc" 2>/dev/null
done
SIGNED_AT=20250101T000000
g() { gpg --batch --yes --quiet --no-tty --faked-system-time "$SIGNED_AT!" --ignore-time-conflict "$@" 2>/dev/null; }

rm -rf "$DIR"
git init --quiet "$DIR"
cd "$DIR"
export GIT_AUTHOR_NAME="gt example" GIT_AUTHOR_EMAIL="example@gt.invalid"
export GIT_COMMITTER_NAME="gt example" GIT_COMMITTER_EMAIL="example@gt.invalid"
export GIT_AUTHOR_DATE="1735689600 +0000" GIT_COMMITTER_DATE="1735689600 +0000"
git config user.name "gt example"
git config user.email "example@gt.invalid"
echo "gt example repository: see scripts/make-example-repo.sh" > README
git add README
git commit --quiet -m "Initial commit"
COMMIT=$(git rev-parse HEAD)

# content NAME TARGET [TYPE]: an unsigned tag object's bytes.
content() {
    printf 'object %s\ntype %s\ntag %s\ntagger gt example <example@gt.invalid> 1735689600 +0000\n\nRelease %s\n' \
        "$2" "${3:-commit}" "$1" "$1"
}
# write FILE: store a tag object, print its id.
write() { git hash-object -t tag -w "$1"; }
# one_block NAME TARGET TYPE KEY...: all signatures in one armored block (gpg -u A -u B).
one_block() {
    local name=$1 target=$2 type=$3; shift 3
    local users=()
    for k in "$@"; do users+=(-u "$(fpr "$k")"); done
    content "$name" "$target" "$type" > "$TMP/t"
    g "${users[@]}" --armor --detach-sign --digest-algo SHA512 -o - "$TMP/t" >> "$TMP/t"
    write "$TMP/t"
}
# onion NAME TARGET KEY...: block i signs the content and blocks 1..i-1.
onion() {
    local name=$1 target=$2; shift 2
    content "$name" "$target" > "$TMP/t"
    for k in "$@"; do
        g -u "$(fpr "$k")" --armor --detach-sign --digest-algo SHA512 -o "$TMP/sig" "$TMP/t"
        cat "$TMP/sig" >> "$TMP/t"
    done
    write "$TMP/t"
}
TMP=$(mktemp -d)
trap 'gpgconf --kill all >/dev/null 2>&1 || true; rm -rf "$GNUPGHOME" "$TMP"' EXIT

git update-ref refs/tags/v1.0 "$(one_block v1.0 "$COMMIT" commit ed25519)"
git update-ref refs/tags/v2.0 "$(one_block v2.0 "$COMMIT" commit ed25519 rsa2048)"
git update-ref refs/tags/v2.1 "$(onion v2.1 "$COMMIT" rsa2048 ed25519)"
INNER=$(one_block v2.2 "$COMMIT" commit subkey)
git update-ref refs/tags/v2.2 "$(one_block v2.2 "$INNER" tag rsa2048)"
git update-ref refs/tags/v3.0-rc1 "$(one_block v3.0-rc1 "$COMMIT" commit ed25519 rsa4096)"
content v0.9 "$COMMIT" > "$TMP/t"
git update-ref refs/tags/v0.9 "$(write "$TMP/t")"
git update-ref refs/tags/security/2025-001 "$(one_block security/2025-001 "$COMMIT" commit rsa4096)"
git update-ref refs/tags/v4.0-mislabelled "$(one_block v4.0 "$COMMIT" commit ed25519 rsa2048)"

echo "example repository with $(git tag | wc -l) tags in $DIR"
