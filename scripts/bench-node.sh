#!/usr/bin/env bash
# bench-node.sh: gt-node figures on one machine, everything on 127.0.0.1.
#
#   1. time for an accepted tag to reach every follower: 1 publisher + (NODES-1) followers,
#      each a `gt node run` process, on a `gt node testnet` DHT (followers poll every 5 s, the
#      shortest allowed interval, so the figure is dominated by the poll phase);
#   2. bytes a follower spends on a rejected ref (an under-signed tag on top of a 256 KiB
#      history), from `gt node status --json`;
#   3. resident memory (VmRSS / VmHWM from /proc) of one node following REPOS repositories.
#
# Usage: scripts/bench-node.sh            (NODES=20 REPOS=100 by default)
#        GT=target/debug/gt NODES=5 REPOS=10 scripts/bench-node.sh
# Builds nothing: run `cargo build --release -p gt` first (GT defaults to target/release/gt).
unset RUST_BACKTRACE  # sequoia builds errors on normal paths; a captured backtrace each costs ~3%
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GT=${GT:-$ROOT/target/release/gt}
NODES=${NODES:-20}
REPOS=${REPOS:-100}
DHT_NODES=${DHT_NODES:-8}
# Bound of every wait, seconds.
LIMIT=${LIMIT:-600}
POLICY=$ROOT/policies/single-maintainer.kn
KEYS=$ROOT/testkeys

[ -x "$GT" ] || { echo "no $GT: cargo build --release -p gt" >&2; exit 2; }
TMP=$(mktemp -d -t gt-bench-node.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    GNUPGHOME=$TMP/gnupg gpgconf --kill gpg-agent 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

export HOME=$TMP/home GNUPGHOME=$TMP/gnupg GIT_CONFIG_NOSYSTEM=1 LC_ALL=C
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@gt.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@gt.invalid
unset RUST_LOG GT_AT
mkdir -p "$HOME" "$GNUPGHOME" && chmod 700 "$GNUPGHOME"
gpg --batch --quiet --import "$KEYS/ed25519.sec.asc" "$KEYS/rsa2048.sec.asc" 2>/dev/null
FPR_GOOD=$(awk '$1=="ed25519"{print $2}' "$KEYS/FINGERPRINTS")
FPR_BAD=$(awk '$1=="rsa2048"{print $2}' "$KEYS/FINGERPRINTS")

now() { date +%s.%N; }
elapsed() { echo "$1 $2" | awk '{printf "%.2f", $2 - $1}'; }
# until CMD... succeeds, bounded by LIMIT seconds
until_ok() {
    local start=$SECONDS
    until "$@"; do
        if (( SECONDS - start > LIMIT )); then echo "timeout: $*" >&2; exit 1; fi
        sleep 0.1
    done
}
status() { "$GT" node status --json --data-dir "$TMP/$1"; }
running() { [ "$(status "$1" | jq -r .running)" = true ]; }

# --- the DHT ---------------------------------------------------------------------------------
"$GT" node testnet --nodes "$DHT_NODES" > "$TMP/testnet.out" 2>/dev/null &
PIDS+=($!)
until_ok grep -q '^ready$' "$TMP/testnet.out"
BOOT=()
while read -r _ addr; do BOOT+=(--bootstrap "$addr"); done < <(grep '^bootstrap ' "$TMP/testnet.out")

start_node() { # name
    "$GT" node run --data-dir "$TMP/$1" --policy "$POLICY" --keyring "$KEYS" \
        --poll-interval 5 "${BOOT[@]}" > /dev/null 2> "$TMP/$1.log" &
    PIDS+=($!)
    echo $! > "$TMP/$1.pid"
}

# A bare repository NAME.git holding a 256 KiB incompressible blob and the tags given as
# TAG=FPR arguments (git tag -s with that key).
make_repo() { # name tag=fpr...
    local name=$1; shift
    local work=$TMP/src/$name bare=$TMP/src/$name.git
    git init -q -b main "$work"
    head -c 262144 /dev/urandom > "$work/data.bin"
    git -C "$work" add . && git -C "$work" commit -q -m data
    git init -q --bare "$bare"
    for t in "$@"; do
        git -C "$work" -c user.signingkey="${t#*=}" tag -s "${t%%=*}" -m "${t%%=*}"
        git -C "$work" push -q "$bare" "refs/tags/${t%%=*}"
    done
}

# --- 1. propagation to NODES-1 followers ----------------------------------------------------
echo "== $NODES gt node processes on a $DHT_NODES-node loopback testnet"
start_node pub
for i in $(seq 2 "$NODES"); do start_node "f$i"; done
until_ok running pub
for i in $(seq 2 "$NODES"); do until_ok running "f$i"; done
make_repo proj
"$GT" node share --data-dir "$TMP/pub" "$TMP/src/proj.git" --name proj > /dev/null
PUB=$(status pub | jq -r .public_key)
for i in $(seq 2 "$NODES"); do "$GT" node follow --data-dir "$TMP/f$i" "$PUB/proj" > /dev/null; done

git -C "$TMP/src/proj" -c user.signingkey="$FPR_GOOD" tag -s v1 -m v1
git -C "$TMP/src/proj" push -q "$TMP/src/proj.git" refs/tags/v1
has_v1() { git --git-dir="$TMP/f$1/repos/$PUB/proj.git" rev-parse -q --verify refs/tags/v1 > /dev/null 2>&1; }
t0=$(now)
"$GT" node share --data-dir "$TMP/pub" "$TMP/src/proj.git" --name proj > /dev/null
t_pub=$(now)
first=""
pending=$(seq 2 "$NODES")
start=$SECONDS
while [ -n "$pending" ]; do
    left=""
    for i in $pending; do
        if has_v1 "$i"; then [ -n "$first" ] || first=$(now); else left="$left $i"; fi
    done
    pending=$left
    if (( SECONDS - start > LIMIT )); then echo "timeout: v1 missing on$pending" >&2; exit 1; fi
    [ -z "$pending" ] || sleep 0.05
done
t_all=$(now)
echo "accepted tag: publish took $(elapsed "$t0" "$t_pub") s; first follower after $(elapsed "$t0" "$first") s; all $((NODES - 1)) followers after $(elapsed "$t0" "$t_all") s"
ok=0
for i in $(seq 2 "$NODES"); do
    git --git-dir="$TMP/f$i/repos/$PUB/proj.git" fsck --strict --no-dangling 2>/dev/null && ok=$((ok + 1))
done
echo "fsck clean on $ok of $((NODES - 1)) followers"
f2_has_v1() { [ "$(status f2 | jq -r ".followed[] | select(.id == \"$PUB/proj\") | .refs[\"refs/tags/v1\"] // empty")" != "" ]; }
until_ok f2_has_v1
pack_in=$(status f2 | jq "[.followed[] | select(.id == \"$PUB/proj\") | .bytes_in] | add")
echo "bytes in for the accepted tag + its 256 KiB history on f2: $pack_in"

# --- 2. bytes per rejected ref --------------------------------------------------------------
make_repo rej "bad=$FPR_BAD"
"$GT" node share --data-dir "$TMP/pub" "$TMP/src/rej.git" --name rej > /dev/null
tag_size=$(git -C "$TMP/src/rej.git" cat-file -s refs/tags/bad)
for i in $(seq 2 "$NODES"); do "$GT" node follow --data-dir "$TMP/f$i" "$PUB/rej" > /dev/null; done
rejected() {
    [ "$(status "f$1" | jq -r ".followed[] | select(.id == \"$PUB/rej\") | .decisions[] | select(.name == \"refs/tags/bad\") | .outcome")" = reject ]
}
total=0
for i in $(seq 2 "$NODES"); do
    until_ok rejected "$i"
    b=$(status "f$i" | jq ".followed[] | select(.id == \"$PUB/rej\") | .bytes_in")
    total=$((total + b))
    refs=$(git --git-dir="$TMP/f$i/repos/$PUB/rej.git" for-each-ref | wc -l)
    [ "$refs" = 0 ] || { echo "f$i took a rejected ref" >&2; exit 1; }
done
echo "rejected ref (tag object $tag_size B, history 256 KiB): $((total / (NODES - 1))) B in per follower on average (HELLO of a new connection included); no follower's refs changed"

# --- 3. memory while following REPOS repositories -------------------------------------------
echo "== one node following $REPOS repositories (each: one tag, 256 KiB history)"
for r in $(seq 1 "$REPOS"); do
    make_repo "m$r" "v1=$FPR_GOOD" 2>/dev/null
    "$GT" node share --data-dir "$TMP/pub" "$TMP/src/m$r.git" --name "m$r" > /dev/null
done
start_node mem
until_ok running mem
for r in $(seq 1 "$REPOS"); do "$GT" node follow --data-dir "$TMP/mem" "$PUB/m$r" > /dev/null; done
have_all() {
    local n=0
    for r in $(seq 1 "$REPOS"); do
        git --git-dir="$TMP/mem/repos/$PUB/m$r.git" rev-parse -q --verify refs/tags/v1 > /dev/null 2>&1 && n=$((n + 1))
    done
    [ "$n" = "$REPOS" ]
}
until_ok have_all
sleep 12 # two more poll rounds over all repositories, then measure
mem_pid=$(cat "$TMP/mem.pid")
rss=$(awk '/^VmRSS/{print $2}' "/proc/$mem_pid/status")
hwm=$(awk '/^VmHWM/{print $2}' "/proc/$mem_pid/status")
f2_rss=$(awk '/^VmRSS/{print $2}' "/proc/$(cat "$TMP/f2.pid")/status")
echo "memory following $REPOS repositories: VmRSS $((rss / 1024)) MiB, peak VmHWM $((hwm / 1024)) MiB (a follower of 2 repositories: VmRSS $((f2_rss / 1024)) MiB)"
