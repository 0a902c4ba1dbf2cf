#!/usr/bin/env bash
# Time to bug: hunt every documented bug of src/bugs.rs (`DOCUMENTED`) as itself, with
# `ssesim hunt --bug`, over a few campaign seeds, and print the markdown tables of
# reports/hunt.md.
#
#   SSESIM=target/release/ssesim reports/hunt.sh > table.md
#
# Environment (defaults in brackets):
#   SSESIM      the ssesim binary [target/release/ssesim]
#   SEEDS       campaign seeds [11 12 13 14 15]
#   MAX_CASES   give up after this many cases [20000]
#   JOBS        worker threads per hunt [1]
#   OUT         shrunk scenarios and the raw JSON of every hunt [target/ssesim/hunt]
#   RETRY_CASES a hunt that finds nothing within MAX_CASES is run again with this many
#               cases (a minute or more at --jobs 1 on two shared cores), so the 60 s goal
#               can be judged; 0 skips it [60000]
#   FOCUS       `--no-focus`: hunt with the default case odds instead of the ones leaned
#               towards each bug's catalog file [empty]
#
# Hunts are deterministic (same seed, same cases, same shrunk scenario, whatever --jobs).
# Wall times are not: they depend on the machine and its load. Run from the repository
# root; needs python3.
set -u -o pipefail

SSESIM=${SSESIM:-target/release/ssesim}
SEEDS=${SEEDS:-11 12 13 14 15}
MAX_CASES=${MAX_CASES:-20000}
JOBS=${JOBS:-1}
OUT=${OUT:-target/ssesim/hunt}
RETRY_CASES=${RETRY_CASES:-60000}
FOCUS=${FOCUS:-}

if [ ! -x "$SSESIM" ]; then
    echo "hunt.sh: no ssesim binary at $SSESIM (cargo build --release, or set SSESIM)" >&2
    exit 2
fi
mkdir -p "$OUT/json"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
START=$(date +%s)

# The documented bugs as lines
# "slug<TAB>id<TAB>catalog<TAB>hunt_revision<TAB>invariant<TAB>controls<TAB>probe and keeps rules".
bugs() {
    python3 - <<'PY'
import re
src = open("src/bugs.rs").read()
body = src[src.index("pub const DOCUMENTED"):]
for m in re.finditer(r"Bug\s*\{(.*?)\n    \}", body, re.S):
    text = m.group(1)
    f = dict(re.findall(r'(\w+):\s*"([^"]*)"', text))
    controls = re.search(r"controls:\s*&\[([^\]]*)\]", text).group(1)
    controls = ", ".join(re.findall(r'"([^"]*)"', controls))
    probe = re.search(r'probe:\s*ProbeRule::(\w+)(?:\("([^"]*)"\))?', text)
    probe = {"None": "", "Hit": "hits ", "Miss": "misses "}[probe.group(1)] + (probe.group(2) or "")
    keeps = re.findall(r'"([^"]*)"', re.search(r"keeps:\s*&\[([^\]]*)\]", text).group(1))
    probe = "; ".join(([probe] if probe else []) + [f"keeps {k}" for k in keeps])
    slug = re.sub(r"[^a-z0-9]+", "-", f["id"].lower()).strip("-")
    print("\t".join([slug, f["id"], f["catalog"], f["hunt_revision"], f["invariant"], controls, probe]))
PY
}

bugs > "$OUT/bugs.tsv" || exit 2
[ -s "$OUT/bugs.tsv" ] || { echo "hunt.sh: no bugs parsed from src/bugs.rs" >&2; exit 2; }

# hunt ID SEED CASES JSON LOG: one hunt; exit code 1 means found, 0 not found.
hunt() {
    # shellcheck disable=SC2086 # FOCUS is empty or one flag
    "$SSESIM" hunt --bug "$1" $FOCUS --seed "$2" --max-cases "$3" --jobs "$JOBS" \
        --json --out "$OUT" > "$4" 2> "$5"
    local rc=$?
    if [ "$rc" -gt 1 ]; then
        echo "hunt.sh: hunt failed (exit $rc), see $5" >&2
        exit 2
    fi
    return "$rc"
}

# Every bug, once per seed.
while IFS=$'\t' read -r slug id _rest; do
    for seed in $SEEDS; do
        base="$OUT/json/$slug-s$seed"
        echo "hunt.sh: $id seed $seed" >&2
        hunt "$id" "$seed" "$MAX_CASES" "$base.json" "$base.log" < /dev/null
        rc=$?
        rm -f "$base-retry.json"
        if [ "$rc" -eq 0 ] && [ "$RETRY_CASES" -gt "$MAX_CASES" ]; then
            echo "hunt.sh: $id seed $seed not found, again with $RETRY_CASES cases" >&2
            hunt "$id" "$seed" "$RETRY_CASES" "$base-retry.json" "$base-retry.log" < /dev/null
        fi
    done
done < "$OUT/bugs.tsv" || exit 2

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
OUT="$OUT" SEEDS="$SEEDS" MAX_CASES="$MAX_CASES" JOBS="$JOBS" NPROC="$(nproc 2>/dev/null)" \
LOAD_BEFORE="$LOAD_BEFORE" LOAD_AFTER="$LOAD_AFTER" RETRY_CASES="$RETRY_CASES" \
ELAPSED="$(( $(date +%s) - START ))" FOCUS="$FOCUS" python3 - <<'PY'
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
rows, goals, notes, shrink_ms, hunts, cases_run = [], [], [], [], 0, 0
for slug, bug, catalog, rev, inv, controls, probe in bugs:
    steps = len(json.load(open(f"scenarios/catalog/{catalog}.json"))["steps"])
    runs = [load(f"{out}/json/{slug}-s{s}.json") for s in seeds]
    retries = [load(f"{out}/json/{slug}-s{s}-retry.json") for s in seeds]
    hunts += len(runs) + sum(r is not None for r in retries)
    cases_run += sum(r["cases"] for r in runs + retries if r is not None)
    found = [r["found"] for r in runs]
    cases = [r["cases"] if r["found"] else INF for r in runs]
    wall = [r["wall_ms"] / 1000 for r in runs]  # to the find, or the whole hunt if not found
    wall_find = [w if f else INF for w, f in zip(wall, found)]
    shrunk = [r["shrunk_steps"] for r in runs if r["found"]]
    shrink_ms += [r["shrink_ms"] for r in runs + retries if r is not None and r["found"]]
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
    target = f"`{inv}` on `{rev}`, kept on {', '.join(f'`{c}`' for c in controls.split(', '))}"
    for rule in filter(None, probe.split("; ")):
        target += f"; {rule.split()[0]} `{rule.split()[1]}`"
    rows.append("| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} ({}) | {} |".format(
        bug, target, sum(found), len(runs),
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
        note = f"{bug} seed {s}: nothing in {max_cases:,} cases ({wall[k]:.2f} s); "
        if r["found"]:
            g_found[k], g_wall[k] = True, r["wall_ms"] / 1000
            shrunk.append(r["shrunk_steps"])
            note += (f"a hunt of up to {int(os.environ['RETRY_CASES']):,} cases found it at case "
                     f"{r['cases']:,} after {r['wall_ms'] / 1000:.2f} s, shrunk to "
                     f"{r['shrunk_steps']} ({r['original_steps']}) steps; the goals use that")
        else:
            note += f"nothing in {r['cases']:,} cases either ({r['wall_ms'] / 1000:.2f} s)"
        notes.append(note)
    g60 = all(g_found) and max(g_wall) <= 60
    gmed = median(g_wall)
    goals.append("| {} | {} ({}) | {} ({}) | {} (max {} vs {} + 2) |".format(
        bug,
        yn(g60), f"slowest {max(g_wall):.2f} s" if all(g_found) else f"{sum(g_found)}/{len(g_found)} found",
        yn(gmed < 5), f"{gmed:.2f} s" if gmed != INF else "not found",
        yn(bool(shrunk) and max(shrunk) <= steps + 2), max(shrunk) if shrunk else "-", steps))

print("| bug | identity (hunted with `--bug`) | found | cases to find, per seed | median cases | wall s to find, per seed | median s | shrunk (from), per seed | catalog file (steps) | turmoil replay agrees, per seed |")
print("|---|---|---|---|---:|---|---:|---|---|---|")
print("\n".join(rows))
print()
print("| bug | every seed found within 60 s | median under 5 s | shrunk to at most catalog + 2 steps |")
print("|---|---|---|---|")
print("\n".join(goals))
print()
for n in notes:
    print(f"* {n}.")
if shrink_ms:
    print(f"* Shrinks (after the find, not in the wall times): median "
          f"{median(shrink_ms) / 1000:.2f} s, at most {max(shrink_ms) / 1000:.2f} s.")
print(f"* Seeds {', '.join(seeds)}; at most {max_cases:,} cases per hunt; `--jobs {os.environ['JOBS']}`"
      f"{'; ' + os.environ['FOCUS'] if os.environ.get('FOCUS') else ''}; "
      f"{os.environ.get('NPROC') or '?'} cores; load average (1, 5, 15 min) "
      f"{os.environ.get('LOAD_BEFORE') or '?'} before, {os.environ.get('LOAD_AFTER') or '?'} after; "
      f"{hunts} hunts, {cases_run:,} cases, {os.environ['ELAPSED']} s in all.")
PY
