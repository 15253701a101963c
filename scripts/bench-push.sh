#!/usr/bin/env bash
# Benchmark: a push of N (default 10,000) signed tags through gt's pre-receive hook.
#
#   scripts/bench-push.sh [N]            both backends (production crypto-openssl, default crypto-rust)
#   GT_BENCH_BACKENDS=openssl scripts/bench-push.sh
#
# For each backend it builds `gt` in release mode, then on loopback-free local repositories:
#   1. generates N tags, each with its own real Ed25519 signature (tests/bench/gen_signed_tags.rs,
#      test key with no security value), on one commit;
#   2. times `git push` of all N tags into a fresh bare repository WITHOUT a hook (transfer
#      baseline) and into one WITH `gt hook install`ed (policy: tags need the Ed25519 test key),
#      best of 3 each;
#   3. times `gt hook pre-receive` alone on the N update lines (objects already in the store,
#      best of 3 runs): the decision time the goal is about (< 3 s for 10,000 tags with
#      crypto-openssl). The hook decides big pushes on all cores (up to 8 threads).
# Decisions are pinned at 2026-06-01 (GT_AT) so the result does not depend on the clock.
unset RUST_BACKTRACE  # sequoia builds errors on normal paths; a captured backtrace each costs ~3%
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

# git runs with a throwaway HOME from here on (no personal config); cargo is done.
export HOME=$WORK/home
mkdir -p "$HOME"
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

# Warm-up push (page cache, pack reuse), not measured.
git init -q --bare "$WORK/warm.git"
git -C "$CLIENT" push -q "$WORK/warm.git" 'refs/tags/*:refs/tags/*'
rm -rf "$WORK/warm.git"
# push_best REPO [GT]: best of 3 pushes of every tag into a fresh bare REPO (with GT's hook).
push_best() {
    local repo=$1 gt=${2:-} best= t t0
    for _ in 1 2 3; do
        rm -rf "$repo"
        git init -q --bare "$repo"
        if [ -n "$gt" ]; then
            "$gt" hook install --repo "$repo" --policy "$WORK/policy.kn" --keyring "$KEYRING" >/dev/null
        fi
        t0=$(now)
        git -C "$CLIENT" push -q "$repo" 'refs/tags/*:refs/tags/*'
        t=$(secs "$t0" "$(now)")
        best=$(awk -v a="$best" -v b="$t" 'BEGIN { print (a == "" || b < a) ? b : a }')
    done
    echo "$best"
}
BASE=$WORK/base.git
base=$(push_best "$BASE")

printf '\n%-8s %8s %14s %14s %16s %12s\n' backend tags "push no hook" "push + hook" "hook decisions" "per tag"
for b in $BACKENDS; do
    GT=$WORK/gt-$b
    SERVER=$WORK/server-$b.git
    push=$(push_best "$SERVER" "$GT")
    landed=$(git -C "$SERVER" for-each-ref refs/tags | wc -l)
    [ "$landed" -eq "$N" ] || { echo "only $landed of $N tags landed" >&2; exit 1; }
    # The hook alone, on the same N updates, objects already in the (hook-less) base store.
    # Best of 3: the machine is shared, the minimum is the least disturbed run.
    hook=
    for _ in 1 2 3; do
        t0=$(now)
        GIT_DIR=$BASE "$GT" hook pre-receive --policy "$WORK/policy.kn" --keyring "$KEYRING" \
            < "$WORK/updates.txt"
        t=$(secs "$t0" "$(now)")
        hook=$(awk -v a="$hook" -v b="$t" 'BEGIN { print (a == "" || b < a) ? b : a }')
    done
    per=$(awk -v h="$hook" -v n="$N" 'BEGIN { printf "%.0f us", h / n * 1e6 }')
    printf '%-8s %8d %13ss %13ss %15ss %12s\n' "$b" "$N" "$base" "$push" "$hook" "$per"
done
echo
echo "cores: $(nproc), load average: $(cut -d' ' -f1-3 /proc/loadavg); every figure is the best of 3 runs"
echo "goal: $N-tag push decided in < 3 s with crypto-openssl (column 'hook decisions')"
