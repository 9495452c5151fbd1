#!/usr/bin/env bash
# Runs the benchmark in smoke mode so that scripts/bench.sh cannot rot: the whole path (release
# build, a throwaway Postgres, kms, credentials-api, bench-floor, seeding, every scenario,
# pgbench, the small scale point, the report) with a few seconds per point. Asserts no timing:
# only that every step works, that the floor answered every get, and that the report has every
# section, scenario, ratio to the floor and target line.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp /tmp/bench-smoke.XXXXXX.md)
trap 'rm -f "$out"' EXIT

start=$(date +%s)
scripts/bench.sh --smoke --out "$out"
echo "bench smoke: $(( $(date +%s) - start )) s including the release build"

fail() { echo "FAIL: $*" >&2; exit 1; }
for section in "## Machine and run" "## Targets" "## Results" "### Ceiling (pgbench on the same Postgres)" \
  "### List by page depth (list-walk)" "### Scale point" "### Resident memory during the access runs" "### Where the CPU goes"; do
  grep -qxF "$section" "$out" || fail "the report lacks the section '$section'"
done
for scenario in floor-get access access-nocache access-wide get http-get list-page1 list-walk update create mix scale-access scale-get scale-list-page1; do
  grep -qE "^\| $scenario \| 8 \| [0-9]+ / [0-9]+ \|" "$out" || fail "the report lacks two runs of $scenario at 8 clients"
done
# bench.sh already fails on any floor error; this keeps the report honest about it too.
grep -qE "^\| floor-get \| 8 \| [^|]+\|( [^|]+\|){5} 0 / 0 \|" "$out" || fail "the floor's runs are not error-free in the report"
# Every scenario carries its ratio to the floor (the last column: run 1 / run 2).
for scenario in access access-nocache access-wide get http-get list-page1 list-walk update create mix; do
  grep -qE "^\| $scenario \| 8 \| .*\| [0-9]+\.[0-9]+ / [0-9]+\.[0-9]+ \|$" "$out" || fail "the report lacks $scenario's ratio to the floor"
done
for ceiling in "pgbench select-only (-S)" "pgbench single-row insert"; do
  grep -qE "^\| $(sed 's/[()]/\\&/g' <<<"$ceiling") \| 8 \| [0-9]+ / [0-9]+ \|" "$out" || fail "the report lacks two runs of $ceiling"
done
targets=$(grep -cE '^(PASS|MISS) ' "$out" || true)
[ "$targets" = 11 ] || fail "expected 11 PASS/MISS target lines, found $targets"
# The scale point compares each of its scenarios before and after the growth (both runs).
for scenario in access get list-page1; do
  grep -qE "^\| $scenario \| 8 \| [0-9]+ / [0-9]+ \| [0-9]+ / [0-9]+ \| ([0-9.]+ / [0-9.]+ \| ){3}[0-9.]+ \|$" "$out" \
    || fail "the scale point lacks before and after of $scenario"
done
echo "bench smoke: the report is complete (timings are not asserted)"
