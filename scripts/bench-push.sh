#!/usr/bin/env bash
# Benchmark: a push of N (default 10,000) signed tags through gt's pre-receive hook.
#
#   scripts/bench-push.sh [N]            both backends (production crypto-openssl, default crypto-rust)
#   GT_BENCH_BACKENDS=openssl scripts/bench-push.sh
#
# For each backend it builds `gt` in release mode, then on loopback-free local repositories:
#   1. generates N tags, each with its own real Ed25519 signature (tests/bench/gen_signed_tags.rs,
#      test key with no security value), on one commit;
#   2. times `git push` of all N tags into a bare repository WITHOUT a hook (transfer baseline)
#      and into one WITH `gt hook install`ed (policy: tags need the Ed25519 test key);
#   3. times `gt hook pre-receive` alone on the N update lines (objects already in the store):
#      the decision time the goal is about (< 3 s for 10,000 tags with crypto-openssl).
# Decisions are pinned at 2026-06-01 (GT_AT) so the result does not depend on the clock.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-10000}
BACKENDS=${GT_BENCH_BACKENDS:-"openssl rust"}
export GT_AT=1780272000
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@gt.invalid \
    GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@gt.invalid
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gt-bench-push.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export HOME=$WORK/home
mkdir -p "$HOME"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "building the tag generator (release)..." >&2
cargo build -q --release -p gt --example gen-signed-tags
GEN=$ROOT/target/release/examples/gen-signed-tags

for b in $BACKENDS; do
    echo "building gt with crypto-$b (release)..." >&2
    if [ "$b" = rust ]; then
        cargo build -q --release -p gt
    else
        cargo build -q --release -p gt --no-default-features --features "crypto-$b"
    fi
    cp target/release/gt "$WORK/gt-$b"
done

CLIENT=$WORK/client
git init -q -b main "$CLIENT"
echo bench > "$CLIENT/README"
git -C "$CLIENT" add README
git -C "$CLIENT" commit -q -m bench
t0=$(now)
"$GEN" "$CLIENT" "$N" ed25519 > "$WORK/refs.txt"
git -C "$CLIENT" update-ref --stdin < "$WORK/refs.txt"
git -C "$CLIENT" gc -q   # pack the loose tags, as a real repository would have them
echo "generated $N signed tags in $(secs "$t0" "$(now)") s" >&2

FPR=$(awk '$1 == "ed25519" { print $2 }' testkeys/FINGERPRINTS)
cat > "$WORK/policy.kn" <<POLICY
KeyNote-Version: 2
Comment: benchmark: release tags need the Ed25519 test key
Authorizer: "POLICY"
Licensees: "openpgp:$FPR"
Conditions: app_domain == "gittorrent" && ref_kind == "tag" -> "accept";
POLICY
KEYRING=$ROOT/testkeys/ed25519.pub.asc
ZERO=0000000000000000000000000000000000000000
awk -v z=$ZERO '{ print z, $3, $2 }' "$WORK/refs.txt" > "$WORK/updates.txt"

BASE=$WORK/base.git
git init -q --bare "$BASE"
t0=$(now)
git -C "$CLIENT" push -q "$BASE" 'refs/tags/*:refs/tags/*'
base=$(secs "$t0" "$(now)")

printf '\n%-8s %8s %14s %14s %16s %12s\n' backend tags "push no hook" "push + hook" "hook decisions" "per tag"
for b in $BACKENDS; do
    GT=$WORK/gt-$b
    SERVER=$WORK/server-$b.git
    git init -q --bare "$SERVER"
    "$GT" hook install --repo "$SERVER" --policy "$WORK/policy.kn" --keyring "$KEYRING" >/dev/null
    t0=$(now)
    git -C "$CLIENT" push -q "$SERVER" 'refs/tags/*:refs/tags/*'
    push=$(secs "$t0" "$(now)")
    landed=$(git -C "$SERVER" for-each-ref refs/tags | wc -l)
    [ "$landed" -eq "$N" ] || { echo "only $landed of $N tags landed" >&2; exit 1; }
    # The hook alone, on the same N updates, objects already in the (hook-less) base store.
    t0=$(now)
    GIT_DIR=$BASE "$GT" hook pre-receive --policy "$WORK/policy.kn" --keyring "$KEYRING" \
        < "$WORK/updates.txt"
    hook=$(secs "$t0" "$(now)")
    per=$(awk -v h="$hook" -v n="$N" 'BEGIN { printf "%.0f us", h / n * 1e6 }')
    printf '%-8s %8d %13ss %13ss %15ss %12s\n' "$b" "$N" "$base" "$push" "$hook" "$per"
done
echo
echo "goal: $N-tag push decided in < 3 s with crypto-openssl (column 'hook decisions')"
