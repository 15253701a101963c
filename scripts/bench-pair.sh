#!/bin/bash
# Whole-process timings of several commands in interleaved rounds, for comparing two gt builds
# (and the reference KeyNote tool) on one input on this noisy VM: each round runs every command
# 5 times (hyperfine -N, 1 warm-up), so drift over a minute hits all of them alike.
#
#   scripts/bench-pair.sh DIR ROUNDS "CMD A" "CMD B" ...
#
# e.g. (from the repository root; DIR is where the commands run):
#   scripts/bench-pair.sh keynote/benches/perf/clauses 8 \
#     "/tmp/gt-old keynote verify -e env -r v0,v1,v2 -k requester.key -l policy-3331.kn" \
#     "target/release/gt keynote verify -e env -r v0,v1,v2 -k requester.key -l policy-3331.kn"
# Prints each command's median over all rounds. Needs hyperfine and python3.
set -euo pipefail
unset RUST_BACKTRACE  # as scripts/bench-keynote.sh: a captured backtrace costs gt time
if [ $# -lt 3 ]; then
    sed -n '2,13p' "$0" >&2
    exit 2
fi
dir=$1
rounds=$2
shift 2
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$dir"
# Relative program paths are taken from where the script was started.
cmds=()
for c in "$@"; do
    case "$c" in
        /* | env\ * | taskset\ *) cmds+=("$c") ;;
        */*) cmds+=("$root/$c") ;;
        *) cmds+=("$c") ;;
    esac
done
for r in $(seq "$rounds"); do
    hyperfine -N --warmup 1 --runs 5 --export-json "$tmp/$r.json" "${cmds[@]}" >/dev/null 2>&1
done
python3 - "$tmp" "${cmds[@]}" <<'PY'
import glob, json, statistics, sys
d, names = sys.argv[1], sys.argv[2:]
times = [[] for _ in names]
for f in glob.glob(d + "/*.json"):
    for i, r in enumerate(json.load(open(f))["results"]):
        times[i] += r["times"]
for n, t in zip(names, times):
    print("%8.3f ms  (%d runs)  %s" % (statistics.median(t) * 1000, len(t), n))
PY
