#!/usr/bin/env bash
# Whole-process benchmark: one `gt verify-tag` invocation over many tags against `git verify-tag`
# run once per tag over the same tags, printed as a ratio.
#
#   scripts/bench-verify-tag.sh [GT_BINARY]     (default: target/release/gt, built if missing)
#   N_GENERATED=1000 RUNS=5 scripts/bench-verify-tag.sh
#
# Sets: the 70 real git.git tags (verifier/tests/fixtures/git.git-tags, Junio Hamano's key) and
# N_GENERATED tags with 3 stacked signatures each (Ed25519, RSA-2048, RSA-4096 test keys, one
# armored block, made by gpg). Every signature is distinct, so sequoia's per-process signature
# cache never helps. Everything runs in a temporary GNUPGHOME and repository; timings are the
# median of RUNS runs. `git verify-tag` exits 1 on the stacked tags (it refuses multiple
# signatures) after gpg has checked all three, so the comparison is still like for like.
# The machine's load average is printed before and after the timed runs: on a shared machine,
# wall-time ratios are only comparable at similar loads (gt uses every core; git one).
unset RUST_BACKTRACE  # sequoia builds errors on normal paths; a captured backtrace each costs ~3%
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GT=${1:-$ROOT/target/release/gt}
N=${N_GENERATED:-1000}
RUNS=${RUNS:-5}
if [ ! -x "$GT" ]; then cargo build --release -p gt >&2; fi

WORK=$(mktemp -d)
trap 'gpgconf --homedir "$WORK/gnupg" --kill all >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
export GNUPGHOME=$WORK/gnupg HOME=$WORK GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
mkdir -m 700 "$GNUPGHOME"
FIX=$ROOT/verifier/tests/fixtures/git.git-tags

# --- real tags -------------------------------------------------------------------------------
git init -q "$WORK/real"
gpg --batch --quiet --import "$FIX/junio-gpg-pub.asc" 2>/dev/null
REAL=()
for f in "$FIX"/*.tag; do
    name=$(basename "$f" .tag)
    oid=$(git -C "$WORK/real" hash-object -t tag -w --literally "$f")
    git -C "$WORK/real" update-ref "refs/tags/$name" "$oid"
    REAL+=("$name")
done

# --- generated stacked tags ------------------------------------------------------------------
for k in ed25519 rsa2048 rsa4096; do gpg --batch --quiet --import "$ROOT/testkeys/$k.sec.asc" 2>/dev/null; done
git init -q "$WORK/gen"
git -C "$WORK/gen" -c user.name=b -c user.email=b@b commit -q --allow-empty -m base
python3 - "$WORK/gen" "$N" "$ROOT/testkeys/FINGERPRINTS" <<'PY'
import base64, subprocess, sys
repo, n, fprs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fpr = dict(l.split() for l in open(fprs))
head = subprocess.check_output(["git", "-C", repo, "rev-parse", "HEAD"]).decode().strip()
def crc24(data):
    crc = 0xB704CE
    for b in data:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000: crc ^= 0x1864CFB
    return crc & 0xFFFFFF
def armor(binary):
    b64 = base64.b64encode(binary).decode()
    lines = [b64[i:i+64] for i in range(0, len(b64), 64)]
    c = base64.b64encode(crc24(binary).to_bytes(3, "big")).decode()
    return ("-----BEGIN PGP SIGNATURE-----\n\n" + "\n".join(lines) + "\n=" + c +
            "\n-----END PGP SIGNATURE-----\n").encode()
refs = []
for i in range(n):
    content = (f"object {head}\ntype commit\ntag gen-{i}\n"
               f"tagger bench <bench@gt.invalid> {1735689600 + i} +0000\n\nbench tag {i}\n").encode()
    sigs = b""
    for k in ("ed25519", "rsa2048", "rsa4096"):
        sigs += subprocess.run(["gpg", "--batch", "-bsu", fpr[k]], input=content,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout
    obj = content + armor(sigs)
    oid = subprocess.run(["git", "-C", repo, "hash-object", "-t", "tag", "-w", "--stdin"],
                         input=obj, stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    refs.append(f"update refs/tags/gen-{i} {oid}\n")
subprocess.run(["git", "-C", repo, "update-ref", "--stdin"], input="".join(refs).encode(), check=True)
PY
cat "$ROOT/testkeys/ed25519.pub.asc" "$ROOT/testkeys/rsa2048.pub.asc" "$ROOT/testkeys/rsa4096.pub.asc" > "$WORK/gen.asc"
GEN=()
for i in $(seq 0 $((N - 1))); do GEN+=("gen-$i"); done

# median wall time (seconds) of RUNS runs of "$@" (git over the generated set: one run, it takes
# seconds and varies little)
median() {
    local times=()
    for _ in $(seq "$RUNS"); do
        local s e
        s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N)
        times+=("$(echo "$e - $s" | bc -l)")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
git_each() { local repo=$1; shift; for t in "$@"; do git -C "$repo" verify-tag "$t" >/dev/null 2>&1 || true; done; }

# Sanity: gt's verdicts on the real tags (70 results expected).
"$GT" verify-tag --repo "$WORK/real" --keyring "$FIX/junio-gpg-pub.asc" --json "${REAL[@]}" > "$WORK/real.json" || true
echo "real tags: $(wc -l < "$WORK/real.json") results, $(grep -c '"verified":true' "$WORK/real.json") verified; good signatures: $(grep -o '"status":"good"' "$WORK/real.json" | wc -l)"
"$GT" verify-tag --repo "$WORK/gen" --keyring "$WORK/gen.asc" --json "${GEN[@]}" > "$WORK/gen.json" || true
echo "generated tags: $(wc -l < "$WORK/gen.json") results, $(grep -c '"verified":true' "$WORK/gen.json") verified; good signatures: $(grep -o '"status":"good"' "$WORK/gen.json" | wc -l) of $((3 * N))"

load() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(load)
gt_real=$(median "$GT" verify-tag --repo "$WORK/real" --keyring "$FIX/junio-gpg-pub.asc" "${REAL[@]}")
git_real=$(median git_each "$WORK/real" "${REAL[@]}")
gt_gen=$(median "$GT" verify-tag --repo "$WORK/gen" --keyring "$WORK/gen.asc" "${GEN[@]}")
git_gen=$(RUNS=1 median git_each "$WORK/gen" "${GEN[@]}")

load_after=$(load)
echo "cores: $(nproc); load average (1/5/15 min) before: $load_before, after: $load_after; medians of $RUNS runs"
printf '%-34s %10s %12s %8s\n' "set" "gt (s)" "git (s)" "ratio"
printf '%-34s %10.3f %12.3f %7.1fx\n' "70 real git.git tags" "$gt_real" "$git_real" "$(echo "$git_real / $gt_real" | bc -l)"
printf '%-34s %10.3f %12.3f %7.1fx\n' "$N tags x 3 stacked signatures" "$gt_gen" "$git_gen" "$(echo "$git_gen / $gt_gen" | bc -l)"
printf 'gt per signature (generated set): %.1f us\n' "$(echo "$gt_gen * 1000000 / (3 * $N)" | bc -l)"
