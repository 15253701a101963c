#!/usr/bin/env bash
# gt's main demo: build the bundled example repository (real git tags, signed by real gpg with
# the committed test keys) and decide every tag in it with the example distribution policy.
#
#   scripts/demo.sh [EXAMPLE_DIR]      (default: target/example-repo)
#
# Needs only Rust (cargo), git and gpg. The decision time is pinned (--at) so the output is the
# same on every machine. Expect 4 tags propagated and 4 rejected, each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLE=${1:-target/example-repo}
scripts/setup-system-packages
cargo build --release --quiet --bin gt
GT=${CARGO_TARGET_DIR:-target}/release/gt  # where cargo put it
scripts/make-example-repo.sh "$EXAMPLE" >/dev/null
echo "\$ gt policy check --repo $EXAMPLE --policy policies/distro.kn --keyring testkeys/{ed25519,rsa2048,rsa4096,subkey}.pub.asc --at 2026-06-01 --all-tags"
status=0
"$GT" policy check --repo "$EXAMPLE" --policy policies/distro.kn \
    --keyring testkeys/ed25519.pub.asc --keyring testkeys/rsa2048.pub.asc \
    --keyring testkeys/rsa4096.pub.asc --keyring testkeys/subkey.pub.asc \
    --at 2026-06-01 --all-tags || status=$?
if [ "$status" -eq 1 ]; then
    echo "(exit status 1: some tags were rejected, as the example intends)"
    exit 0
fi
exit "$status"
