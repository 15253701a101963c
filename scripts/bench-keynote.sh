#!/bin/sh
# Whole-process benchmarks of `gt keynote` on keynote/benches/perf (see its README), next to
# the reference KeyNote 2.3 medians measured on the same kind of machine. Builds gt in release
# mode first. Uses hyperfine when installed (apt install hyperfine), else a timing loop.
#
#   scripts/bench-keynote.sh [RUNS]
#   KEYNOTE_REF=/path/to/keynote scripts/bench-keynote.sh [RUNS]      (needs hyperfine)
#
# With KEYNOTE_REF (a build of the reference KeyNote 2.3 `keynote` tool; none ships with gt),
# every row also runs the reference on the same command right after gt, and prints its median
# and answer and the ratio reference/gt: figures from one invocation on one machine, instead of
# the recorded medians, which were taken on another day.
#
# After row (a) comes its floor: what only reading the same files takes with four system calls
# each (a program that opens, sizes, reads and closes them and does nothing else,
# keynote/examples/read_floor.rs), on one thread and on all cores. That is how the reference
# reads; gt reads many files through io_uring (src/batch_read.rs, session 14), which can take
# it below this line. Half the reference's time is what 2x on (a) asks of gt's whole run.
unset RUST_BACKTRACE  # sequoia builds errors on normal paths; a captured backtrace each costs ~3%
set -eu
runs=${1:-40}
root=$(cd "$(dirname "$0")/.." && pwd)
# GT=/path/to/gt measures that binary instead of building one.
if [ -z "${GT:-}" ]; then
    cargo build --release -p gt --manifest-path "$root/Cargo.toml" >&2
fi
gt="${GT:-${CARGO_TARGET_DIR:-$root/target}/release/gt}"
# Every row runs from inside its input folder: make the path absolute.
case "$gt" in /*) ;; *) gt="$(pwd)/$gt" ;; esac
if [ -n "${KEYNOTE_REF:-}" ] && ! command -v hyperfine >/dev/null 2>&1; then
    echo "KEYNOTE_REF needs hyperfine (apt install hyperfine)" >&2
    exit 2
fi
perf="$root/keynote/benches/perf"
# keynote/examples/read_floor.rs: reads files and does nothing else (the floor under row a).
floor=""
if command -v cargo >/dev/null 2>&1 &&
    cargo build --release -p keynote --example read_floor --manifest-path "$root/Cargo.toml" >&2; then
    floor="${CARGO_TARGET_DIR:-$root/target}/release/examples/read_floor"
    case "$floor" in /*) ;; *) floor="$(pwd)/$floor" ;; esac
fi

# median_ms DIR CMD...: run CMD in DIR $runs times, print the median wall time in ms.
median_ms() {
    dir=$1; shift
    if command -v hyperfine >/dev/null 2>&1; then
        json=$(mktemp)
        (cd "$dir" && hyperfine -N --warmup 3 --runs "$runs" --export-json "$json" \
            "$*" >/dev/null 2>&1)
        python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$json"
        rm -f "$json"
    else
        (cd "$dir" && for _ in $(seq "$runs"); do
            s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N)
            echo $(( (e - s) / 1000 ))
        done) | sort -n | awk '{a[NR]=$1} END {printf "%.2f\n", a[int((NR+1)/2)]/1000}'
    fi
}

# paired_ms DIR CMD...: the commands (each one string) in DIR, alternating in rounds of 5 runs
# each (this VM's speed drifts by tens of percent within a minute, so back-to-back series
# would measure the drift); prints each command's median over all runs, in order.
paired_ms() {
    dir=$1; shift
    json=$(mktemp -d)
    rounds=$(( (runs + 4) / 5 ))
    for r in $(seq "$rounds"); do
        (cd "$dir" && hyperfine -N --warmup 1 --runs 5 --export-json "$json/$r.json" \
            "$@" >/dev/null 2>&1)
    done
    python3 - "$json" <<'PY'
import glob, json, statistics, sys
times = {}
for f in glob.glob(sys.argv[1] + "/*.json"):
    for i, res in enumerate(json.load(open(f))["results"]):
        times.setdefault(i, []).extend(res["times"])
print(" ".join("%.2f" % (statistics.median(times[i]) * 1000) for i in sorted(times)))
PY
    rm -rf "$json"
}

# row NAME REFERENCE DIR ARGS...: one line of the table, with gt's answer (and, with
# KEYNOTE_REF, the reference's median, answer and the ratio).
row() {
    name=$1; ref=$2; dir=$3; shift 3
    answer=$(cd "$dir" && "$gt" keynote "$@" 2>/dev/null | head -1 | sed 's/Query result = //')
    all="$*"
    shown=$(echo "$all" | cut -c1-48)
    if [ ${#shown} -lt ${#all} ]; then shown="$shown..."; fi
    if [ -n "${KEYNOTE_REF:-}" ]; then
        ref_answer=$(cd "$dir" && "$KEYNOTE_REF" "$@" 2>/dev/null | head -1 | sed 's/Query result = //')
        read -r ms ref_ms <<EOF_PAIR
$(paired_ms "$dir" "$gt keynote $*" "$KEYNOTE_REF $*")
EOF_PAIR
        ratio=$(python3 -c 'import sys; print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$ref_ms" "$ms")
        printf '%-4s %-52s gt %8s ms %-6s  reference %8s ms %-6s  %5sx\n' \
            "$name" "$shown" "$ms" "$answer" "$ref_ms" "$ref_answer" "$ratio"
    else
        ms=$(median_ms "$dir" "$gt" keynote "$@")
        printf '%-4s %-52s %9s ms   reference %-12s answer %s\n' "$name" "$shown" "$ms" "$ref" "$answer"
    fi
}

if [ -n "${KEYNOTE_REF:-}" ]; then
    echo "gt keynote and $KEYNOTE_REF, whole process, median of $runs runs each; load: $(cut -d' ' -f1-3 /proc/loadavg)"
else
    echo "gt keynote, whole process, median of $runs runs (reference: KeyNote 2.3 medians recorded in perf/README.md); load: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
c="$perf/chain"
# Row (a)'s arguments, also run by the reference in its floor line below.
a_args="verify -e env -r false,true -k requester.key $(cat "$c/args.txt")"
# shellcheck disable=SC2086 # word-split on purpose: the file names have no spaces
row a  "11.2-11.9" "$c" $a_args
# What reading row (a)'s files alone takes (open, size, read, close each; no parsing, no query),
# on one thread and shared between all cores in pieces as gt shares them. 2x on (a) means gt's
# whole run in half the reference's: these two are what a program reading file by file pays.
floor_row() {
    files="env requester.key $(tr ' ' '\n' < "$c/args.txt" | grep -v '^-l$' | tr '\n' ' ')"
    n=$(echo "$files" | wc -w)
    j=$(nproc)
    if [ -n "${KEYNOTE_REF:-}" ]; then
        read -r one many ref_ms <<EOF_FLOOR
$(paired_ms "$c" "$floor $files" "$floor -j $j $files" "$KEYNOTE_REF $a_args")
EOF_FLOOR
        half=$(python3 -c 'import sys; print("%.2f" % (float(sys.argv[1]) / 2))' "$ref_ms")
        printf '%-4s reading its %s files alone: 1 thread %s ms, %s threads %s ms; reference %s ms, half of it %s ms\n' \
            "a" "$n" "$one" "$j" "$many" "$ref_ms" "$half"
    else
        one=$(median_ms "$c" "$floor" $files)
        many=$(median_ms "$c" "$floor" -j "$j" $files)
        printf '%-4s reading its %s files alone: 1 thread %s ms, %s threads %s ms; half the recorded reference: 5.60-5.95 ms\n' \
            "a" "$n" "$one" "$j" "$many"
    fi
}
if [ -n "$floor" ]; then floor_row; fi
row a0 "1.6-1.9" "$c" verify -e env -r false,true -k requester.key -l policy.kn
s="$perf/chain-signed"
row "a'" "58-65" "$s" verify -e env -r false,true -k requester.key -l policy.kn $(cat "$s/args.txt")
k="$perf/clauses"
row b  "6.1-6.8(v0)" "$k" verify -e env -r v0,v1,v2 -k requester.key -l policy.kn
row b1 "5.0-5.3" "$k" verify -e env -r v0,v1,v2 -k requester.key -l policy-3331.kn
row b2 "10.0-10.6" "$k" verify -e env -r v0,v1,v2 -k requester.key -l split-0.kn -l split-1.kn -l split-2.kn -l split-3.kn
row b3 "9.4-10.0" "$k" verify -e env -r v0,v1,v2 -k requester.key -l policy-or.kn
row c  "32-44" "$perf/sigver" sigver rsa-1000.kn
row "c'" "102-111" "$perf/sigver" sigver dsa-1000.kn

# A generated 10,000-link chain (the reference needs 0.64 s: it rescans its hash table).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'app_domain = "perf"\n' > "$tmp/env"
printf '"requester"\n' > "$tmp/requester.key"
printf 'Authorizer: "POLICY"\nLicensees: "P0"\n' > "$tmp/policy.kn"
python3 - "$tmp" <<'PY'
import sys
d = sys.argv[1]
n = 10000
args = ["-l", "policy.kn"]
for i in range(n):
    nxt = "requester" if i + 1 == n else "P%d" % (i + 1)
    open("%s/l%05d.kn" % (d, i), "w").write(
        'KeyNote-Version: 2\nAuthorizer: "P%d"\nLicensees: "%s"\nConditions: app_domain == "perf";\n' % (i, nxt))
    args += ["-l", "l%05d.kn" % i]
open(d + "/args.txt", "w").write(" ".join(args))
PY
row L10k "640" "$tmp" verify -e env -r false,true -k requester.key $(cat "$tmp/args.txt")
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
