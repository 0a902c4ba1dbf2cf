#!/usr/bin/env bash
# Time to bug: hunt every documented bug's (hunt_revision, invariant) cell, as listed in
# src/bugs.rs (`DOCUMENTED`), with a few campaign seeds, and print the markdown tables of
# reports/hunt.md.
#
#   SSESIM=target/release/ssesim reports/hunt.sh > table.md
#
# Environment (defaults in brackets):
#   SSESIM     the ssesim binary [target/release/ssesim]
#   SEEDS      campaign seeds [11 12 13 14 15]
#   MAX_CASES  give up after this many cases [20000]
#   JOBS       worker threads per hunt [1]
#   OUT        shrunk scenarios and the raw JSON of every hunt [target/ssesim/hunt]
#   RETRY_CASES a hunt that finds nothing within MAX_CASES is run again with this many cases
#              (about a minute at --jobs 1 on two shared cores), so the 60 s goal can be
#              judged; 0 skips it [150000]
#
# Hunts are deterministic (same seed, same cases, same shrunk scenario, whatever --jobs), so
# a cell that several bugs share is hunted once per seed. Wall times are not: they depend on
# the machine and its load. Run from the repository root; needs python3.
set -u -o pipefail

SSESIM=${SSESIM:-target/release/ssesim}
SEEDS=${SEEDS:-11 12 13 14 15}
MAX_CASES=${MAX_CASES:-20000}
JOBS=${JOBS:-1}
OUT=${OUT:-target/ssesim/hunt}
RETRY_CASES=${RETRY_CASES:-150000}

if [ ! -x "$SSESIM" ]; then
    echo "hunt.sh: no ssesim binary at $SSESIM (cargo build --release, or set SSESIM)" >&2
    exit 2
fi
mkdir -p "$OUT/json"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# The documented bugs as lines "id<TAB>catalog<TAB>hunt_revision<TAB>invariant".
bugs() {
    python3 - <<'EOF'
import re
src = open("src/bugs.rs").read()
body = src[src.index("pub const DOCUMENTED"):]
for m in re.finditer(r"Bug\s*\{(.*?)\}", body, re.S):
    f = dict(re.findall(r'(\w+):\s*"([^"]*)"', m.group(1)))
    print("\t".join([f["id"], f["catalog"], f["hunt_revision"], f["invariant"]]))
EOF
}

bugs > "$OUT/bugs.tsv" || exit 2
[ -s "$OUT/bugs.tsv" ] || { echo "hunt.sh: no bugs parsed from src/bugs.rs" >&2; exit 2; }

# Hunt every distinct cell once per seed.
cut -f3,4 "$OUT/bugs.tsv" | sort -u | while IFS=$'\t' read -r rev inv; do
    for seed in $SEEDS; do
        json="$OUT/json/$rev-$inv-s$seed.json"
        echo "hunt.sh: $rev $inv seed $seed" >&2
        # Exit code 1 means found, 0 not found; anything else is an error.
        "$SSESIM" hunt --revision "$rev" --invariant "$inv" --seed "$seed" \
            --max-cases "$MAX_CASES" --jobs "$JOBS" --json --out "$OUT" \
            > "$json" 2> "$OUT/json/$rev-$inv-s$seed.log"
        rc=$?
        if [ "$rc" -gt 1 ]; then
            echo "hunt.sh: hunt failed (exit $rc), see $OUT/json/$rev-$inv-s$seed.log" >&2
            exit 2
        fi
        rm -f "$OUT/json/$rev-$inv-s$seed-retry.json"
        if [ "$rc" -eq 0 ] && [ "$RETRY_CASES" -gt "$MAX_CASES" ]; then
            echo "hunt.sh: $rev $inv seed $seed not found, again with $RETRY_CASES cases" >&2
            "$SSESIM" hunt --revision "$rev" --invariant "$inv" --seed "$seed" \
                --max-cases "$RETRY_CASES" --jobs "$JOBS" --json --out "$OUT" \
                > "$OUT/json/$rev-$inv-s$seed-retry.json" 2> "$OUT/json/$rev-$inv-s$seed-retry.log"
            rc=$?
            if [ "$rc" -gt 1 ]; then
                echo "hunt.sh: hunt failed (exit $rc), see $OUT/json/$rev-$inv-s$seed-retry.log" >&2
                exit 2
            fi
        fi
    done
done || exit 2

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
OUT="$OUT" SEEDS="$SEEDS" MAX_CASES="$MAX_CASES" JOBS="$JOBS" NPROC="$(nproc 2>/dev/null)" \
LOAD_BEFORE="$LOAD_BEFORE" LOAD_AFTER="$LOAD_AFTER" RETRY_CASES="$RETRY_CASES" python3 - <<'EOF'
import json, os

out, seeds, max_cases = os.environ["OUT"], os.environ["SEEDS"].split(), int(os.environ["MAX_CASES"])
INF = float("inf")


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def fmt_cases(x):
    return f">{max_cases:,}" if x == INF else f"{x:,}"


def load(path):
    return json.load(open(path)) if os.path.exists(path) else None


def yn(b):
    return "yes" if b else "**no**"


bugs = [l.rstrip("\n").split("\t") for l in open(f"{out}/bugs.tsv")]
rows, goals, notes, shrink_ms = [], [], [], []
for bug, catalog, rev, inv in bugs:
    steps = len(json.load(open(f"scenarios/catalog/{catalog}.json"))["steps"])
    runs = [load(f"{out}/json/{rev}-{inv}-s{s}.json") for s in seeds]
    retries = [load(f"{out}/json/{rev}-{inv}-s{s}-retry.json") for s in seeds]
    found = [r["found"] for r in runs]
    cases = [r["cases"] if r["found"] else INF for r in runs]
    wall = [r["wall_ms"] / 1000 for r in runs]  # to the find, or the whole hunt if not found
    wall_find = [w if f else INF for w, f in zip(wall, found)]
    shrunk = [r["shrunk_steps"] for r in runs if r["found"]]
    shrink_ms += [r["shrink_ms"] for r in runs if r["found"]]
    # The turmoil replay of the shrunk scenario agrees when it reports exactly the
    # invariants the direct run did ("target" when it only shares the hunted one).
    agree = []
    for r in runs:
        if not r["found"]:
            agree.append("-")
            continue
        direct = {v["invariant"] for v in r["violations"]}
        tur = set(r.get("turmoil_violations") or [])
        agree.append(("yes" if direct == tur else "target") if inv in tur else "**no**")
    med_c, med_w = median(cases), median(wall_find)
    rows.append("| {} | `{} {}` | {}/{} | {} | {} | {} | {} | {} | {} ({}) | {} |".format(
        bug, rev, inv, sum(found), len(runs),
        ", ".join(map(fmt_cases, cases)), fmt_cases(med_c),
        ", ".join(f"{w:.2f}" if f else f">{w:.2f}" for w, f in zip(wall, found)),
        f"{med_w:.2f}" if med_w != INF else f">{median(wall):.2f}",
        ", ".join(f"{r['shrunk_steps']} ({r['original_steps']})" if r["found"] else "-"
                  for r in runs),
        catalog, steps, ", ".join(agree)))
    # The goals, a longer retry standing in for a hunt that found nothing.
    g_found, g_wall = list(found), list(wall_find)
    for k, (s, r) in enumerate(zip(seeds, retries)):
        if r is None:
            continue
        note = f"`{rev} {inv}` seed {s}: nothing in {max_cases:,} cases ({wall[k]:.2f} s); "
        if r["found"]:
            g_found[k], g_wall[k] = True, r["wall_ms"] / 1000
            shrunk.append(r["shrunk_steps"])
            note += (f"a hunt of up to {int(os.environ['RETRY_CASES']):,} cases found it at case "
                     f"{r['cases']:,} after {r['wall_ms'] / 1000:.2f} s, shrunk to "
                     f"{r['shrunk_steps']} ({r['original_steps']}) steps; the goals use that")
        else:
            note += f"nothing in {r['cases']:,} cases either ({r['wall_ms'] / 1000:.2f} s)"
        if note not in notes:
            notes.append(note)
    g60 = all(g_found) and max(g_wall) <= 60
    gmed = median(g_wall)
    goals.append("| {} | `{} {}` | {} ({}) | {} ({}) | {} (max {} vs {} + 2) |".format(
        bug, rev, inv,
        yn(g60), f"slowest {max(g_wall):.2f} s" if all(g_found) else "not all found",
        yn(gmed < 5), f"{gmed:.2f} s" if gmed != INF else "not found",
        yn(bool(shrunk) and max(shrunk) <= steps + 2), max(shrunk) if shrunk else "-", steps))

print("| bug | hunt target | found | cases to find, per seed | median cases | wall s to find, per seed | median s | shrunk (from), per seed | catalog file (steps) | turmoil replay agrees, per seed |")
print("|---|---|---|---|---:|---|---:|---|---|---|")
print("\n".join(rows))
print()
print("| bug | hunt target | every seed found within 60 s | median under 5 s | shrunk to at most catalog + 2 steps |")
print("|---|---|---|---|---|")
print("\n".join(goals))
print()
for n in notes:
    print(f"* {n}.")
if shrink_ms:
    print(f"* Shrinks (after the find, not in the wall times): median "
          f"{median(shrink_ms) / 1000:.2f} s, at most {max(shrink_ms) / 1000:.2f} s.")
print(f"* Seeds {', '.join(seeds)}; at most {max_cases:,} cases per hunt; `--jobs {os.environ['JOBS']}`; "
      f"{os.environ.get('NPROC') or '?'} cores; load average (1, 5, 15 min) "
      f"{os.environ.get('LOAD_BEFORE') or '?'} before, {os.environ.get('LOAD_AFTER') or '?'} after.")
EOF
