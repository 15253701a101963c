#!/usr/bin/env bash
# Whole-process benchmark of policy decisions: one `gt policy check --all-tags` over the 70 real
# git.git tags (verifier/tests/fixtures/git.git-tags) with a policy requiring Junio C Hamano's
# signature, against `git verify-tag` run once per tag over the same tags, printed as a ratio.
#
#   scripts/bench-policy.sh [GT_BINARY]     (default: target/release/gt, built if missing)
#   RUNS=5 scripts/bench-policy.sh
#   BACKEND=openssl scripts/bench-policy.sh  (the production backend: builds gt with
#                                            --no-default-features --features crypto-openssl
#                                            into target/openssl; needs libssl-dev, pkg-config,
#                                            libclang-dev: scripts/setup-system-packages)
#
# Each tag object is stored with `git hash-object -t tag -w --literally` (their targets are not
# in the repository; neither tool needs them) under refs/tags/<its tag header>. gpg gets Junio's
# key in a temporary GNUPGHOME. Times are medians of RUNS runs (git: 1 run, it is slow).
unset RUST_BACKTRACE  # sequoia builds errors on normal paths; a captured backtrace each costs ~3%
set -euo pipefail
[ -n "${EPOCHREALTIME:-}" ] || { echo "needs bash 5 (EPOCHREALTIME)" >&2; exit 2; }
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-5}
if [ "${BACKEND:-rust}" = openssl ]; then
    GT=${1:-$ROOT/target/openssl/release/gt}
    if [ ! -x "$GT" ]; then
        CARGO_TARGET_DIR=$ROOT/target/openssl cargo build --release -p gt \
            --no-default-features --features crypto-openssl >&2
    fi
else
    GT=${1:-$ROOT/target/release/gt}
    if [ ! -x "$GT" ]; then cargo build --release -p gt >&2; fi
fi

WORK=$(mktemp -d)
trap 'gpgconf --homedir "$WORK/gnupg" --kill all >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
export GNUPGHOME=$WORK/gnupg HOME=$WORK GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
mkdir -m 700 "$GNUPGHOME"
FIX=$ROOT/verifier/tests/fixtures/git.git-tags
JUNIO=openpgp:96E07AF25771955980DAD10020D04E5A713660A7

git init -q "$WORK/repo"
gpg --batch --quiet --import "$FIX/junio-gpg-pub.asc" 2>/dev/null
TAGS=()
for f in "$FIX"/*.tag; do
    name=$(sed -n 's/^tag //p;/^$/q' "$f" | head -1)
    oid=$(git -C "$WORK/repo" hash-object -t tag -w --literally "$f")
    git -C "$WORK/repo" update-ref "refs/tags/$name" "$oid"
    TAGS+=("$name")
done
cat > "$WORK/junio.kn" <<KN
KeyNote-Version: 2
Comment: git.git release tags signed by Junio C Hamano.
Authorizer: "POLICY"
Licensees: "$JUNIO"
Conditions: app_domain == "gittorrent" && ref_kind == "tag" && operation == "create" -> "accept";
KN
CHECK=("$GT" policy check --repo "$WORK/repo" --policy "$WORK/junio.kn"
       --keyring "$FIX/junio-gpg-pub.asc" --at 2026-06-01 --all-tags)

median() {
    local times=()
    for _ in $(seq "$RUNS"); do
        local s e
        # bash's own clock: no `date` process inside the measured interval.
        s=$EPOCHREALTIME; "$@" >/dev/null 2>&1 || true; e=$EPOCHREALTIME
        times+=("$(echo "$e - $s" | bc -l)")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
git_each() { for t in "${TAGS[@]}"; do git -C "$WORK/repo" verify-tag "$t" >/dev/null 2>&1 || true; done; }

"${CHECK[@]}" --json > "$WORK/out.json" || true
accepted=$(grep -c '"decision":"accept"' "$WORK/out.json" || true)
git_ok=0
for t in "${TAGS[@]}"; do
    if git -C "$WORK/repo" verify-tag "$t" >/dev/null 2>&1; then git_ok=$((git_ok + 1)); fi
done
echo "${#TAGS[@]} tags: gt accepts $accepted (Junio's current key), git verify-tag passes $git_ok"

gt_t=$(median "${CHECK[@]}")
git_t=$(RUNS=1 median git_each)
printf '%-40s %10s %10s %8s\n' "set" "gt (s)" "git (s)" "ratio"
printf '%-40s %10.3f %10.3f %7.1fx\n' "70 git.git tags, policy: Junio signs" "$gt_t" "$git_t" "$(echo "$git_t / $gt_t" | bc -l)"
printf 'gt per tag: %.0f us; git verify-tag per tag: %.1f ms\n' \
    "$(echo "$gt_t * 1000000 / ${#TAGS[@]}" | bc -l)" "$(echo "$git_t * 1000 / ${#TAGS[@]}" | bc -l)"
