#!/usr/bin/env bash
# The benchmark: builds release binaries, starts a throwaway Postgres (default durability), the
# kms and credentials-api against it, seeds, runs the standard scenarios with loadgen at 1, 8 and
# 64 clients, measures the machine's own ceiling on the same Postgres with pgbench (select-only
# and single-row insert) and the gRPC floor (bench-floor: a bare tonic + tokio-postgres get of
# the same rows) at the same client counts, then grows the table to the scale point (--scale:
# filler rows by SQL) and runs access, get and list page 1 against it, and writes docs/benchmarks.md.
# Every point runs at least twice and both runs are shown: these machines are shared and noisy.
# Cleans up everything it started, and stops at the first failed step.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() {
  cat <<'TXT'
usage: scripts/bench.sh [--smoke] [--duration SECONDS] [--warmup SECONDS] [--runs N]
                        [--clients "1 8 64"] [--out FILE] [--list-seed sql|api]
                        [--scale N] [--only scale] [--keep]

  --smoke          a few seconds per point, 8 clients only, small seeds; still two runs of every
                   point. Writes to a temporary file instead of docs/benchmarks.md unless --out.
  --duration S     measured seconds per point (default 15; smoke 2)
  --warmup S       warm-up seconds per point, excluded from every figure (default 3; smoke 1)
  --runs N         runs of every point, at least 2 (default 2)
  --clients LIST   client counts (default "1 8 64"; smoke "8")
  --out FILE       where to write the markdown (default docs/benchmarks.md; smoke: a temp file)
  --list-seed HOW  how the list workspace gets its rows: api (default: every one created
                   through the API; about a minute for 100k on 2 cores) or sql (faster: one
                   created through the API, copied by SQL with new ids, names and creation
                   times; fine for list, which never decrypts them)
  --scale N        the scale point: after every other point, grow the table to N credentials
                   in N/100 workspaces (default 1000000; smoke 20000; 0 leaves it out) and run
                   access, get and list page 1 at 8 clients again, each against the same rows
                   as before; the report compares their p99 with the runs before the growth.
                   The rows added are filler written by SQL (see "Scale point" in the report).
  --only scale     run only the scale part: the three points at 8 clients before the growth,
                   then after it (no pgbench, floor or other scenario)
  --keep           keep the temporary directory (logs, raw JSON) and print its path

Every scenario is shown as a ratio to pgbench (the database's ceiling) and to floor-get: the
same loadgen get against bench-floor, a bare tonic + tokio-postgres service answering
GetCredential with the API's point select and nothing else (no auth, tracing, metrics or audit),
which is the limit of a gRPC service on this machine. A floor run with any error fails the
benchmark: a floor that answers errors quickly would only look fast.

The per-principal rate limits are off (loadgen drives everything under one subject; the
benchmarks measure capacity). Environment: BENCH_API_ARGS extra arguments for
`credentials-api serve` (word-split), e.g.
"--db-max-connections 32"; CARGO_TARGET_DIR is honoured.
TXT
}

smoke=0 duration= warmup= runs=2 clients= out= list_seed=api keep=0 scale= only=
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1 ;;
    --duration) duration=${2:?--duration needs seconds}; shift ;;
    --warmup) warmup=${2:?--warmup needs seconds}; shift ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --clients) clients=${2:?--clients needs a list}; shift ;;
    --out) out=${2:?--out needs a file}; shift ;;
    --list-seed) list_seed=${2:?--list-seed needs sql or api}; shift ;;
    --scale) scale=${2:?--scale needs a number of credentials}; shift ;;
    --only) only=${2:?--only needs a part: scale}; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [ "$smoke" = 1 ]; then
  : "${duration:=2}" "${warmup:=1}" "${clients:=8}" "${scale:=20000}"
  point_seed=100 list_rows=2000 pgbench_scale=1 wide_ids=2000
else
  : "${duration:=15}" "${warmup:=3}" "${clients:=1 8 64}" "${scale:=1000000}"
  point_seed=1000 list_rows=100000 pgbench_scale=10 wide_ids=20000
fi
clients=${clients//,/ }
workspaces=10
for n in "$duration" "$warmup" "$runs" "$scale" $clients; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "bench: $n is not a whole number" >&2; exit 2; }
done
[ "$duration" -ge 1 ] || { echo "bench: --duration must be at least 1" >&2; exit 2; }
[ "$runs" -ge 2 ] || { echo "bench: --runs must be at least 2 (noisy machines: show two runs)" >&2; exit 2; }
case $list_seed in sql|api) ;; *) echo "bench: --list-seed is sql or api" >&2; exit 2 ;; esac
case $only in ''|scale) ;; *) echo "bench: --only knows one part: scale" >&2; exit 2 ;; esac
# The scale point: the point workspaces keep their seeded credentials and filler workspaces of
# 100 make up the rest, so that N credentials sit in N/100 workspaces.
scale_workspaces=$(( scale / 100 )) scale_fill_workspaces=0 scale_filler=0
if [ "$scale" -gt 0 ]; then
  { [ $(( scale % 100 )) = 0 ] && [ "$scale_workspaces" -gt "$workspaces" ] && [ "$scale" -gt "$point_seed" ]; } \
    || { echo "bench: --scale must be a multiple of 100 above $(( workspaces * 100 )) and $point_seed" >&2; exit 2; }
  scale_fill_workspaces=$(( scale_workspaces - workspaces )) scale_filler=$(( scale - point_seed ))
fi
[ "$only" != scale ] || [ "$scale" -gt 0 ] || { echo "bench: --only scale needs --scale above 0" >&2; exit 2; }
# Smoke numbers mean nothing: they go to a temporary file (made at the end) unless --out.
if [ -z "$out" ] && [ "$smoke" = 0 ]; then out=$root/docs/benchmarks.md; fi
[ -z "$out" ] || [ -d "$(dirname "$out")" ] || { echo "bench: no directory for --out $out" >&2; exit 2; }
list_depth=$(( list_rows / 100 - 1 ))

step() { printf '\n== %s\n' "$*" >&2; }
started_at=$(date +%s)

# --- cleanup -------------------------------------------------------------------------------
tmp=
pids=()
pg_ctl_cmd=()
on_error() {
  local status=$? line=$1
  trap - ERR
  echo "bench: FAILED (status $status) at line $line: $BASH_COMMAND" >&2
  if [ -n "$tmp" ]; then
    for log in "$tmp/api.log" "$tmp/kms.log" "$tmp/floor.log" "$tmp/pg/postgres.log" "$tmp/step.log"; do
      [ -s "$log" ] && { echo "--- last lines of $log" >&2; tail -n 15 "$log" >&2; }
    done
  fi
  exit "$status"
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM ERR
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ ${#pg_ctl_cmd[@]} -gt 0 ]; then "${pg_ctl_cmd[@]}" stop -m fast >/dev/null 2>&1 || true; fi
  if [ -n "$tmp" ]; then
    if [ "$keep" = 1 ]; then echo "bench: kept $tmp" >&2; else rm -rf "$tmp"; fi
  fi
  exit "$status"
}
trap 'on_error $LINENO' ERR
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. build --------------------------------------------------------------------------------
step "building release binaries (kms, credentials-api, bench-floor, loadgen)"
cargo build --release --quiet -p kms -p credentials-api -p bench-floor -p loadgen
bin=${CARGO_TARGET_DIR:-$root/target}/release
for b in kms credentials-api bench-floor loadgen; do [ -x "$bin/$b" ] || { echo "bench: $bin/$b missing" >&2; exit 1; }; done

# Short, because Unix socket paths are limited to ~107 bytes.
tmp=$(mktemp -d /tmp/vault-bench.XXXXXX)
chmod 711 "$tmp"
results=$tmp/results
mkdir -p "$results"
helper=$tmp/bench.py

# --- 2. Postgres -----------------------------------------------------------------------------
step "starting a throwaway Postgres (fsync on, synchronous_commit on)"
pg_bin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")")
pgbench=$pg_bin/pgbench; [ -x "$pgbench" ] || pgbench=/usr/bin/pgbench
psql=$pg_bin/psql; [ -x "$psql" ] || psql=psql
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
pgdir=$tmp/pg
mkdir -p "$pgdir"
[ ${#as_pg[@]} -gt 0 ] && chown postgres "$pgdir"
pgport=5432
"${as_pg[@]}" "$pg_bin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 >"$tmp/step.log" 2>&1
pg_ctl_cmd=("${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pgdir/data")
# Only durability defaults matter for the comparison; they are spelled out so that a local
# postgresql.conf template cannot change them. No TCP: the socket lives in our directory.
"${pg_ctl_cmd[@]}" -l "$pgdir/postgres.log" -w -t 60 \
  -o "-k $pgdir -p $pgport -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=200" \
  start >"$tmp/step.log" 2>&1
pg_pid=$(head -n 1 "$pgdir/data/postmaster.pid")
sql() { "$psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p "$pgport" -U postgres "$@"; }
sql -d postgres -c "CREATE DATABASE vault" -c "CREATE DATABASE pgbench"
export DATABASE_URL="host=$pgdir port=$pgport user=postgres dbname=vault"

# --- 3. kms and credentials-api --------------------------------------------------------------
step "starting kms and credentials-api (release)"
"$bin/kms" keyring create --file "$tmp/keyring.json" >"$tmp/step.log" 2>&1
(umask 077; head -c 48 /dev/urandom | base64 >"$tmp/jwt-secret")
"$bin/kms" serve --keyring "$tmp/keyring.json" --socket "$tmp/kms.sock" 2>>"$tmp/kms.log" &
kms_pid=$!
pids+=("$kms_pid")
# Starts a credentials-api with the bench's flags, then BENCH_API_ARGS, then "$@" (logging to
# $1), and waits until it is ready: sets started_pid and started_target.
start_api() {
  local log=$1 what=$2; shift 2
  # shellcheck disable=SC2086 # BENCH_API_ARGS is meant to be word-split.
  "$bin/credentials-api" serve --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --kms-endpoint "unix://$tmp/kms.sock" \
    --jwt-hs256-secret-file "$tmp/jwt-secret" \
    --access-rate-limit 0/s --probe-rate-limit 0/s ${BENCH_API_ARGS:-} "$@" 2>>"$log" &
  started_pid=$!
  pids+=("$started_pid")
  for _ in $(seq 600); do
    grep -q '"message":"ready' "$log" 2>/dev/null && break
    kill -0 "$started_pid" 2>/dev/null || { echo "bench: $what exited" >&2; tail -n 20 "$log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '"message":"ready' "$log" || { echo "bench: $what not ready after 60 s" >&2; tail -n 20 "$log" >&2; exit 1; }
  local addr
  addr=$(grep '"message":"listening"' "$log" | head -n 1 | sed -n 's/.*"address":"\([^"]*\)".*/\1/p')
  [ -n "$addr" ] || { echo "bench: no listening address in the log of $what" >&2; exit 1; }
  started_target=http://$addr
  addr=$(grep '"message":"HTTP/JSON listening"' "$log" | head -n 1 | sed -n 's/.*"address":"\([^"]*\)".*/\1/p')
  [ -n "$addr" ] || { echo "bench: no HTTP/JSON address in the log of $what" >&2; exit 1; }
  started_http=http://$addr
}

start_api "$tmp/api.log" credentials-api
api_pid=$started_pid target=$started_target http_target=$started_http
echo "credentials-api on $target and $http_target (pid $api_pid), kms pid $kms_pid, postgres pid $pg_pid" >&2

# A second API on the same database and kms with the data-key cache off, for access-nocache:
# the same build and flags but --data-key-cache-max-age 0, so every access asks the kms.
start_api "$tmp/api-nocache.log" "the cache-off credentials-api" \
  --no-migrate --rewrap-interval 0 --data-key-cache-max-age 0
nocache_pid=$started_pid nocache_target=$started_target
echo "credentials-api with the data-key cache off on $nocache_target (pid $nocache_pid)" >&2

# loadgen against the API (or, for one point, the API in $point_target).
lg() { "$bin/loadgen" --target "${point_target:-$target}" --hs256-secret-file "$tmp/jwt-secret" "$@"; }

step "starting bench-floor (release) on the same database"
# After the API, whose start applied the migrations the floor reads through.
"$bin/bench-floor" --listen 127.0.0.1:0 2>>"$tmp/floor.log" &
floor_pid=$!
pids+=("$floor_pid")
for _ in $(seq 100); do
  grep -q '^bench-floor: listening on ' "$tmp/floor.log" 2>/dev/null && break
  kill -0 "$floor_pid" 2>/dev/null || { echo "bench: bench-floor exited" >&2; cat "$tmp/floor.log" >&2; exit 1; }
  sleep 0.1
done
floor_addr=$(sed -n 's/^bench-floor: listening on //p' "$tmp/floor.log" | head -n 1)
[ -n "$floor_addr" ] || { echo "bench: bench-floor did not print its address" >&2; cat "$tmp/floor.log" >&2; exit 1; }
floor_target=http://$floor_addr
echo "bench-floor on $floor_target (pid $floor_pid)" >&2

# --- 4. seeds --------------------------------------------------------------------------------
step "seeding $point_seed credentials across $workspaces workspaces (through the API)"
lg --workspace-prefix bench --workspaces "$workspaces" --seed "$point_seed" --seed-only --seed-concurrency 16 \
  | tee "$results/seed-points.txt" >&2

step "seeding the list workspace with $list_rows credentials ($list_seed)"
if [ "$list_seed" = api ]; then
  lg --workspace bench-list --seed "$list_rows" --seed-only --seed-concurrency 32 | tee "$results/seed-list.txt" >&2
  list_seed_note="All $list_rows credentials of the list workspace were created through the API"
else
  lg --workspace bench-list --seed 1 --seed-only >"$results/seed-list.txt"
  # Copies of one real row with new ids, names and creation times. Their ciphertexts are bound
  # to the original's id, so they would not decrypt: fine for list, which never decrypts.
  sql -d vault <<SQL
INSERT INTO credentials (id, workspace_id, name, category, type_id, description, masked_content,
    is_default, ciphertext, nonce, wrapped_key, master_key_id, master_key_version, payload_format,
    value_generation, created_at, updated_at)
SELECT gen_random_uuid(), c.workspace_id, 'bulk-' || g, c.category, c.type_id, c.description,
    c.masked_content, false, c.ciphertext, c.nonce, c.wrapped_key, c.master_key_id,
    c.master_key_version, c.payload_format, c.value_generation,
    c.created_at - make_interval(secs => g / 1000.0), c.updated_at - make_interval(secs => g / 1000.0)
FROM credentials c, generate_series(1, $((list_rows - 1))) AS g
WHERE c.workspace_id = 'bench-list';
SQL
  list_seed_note="The list workspace holds 1 credential created through the API and $((list_rows - 1)) SQL copies of it (new ids, names and creation times; list never decrypts, and the copies would not decrypt)"
fi
echo "note: $list_seed_note" >&2
sql -d vault -c "VACUUM (ANALYZE) credentials" -c "SELECT count(*) AS list_workspace_rows FROM credentials WHERE workspace_id = 'bench-list'" >&2

if [ "$only" != scale ]; then
step "pgbench -i -s $pgbench_scale, and the single-row insert table"
"$pgbench" -i -q -s "$pgbench_scale" -h "$pgdir" -p "$pgport" -U postgres pgbench >"$tmp/step.log" 2>&1
sql -d pgbench -c "CREATE TABLE bench_insert (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, workspace_id text NOT NULL, n bigint NOT NULL, payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
cat >"$tmp/insert.sql" <<'SQL'
\set n random(1, 1000000000)
INSERT INTO bench_insert (workspace_id, n, payload) VALUES ('bench', :n, 'sk-lg-0123456789abcdefghijklmnopqrstuvwxyzABCD');
SQL
fi
sql -d postgres -c "CHECKPOINT"

# --- 5. helper: CPU snapshots, pgbench logs, the report --------------------------------------
cat >"$helper" <<'PY'
import json, math, os, sys, time, glob

HZ = os.sysconf("SC_CLK_TCK")

def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    # rest[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17, ppid=4
    return int(rest[1]), [int(x) for x in rest[11:15]]

def snapshot(api, kms, pg):
    def own(pid):
        try:
            _, t = proc_stat(pid)
            return (t[0] + t[1]) / HZ
        except OSError:
            return None
    pg_total = 0.0
    try:
        _, t = proc_stat(pg)
        pg_total = sum(t) / HZ   # the postmaster plus every child it has reaped
    except OSError:
        pass
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid, t = proc_stat(d)
            except OSError:
                continue
            if ppid == int(pg):
                pg_total += (t[0] + t[1]) / HZ
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    idle = cpu[3] + (cpu[4] if len(cpu) > 4 else 0)
    return {"t": time.monotonic(), "api": own(api), "kms": own(kms), "pg": pg_total,
            "busy": (sum(cpu[:8]) - idle) / HZ, "all": sum(cpu[:8]) / HZ}

def nearest_rank(sorted_values, per_mille):
    n = len(sorted_values)
    rank = min(max(-(-per_mille * n // 1000), 1), n)
    return sorted_values[rank - 1]

def pgbench_log(directory, warmup):
    # Lines: client_id transaction_no latency_us script_no epoch_s epoch_us. Requests that
    # started within the warm-up are dropped, as loadgen does.
    rows = []
    for path in glob.glob(os.path.join(directory, "tx.*")):
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) < 6:
                    continue
                done = int(p[4]) * 1_000_000 + int(p[5])
                lat = int(p[2])
                rows.append((done - lat, done, lat))
    if not rows:
        raise SystemExit(f"no pgbench transactions logged in {directory}")
    t0 = min(r[0] for r in rows)
    warm_end = t0 + warmup * 1_000_000
    measured = [r for r in rows if r[0] >= warm_end]
    lats = sorted(r[2] for r in measured)
    window = (max(r[1] for r in measured) - warm_end) / 1e6 if measured else 0.0
    failed = 0
    with open(os.path.join(directory, "out.txt")) as f:
        out = f.read()
    reported_tps = None
    for line in out.splitlines():
        if line.startswith("tps = "):
            reported_tps = float(line.split()[2])
        if line.startswith("number of failed transactions:"):
            failed = int(line.split(":")[1].split()[0])
    ms = lambda us: round(us / 1000.0, 6)
    lat = None
    if lats:
        lat = {"count": len(lats), "min": ms(lats[0]), "mean": ms(sum(lats) / len(lats)),
               "p50": ms(nearest_rank(lats, 500)), "p90": ms(nearest_rank(lats, 900)),
               "p99": ms(nearest_rank(lats, 990)), "p999": ms(nearest_rank(lats, 999)),
               "max": ms(lats[-1])}
    total = {"op": "total", "ok": len(lats), "errors": {"FAILED": failed} if failed else {},
             "error_count": failed, "throughput_rps": round(len(lats) / window, 1) if window else 0.0,
             "latency_ms": lat}
    return {"window_s": window, "pgbench_reported_tps": reported_tps, "total": total, "ops": [total]}

def fmt(x, digits=2):
    if x is None:
        return "-"
    return f"{x:.{digits}f}"

def runs_cell(values, digits=2):
    return " / ".join(fmt(v, digits) for v in values)

def report(results, meta_path, out_path):
    meta = json.load(open(meta_path))
    points = {}
    for line in open(os.path.join(results, "points.tsv")):
        name, kind, rep, clients, base = line.split()
        data = json.load(open(base + ".json"))
        for suffix in ("cpu0", "cpu1", "mem"):
            p = f"{base}.{suffix}.json"
            data[suffix] = json.load(open(p)) if os.path.exists(p) else None
        points.setdefault((name, int(clients)), {})[int(rep)] = data
    reps = sorted({r for v in points.values() for r in v})
    clients = sorted({c for (_, c) in points})
    ceiling_of = {"access": "select", "get": "select", "http-get": "select", "list-page1": "select", "list-walk": "select",
                  "mix": "select", "access-nocache": "select", "access-wide": "select", "update": "insert", "create": "insert", "floor-get": "select",
                  "scale-access": "select", "scale-get": "select", "scale-list-page1": "select"}
    ceiling_name = {"select": "pgbench select-only (-S)", "insert": "pgbench single-row insert"}
    scenarios = ["floor-get", "access", "access-nocache", "access-wide", "get", "http-get", "list-page1", "list-walk", "update", "create", "mix",
                 "scale-access", "scale-get", "scale-list-page1"]
    scale_seed_path = os.path.join(results, "scale-seed.json")
    scale_seed = json.load(open(scale_seed_path)) if os.path.exists(scale_seed_path) else None

    def tput(d):
        return d["total"]["throughput_rps"] if d else None
    def lat(d, key):
        l = d and d["total"].get("latency_ms")
        return l[key] if l else None
    def errs(d):
        return d["total"]["error_count"] if d else None

    lines = []
    w = lines.append
    w("# Benchmarks")
    w("")
    w(f"Written by `scripts/bench.sh{' --smoke' if meta['smoke'] else ''}`; run it again to refresh this file. "
      "Numbers from a shared or busy machine are noise: compare runs of one invocation, not across machines.")
    w("")
    w("## Machine and run")
    w("")
    w("| what | value |")
    w("| --- | --- |")
    for k in ["date", "git_commit", "nproc", "memory", "cpu", "kernel", "postgres", "rustc", "mode",
              "per_point", "clients", "runs", "seeds", "scale_note", "total_time"]:
        if k == "scale_note" and not meta.get(k):
            continue
        w(f"| {'scale point' if k == 'scale_note' else k.replace('_', ' ')} | {meta.get(k, '-')} |")
    w("")
    w("## Method")
    w("")
    w("- One machine runs everything: Postgres (a fresh `initdb` cluster on a Unix socket, default "
      "durability: `fsync=on`, `synchronous_commit=on`, `full_page_writes=on`), the kms (Unix socket), "
      "credentials-api (release build, default flags) and the load generator (`loadgen`, release). "
      "The client competes with the services for the same cores, as pgbench does for the ceiling.")
    w(f"- Each point: {meta['warmup']} s warm-up (requests started in it are not counted), then "
      f"{meta['duration']} s measured. Throughput counts successful requests; latencies are exact "
      "nearest-rank percentiles of every successful request; errors are counted by status code.")
    w("- Every point runs at least twice, interleaved (all points of run 1, then run 2), and both "
      "runs are shown as `run1 / run2`.")
    w("- Ceiling: `pgbench -M prepared -n` against the same Postgres at the same client counts "
      "(`-j` = min(clients, 2)): select-only (`-S`, scale " + str(meta['pgbench_scale']) + ") and a "
      "single-row insert into a small table (one `INSERT` per transaction). pgbench's per-transaction "
      "log is cut at the same warm-up. Ratio = scenario throughput / ceiling throughput of the same run.")
    w("- Scenarios: `access` (AccessService plaintext by id, random seeded credential of the worker's "
      "workspace), `access-nocache` (the same against a second credentials-api on the same database "
      "and kms with `--data-key-cache-max-age 0`, so every access asks the kms), `access-wide` (access "
      "of a random one of the first " + str(meta.get('wide_ids', '-')) + " credentials of the list workspace: more than the "
      "data-key cache's 10,000, so it fills and churns; the API's memory is read with the cache full), `get`, `http-get` "
      "(the same get as `GET /v1/workspaces/{ws}/credentials/{id}` on the HTTP/JSON port, HTTP/1.1 keep-alive), `update` (new value, no etag), `create` (new name and value), `list-page1` "
      "(first page of 100 of the list workspace), `list-walk` (page_size 100, each walk follows "
      "next_page_token to a random depth, every page measured, reported by depth band), `mix` "
      "(access=90,create=10). Workers are spread over " + str(meta['workspaces']) + " workspaces.")
    w(f"- Seeds: {meta['seeds']}. {meta['list_seed_note']}.")
    w("- loadgen shares one HTTP/2 connection among up to 100 workers (its default; `--connections N` "
      "changes it). Measured when choosing it (a busy 2-core machine, 4 s points, three interleaved "
      "rounds): at 64 clients one shared connection gave 15-20k get/s and 4.1-5.3k access/s against "
      "10-12k and 3.5-4.8k with one connection per worker, and cost loadgen 22-26 instead of 27-33 µs "
      "of CPU per get; at 8 clients the two were within noise.")
    w("- Floor: `floor-get` is the `get` scenario (the same loadgen, flags, workspaces and ids) "
      "against `bench-floor`, a bare tonic + deadpool-postgres + tokio-postgres service that answers "
      "GetCredential with the API's own point select of the same rows and does nothing else (no auth, "
      "tracing, metrics, audit or limits): the limit of a gRPC service on this machine. Every scenario "
      "is also shown as a ratio to floor-get of the same run and client count (`of floor`). A floor "
      "run with any error fails the benchmark, so it cannot look fast by failing fast.")
    w("- The load generator shares the cores with the services (its CPU per request is in the last "
      "table), as pgbench does with Postgres; pgbench's C client costs less per transaction, which "
      "weighs on every ratio on a small machine.")
    w("")

    # Targets.
    w("## Targets")
    w("")
    targets = []
    def judge(ok, text):
        targets.append(("PASS" if ok else "MISS") + " " + text)
    jc = 8 if 8 in clients else clients[len(clients) // 2]
    def ratios(s, c):
        ceil = ceiling_of[s]
        out = []
        for r in reps:
            d = points.get((s, c), {}).get(r)
            cd = points.get((ceil, c), {}).get(r)
            if d and cd and tput(cd):
                out.append(tput(d) / tput(cd))
        return out
    def mean(xs):
        return sum(xs) / len(xs) if xs else None
    def worst_p99(s, c):
        xs = [lat(points[(s, c)][r], "p99") for r in reps if (s, c) in points and r in points[(s, c)]]
        xs = [x for x in xs if x is not None]
        return max(xs) if xs else None
    def of_floor(s, c):
        out = []
        for r in reps:
            d = points.get((s, c), {}).get(r)
            fd = points.get(("floor-get", c), {}).get(r)
            if d and fd and tput(fd):
                out.append(tput(d) / tput(fd))
        return out
    # The hot-path targets (to the gRPC floor of the same run), then the earlier ones (to pgbench).
    r = of_floor("get", jc)
    judge(mean(r) is not None and mean(r) >= 0.85,
          f"get at {jc} clients >= 85% of the floor: {runs_cell(r)} (mean {fmt(mean(r))})")
    for s, want, what in [("access", 0.60, "the data-key cache on"), ("access-nocache", 0.35, "the data-key cache off")]:
        r = of_floor(s, jc); p = worst_p99(s, jc)
        judge(mean(r) is not None and mean(r) >= want and p is not None and p < 3,
              f"{s} at {jc} clients >= {int(want * 100)}% of the floor with {what}, p99 < 3 ms: {runs_cell(r)} (mean {fmt(mean(r))}), worst p99 {fmt(p, 3)} ms")
    r = ratios("create", jc)
    judge(mean(r) is not None and mean(r) >= 0.30,
          f"create at {jc} clients >= 0.30 of pgbench single-row insert (2x the 0.15 before issue 13): ratio {runs_cell(r)} (mean {fmt(mean(r))})")
    r = ratios("access", jc); p = worst_p99("access", jc)
    judge(mean(r) is not None and mean(r) >= 0.25 and p is not None and p < 5,
          f"access at {jc} clients >= 25% of pgbench select-only with p99 < 5 ms: ratio {runs_cell(r)} (mean {fmt(mean(r))}), worst p99 {fmt(p, 3)} ms")
    r = ratios("get", jc)
    judge(mean(r) is not None and mean(r) >= 0.35,
          f"get at {jc} clients >= 35% of pgbench select-only: ratio {runs_cell(r)} (mean {fmt(mean(r))})")
    r = ratios("create", jc)
    judge(mean(r) is not None and mean(r) >= 0.40,
          f"create at {jc} clients >= 40% of pgbench single-row insert: ratio {runs_cell(r)} (mean {fmt(mean(r))})")
    bands = {}
    for rep in reps:
        first = points.get(("list-page1", jc), {}).get(rep)
        if first and first["total"].get("latency_ms"):
            bands["page 1"] = max(bands.get("page 1", 0), first["total"]["latency_ms"]["p99"])
        walk = points.get(("list-walk", jc), {}).get(rep)
        for row in (walk or {}).get("ops", []):
            if row["op"].startswith("list ") and row.get("latency_ms"):
                band = row["op"][len("list "):]
                bands[band] = max(bands.get(band, 0), row["latency_ms"]["p99"])
    worst = max(bands.values()) if bands else None
    judge(worst is not None and worst < 10,
          f"list of a page of 100 from a workspace of {meta['list_rows']} credentials, p99 < 10 ms at every depth ({jc} clients): "
          + ", ".join(f"{k} {fmt(v, 3)} ms" for k, v in bands.items()))
    mems = [points[k][r]["mem"] for k in points if k[0] in ("access", "access-wide") for r in points[k] if points[k][r].get("mem")]
    api_peak = max((m["api_hwm_kib"] for m in mems), default=None)
    kms_peak = max((m["kms_hwm_kib"] for m in mems), default=None)
    judge(api_peak is not None and api_peak < 64 * 1024,
          f"credentials-api resident memory during the access runs < 64 MiB: peak VmHWM {fmt(api_peak and api_peak / 1024, 1)} MiB")
    judge(kms_peak is not None and kms_peak < 32 * 1024,
          f"kms resident memory during the access runs < 32 MiB: peak VmHWM {fmt(kms_peak and kms_peak / 1024, 1)} MiB")
    # The scale point: each of the three on the same rows, the worst run after the growth against
    # the worst run before it.
    scale_ops = ("access", "get", "list-page1")
    def scale_p99s(s):
        return ([lat(points.get((s, 8), {}).get(r), "p99") for r in reps],
                [lat(points.get(("scale-" + s, 8), {}).get(r), "p99") for r in reps])
    def worst_ratio(before, after):
        b = [x for x in before if x is not None]
        a = [x for x in after if x is not None]
        return max(a) / max(b) if a and b and max(b) else None
    if scale_seed:
        if meta["only"] == "scale":
            targets.clear()   # the other targets need the points this run left out
        parts, ok = [], True
        for s in scale_ops:
            before, after = scale_p99s(s)
            q = worst_ratio(before, after)
            ok = ok and q is not None and q <= 1.2
            parts.append(f"{s} {fmt(max((x for x in before if x is not None), default=None), 3)} -> "
                         f"{fmt(max((x for x in after if x is not None), default=None), 3)} ms ({fmt(q)})")
        judge(ok, f"access, get and list page 1 p99 at 8 clients with {meta['scale']} credentials in "
              f"{meta['scale_workspaces']} workspaces within 20% of the {meta['point_seed']}-credential run "
              "(worst run against worst run): " + ", ".join(parts))
    w("Judged on the mean ratio of the runs and the worst p99 of the runs. No timing is asserted by CI.")
    w("")
    w("```")
    for t in targets:
        w(t)
    w("```")
    w("")

    # Results.
    w("## Results")
    w("")
    w("Each cell: run 1 / run 2 (/ run 3 ...). Latencies in ms.")
    w("")
    w("| scenario | clients | ok/s | p50 | p90 | p99 | p99.9 | max | errors | ceiling | ceiling/s | ratio | floor-get/s | of floor |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for s in scenarios:
        for c in clients:
            if (s, c) not in points:
                continue
            ds = [points[(s, c)].get(r) for r in reps]
            ceil = ceiling_of[s]
            cs = [points.get((ceil, c), {}).get(r) for r in reps]
            rs = [tput(d) / tput(cd) if d and cd and tput(cd) else None for d, cd in zip(ds, cs)]
            fs = [points.get(("floor-get", c), {}).get(r) for r in reps]
            frs = [tput(d) / tput(fd) if d and fd and tput(fd) else None for d, fd in zip(ds, fs)]
            w(f"| {s} | {c} | {runs_cell([tput(d) for d in ds], 0)} | "
              + " | ".join(runs_cell([lat(d, k) for d in ds], 3) for k in ("p50", "p90", "p99", "p999", "max"))
              + f" | {' / '.join(str(errs(d)) for d in ds)} | {ceil} | {runs_cell([tput(cd) for cd in cs], 0)} | {runs_cell(rs)}"
              + f" | {runs_cell([tput(fd) for fd in fs], 0)} | {runs_cell(frs)} |")
    w("")
    err_codes = {}
    for (s, c), byrep in points.items():
        for rep, d in byrep.items():
            for code, n in d["total"].get("errors", {}).items():
                err_codes.setdefault(f"{s} at {c} clients, run {rep}", []).append(f"{code} {n}")
    if err_codes:
        w("Errors by status code: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(err_codes.items())) + ".")
        w("")

    w("### Ceiling (pgbench on the same Postgres)")
    w("")
    w("| test | clients | tps | p50 | p99 | max | pgbench's own tps (incl. warm-up) |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for ceil in ("select", "insert"):
        for c in clients:
            ds = [points.get((ceil, c), {}).get(r) for r in reps]
            if not any(ds):
                continue
            w(f"| {ceiling_name[ceil]} | {c} | {runs_cell([tput(d) for d in ds], 0)} | "
              + " | ".join(runs_cell([lat(d, k) for d in ds], 3) for k in ("p50", "p99", "max"))
              + f" | {runs_cell([d and d.get('pgbench_reported_tps') for d in ds], 0)} |")
    w("")

    w("### List by page depth (list-walk)")
    w("")
    w("| clients | pages | requests | p50 | p99 | max |")
    w("| ---: | --- | ---: | ---: | ---: | ---: |")
    for c in clients:
        byrep = points.get(("list-walk", c), {})
        names = []
        for d in byrep.values():
            for row in d["ops"]:
                if row["op"] != "list" and row["op"] not in names:
                    names.append(row["op"])
        for name in names:
            rows = [next((x for x in byrep[r]["ops"] if x["op"] == name), None) if r in byrep else None for r in reps]
            l = lambda x, k: x["latency_ms"][k] if x and x.get("latency_ms") else None
            w(f"| {c} | {name.replace('list ', '')} | {' / '.join(str(x['ok']) if x else '-' for x in rows)} | "
              + " | ".join(runs_cell([l(x, k) for x in rows], 3) for k in ("p50", "p99", "max")) + " |")
    w("")

    if scale_seed:
        w("### Scale point")
        w("")
        w(f"access, get and list page 1 at 8 clients on the same rows, before and after the table grew to "
          f"{meta['scale']} credentials in {meta['scale_workspaces']} workspaces: the {meta['scale_point_rows']} "
          f"credentials of the point workspaces, created through the API, and {meta['scale_filler']} filler rows written by "
          f"SQL into {meta['scale_fill_workspaces']} workspaces `bench-fill-*`, each with its create event "
          f"in the audit log ({meta['scale_seed_s']} s to write, vacuum and analyze). Filler rows copy a "
          "point row's envelope under names and ids of their own; their encryption context (workspace "
          "and id) no longer matches, so they never open: the measured requests touch only rows "
          "created through the API, while the table, its indexes and the audit log have the size of "
          "the scale point. After the seed the API listed and got filler rows without an error, and "
          "stayed SERVING (every key version in use is one the kms holds). \"before\" is the "
          "standard points at 8 clients of the same run (measured just before the growth when the "
          "run left them out).")
        w("")
        w(f"After the growth: {scale_seed['credentials']} credentials in the table ({scale_seed['workspaces']} "
          f"workspaces, the list workspace and the create points' rows included), "
          f"{scale_seed['credentials_bytes'] / 2**20:.0f} MiB with indexes; {scale_seed['audit_events']} "
          f"audit events, {scale_seed['audit_events_bytes'] / 2**20:.0f} MiB.")
        w("")
        w("| scenario | clients | ok/s before | ok/s after | p99 before | p99 after | p99 ratio | worst / worst |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for s in scale_ops:
            before, after = scale_p99s(s)
            per_run = [a / b if a is not None and b else None for b, a in zip(before, after)]
            w(f"| {s} | 8 | {runs_cell([tput(points.get((s, 8), {}).get(r)) for r in reps], 0)} | "
              f"{runs_cell([tput(points.get(('scale-' + s, 8), {}).get(r)) for r in reps], 0)} | "
              f"{runs_cell(before, 3)} | {runs_cell(after, 3)} | {runs_cell(per_run)} | {fmt(worst_ratio(before, after))} |")
        w("")

    w("### Resident memory during the access runs")
    w("")
    w("VmHWM is the peak since the reset just before the run (`/proc/PID/clear_refs`), VmRSS the value at its end.")
    w("")
    w("| scenario | clients | run | credentials-api VmHWM | VmRSS | kms VmHWM | VmRSS |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in ["access", "access-wide"]:
      for c in clients:
        for r in reps:
            d = points.get((s, c), {}).get(r)
            m = d and d.get("mem")
            if m:
                w(f"| {s} | {c} | {r} | {m['api_hwm_kib']/1024:.1f} MiB | {m['api_rss_kib']/1024:.1f} MiB | "
                  f"{m['kms_hwm_kib']/1024:.1f} MiB | {m['kms_rss_kib']/1024:.1f} MiB |")
    if mems and not all(m.get("hwm_reset") for m in mems):
        w("")
        w("(VmHWM could not be reset here: it is the peak since the process started, seeding included.)")
    w("")

    w("### Where the CPU goes")
    w("")
    w("CPU time per successful request, from /proc between the end of the warm-up and the end of the point "
      "(Postgres: the postmaster and all its children). Machine busy: share of all cores.")
    w("")
    w("| scenario | clients | credentials-api (floor-get: bench-floor) µs/req | kms µs/req | postgres µs/req | loadgen µs/req | machine busy |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in ["select", "insert"] + scenarios:
        for c in clients:
            cells = {"api": [], "kms": [], "pg": [], "lg": [], "busy": []}
            for r in reps:
                d = points.get((s, c), {}).get(r)
                if not d or not d.get("cpu0") or not d.get("cpu1") or not d["total"]["ok"]:
                    for k in cells: cells[k].append(None)
                    continue
                a, b = d["cpu0"], d["cpu1"]
                wall = b["t"] - a["t"]
                n = d["total"]["throughput_rps"] * wall
                per = lambda k: (b[k] - a[k]) * 1e6 / n if n and a.get(k) is not None and b.get(k) is not None else None
                cells["api"].append(per("api") if s not in ("select", "insert") else None)
                cells["kms"].append(per("kms") if s not in ("select", "insert", "floor-get") else None)
                cells["pg"].append(per("pg"))
                cells["lg"].append(d["client_cpu_s"] * 1e6 / d["total"]["ok"] if d.get("client_cpu_s") is not None else None)
                all_ = b["all"] - a["all"]
                cells["busy"].append(100 * (b["busy"] - a["busy"]) / all_ if all_ else None)
            if (s, c) in points:
                name = ceiling_name.get(s, s)
                w(f"| {name} | {c} | {runs_cell(cells['api'], 0)} | {runs_cell(cells['kms'], 0)} | "
                  f"{runs_cell(cells['pg'], 0)} | {runs_cell(cells['lg'], 0)} | {runs_cell(cells['busy'], 0)}% |")
    w("")
    text = "\n".join(lines) + "\n"
    with open(out_path, "w") as f:
        f.write(text)
    print(text)

def summary(path):
    t = json.load(open(path))["total"]
    l = t.get("latency_ms") or {}
    return (f"{t['throughput_rps']:>9.0f}/s  p50 {l.get('p50', 0):.3f} ms  "
            f"p99 {l.get('p99', 0):.3f} ms  errors {t['error_count']}")

def mem(api, kms, reset):
    def status(pid):
        out = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    out[k] = int(v.split()[0])
        return out
    a, k = status(api), status(kms)
    return {"api_hwm_kib": a["VmHWM"], "api_rss_kib": a["VmRSS"], "kms_hwm_kib": k["VmHWM"],
            "kms_rss_kib": k["VmRSS"], "hwm_reset": reset == "1"}

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "snapshot":
        print(json.dumps(snapshot(*sys.argv[2:5])))
    elif cmd == "pgbench-log":
        print(json.dumps(pgbench_log(sys.argv[2], int(sys.argv[3]))))
    elif cmd == "mem":
        print(json.dumps(mem(*sys.argv[2:5])))
    elif cmd == "summary":
        print(summary(sys.argv[2]))
    elif cmd == "report":
        report(*sys.argv[2:5])
    else:
        raise SystemExit(f"unknown command {cmd}")
PY

# The server under test takes the API's place in the CPU figures (bench-floor for floor-get).
snapshot() { python3 "$helper" snapshot "${server_pid:-$api_pid}" "$kms_pid" "$pg_pid"; }

# Errors are findings, not failures, except when so many fail that the numbers mean nothing
# (or, in smoke mode, when the tooling itself is broken).
if [ "$smoke" = 1 ]; then max_err=0.05; else max_err=0.5; fi

# One point: a loadgen scenario or a pgbench ceiling, with CPU snapshots around the measured
# window and, for access, the services' resident memory.
run_point() {
  local name=$1 rep=$2 c=$3; shift 3
  local base=$results/$name-c$c-r$rep
  printf '%-16s clients %-3s run %s ... ' "$name" "$c" "$rep" >&2
  server_pid=$api_pid point_target=$target
  if [ "$name" = floor-get ]; then server_pid=$floor_pid; fi
  if [ "$name" = access-nocache ]; then server_pid=$nocache_pid point_target=$nocache_target; fi
  : >"$tmp/api.log"   # opened for appending: truncating keeps it small over a long run
  : >"$tmp/api-nocache.log"
  (sleep "$warmup"; snapshot >"$base.cpu0.json") &
  local snap=$!
  local reset=0
  if [ "$name" = access ] || [ "$name" = access-wide ]; then
    # Resets VmHWM to the current RSS, so the peak read afterwards is this run's.
    if echo 5 >"/proc/$api_pid/clear_refs" 2>/dev/null && echo 5 >"/proc/$kms_pid/clear_refs" 2>/dev/null; then reset=1; fi
  fi
  case $name in
    select|insert)
      local dir=$base.pgbench j=$(( c < 2 ? c : 2 ))
      local script=(-S); [ "$name" = insert ] && script=(-f "$tmp/insert.sql")
      mkdir -p "$dir"
      (cd "$dir" && "$pgbench" -h "$pgdir" -p "$pgport" -U postgres -n -M prepared "${script[@]}" \
        -c "$c" -j "$j" -T $((warmup + duration)) -l --log-prefix=tx pgbench >out.txt 2>err.txt) \
        || { echo "pgbench failed:" >&2; cat "$dir/err.txt" "$dir/out.txt" >&2; return 1; }
      python3 "$helper" pgbench-log "$dir" "$warmup" >"$base.json"
      rm -f "$dir"/tx.*
      ;;
    floor-get)
      # Same loadgen, same flags as get; only the ids are listed on the API (the floor answers
      # GetCredential alone). Not one error is allowed, nor a run without a success.
      "$bin/loadgen" --target "$floor_target" --discover-from "$target" --hs256-secret-file "$tmp/jwt-secret" \
        -c "$c" -d "${duration}s" --warmup "${warmup}s" --json --label "$name" \
        --max-error-rate 0 "$@" >"$base.json" \
        || { echo "bench: the floor's run failed (loadgen exit $?): the floor must answer every get" >&2; return 1; }
      python3 - "$base.json" <<'PY' || return 1
import json, sys
t = json.load(open(sys.argv[1]))["total"]
if t["error_count"] or not t["ok"]:
    raise SystemExit(f"bench: the floor answered {t['ok']} gets and {t['error_count']} errors {t.get('errors')}: it must answer every get")
PY
      ;;
    *)
      lg -c "$c" -d "${duration}s" --warmup "${warmup}s" --json --label "$name" \
        --max-error-rate "$max_err" "$@" >"$base.json"
      ;;
  esac
  wait "$snap"
  snapshot >"$base.cpu1.json"
  # The insert ceiling leaves a lot of WAL behind; without a checkpoint here (outside every
  # measured window), the one it triggers lands in the next point (access) as its Postgres CPU.
  if [ "$name" = insert ]; then sql -d postgres -c CHECKPOINT; fi
  if [ "$name" = access ] || [ "$name" = access-wide ]; then python3 "$helper" mem "$api_pid" "$kms_pid" "$reset" >"$base.mem.json"; fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" point "$rep" "$c" "$base" >>"$results/points.tsv"
  python3 "$helper" summary "$base.json" >&2
}

# --- 6. the points ---------------------------------------------------------------------------
if [ "$only" = scale ]; then points_per_run=0; else points_per_run=$(( 13 * $(wc -w <<<"$clients") )); fi
[ "$points_per_run" = 0 ] || step "running $points_per_run points x $runs runs, $((warmup + duration)) s each (about $(( points_per_run * runs * (warmup + duration + 1) / 60 + 1 )) min)"
for rep in $(seq "$runs"); do
  [ "$points_per_run" -gt 0 ] || break
  for c in $clients; do
    run_point select "$rep" "$c"
    run_point insert "$rep" "$c"
    run_point access "$rep" "$c" --op access --workspace-prefix bench --workspaces "$workspaces"
    run_point access-nocache "$rep" "$c" --op access --workspace-prefix bench --workspaces "$workspaces"
    # Reads spread over more credentials than the data-key cache holds: it fills and churns,
    # and the API's resident memory is taken with the cache full.
    run_point access-wide "$rep" "$c" --op access --workspace bench-list --pick-from "$wide_ids"
    run_point get "$rep" "$c" --op get --workspace-prefix bench --workspaces "$workspaces"
    # The same get over the HTTP/JSON port (HTTP/1.1 keep-alive, one connection per worker).
    run_point http-get "$rep" "$c" --op http-get --http-target "$http_target" --workspace-prefix bench --workspaces "$workspaces"
    run_point floor-get "$rep" "$c" --op get --workspace-prefix bench --workspaces "$workspaces"
    run_point list-page1 "$rep" "$c" --op list --workspace bench-list --page-size 100
    run_point list-walk "$rep" "$c" --op list --workspace bench-list --page-size 100 --list-depth "$list_depth"
    run_point update "$rep" "$c" --op update --workspace-prefix bench --workspaces "$workspaces"
    # New credentials go to workspaces of their own, so the read scenarios of the next run
    # still see the seeded workspaces as they were.
    run_point create "$rep" "$c" --op create --workspace-prefix bench-new --workspaces "$workspaces"
    run_point mix "$rep" "$c" --mix access=90,create=10 --workspace-prefix bench --workspaces "$workspaces"
  done
done

# --- 7. the scale point ----------------------------------------------------------------------
# Growing the table cannot be undone within a run, so the scale point comes last. It compares
# access, get and list page 1 at 8 clients on the same rows before and after the growth;
# "before" is the standard points at 8 clients when they ran, else measured here first.
scale_points() {
  local prefix=$1 rep
  for rep in $(seq "$runs"); do
    run_point "${prefix}access" "$rep" 8 --op access --workspace-prefix bench --workspaces "$workspaces"
    run_point "${prefix}get" "$rep" 8 --op get --workspace-prefix bench --workspaces "$workspaces"
    run_point "${prefix}list-page1" "$rep" 8 --op list --workspace bench-list --page-size 100
  done
}
scale_seed_s=0 scale_point_rows=0 scale_note="none (--scale 0)"
if [ "$scale" -gt 0 ]; then
  if [ "$only" = scale ] || ! grep -qw 8 <<<"$clients"; then
    step "the scale point's baseline: access, get and list page 1 at 8 clients before the growth"
    scale_points ""
  fi

  step "growing the table to $scale credentials in $scale_workspaces workspaces with filler rows by SQL"
  # Filler can only be copies: a real row's ciphertext and wrapped key are bound to its own
  # workspace and id (the encryption context), so no row written by SQL could ever open, and a
  # million creates through the API would take longer than the rest of the benchmark. The
  # measured points touch only the rows created through the API; the filler gives the table,
  # its indexes and the audit log their size. Each filler row copies a point row's envelope
  # (the same master key and version, so the keyring check still finds every version in use;
  # opening one fails on its context and never yields the original's secret), takes a name
  # and an id of its own, is not a default, and gets its create event in the same statement,
  # as the API's audited changes do.
  seed_start=$(date +%s)
  : >"$tmp/api.log"
  # The mix points create credentials in the point workspaces too: the filler makes up the rest.
  scale_point_rows=$(sql -d vault -At -c "SELECT count(*) FROM credentials WHERE workspace_id ~ '^bench-[0-9]+\$' AND deleted_at IS NULL")
  scale_filler=$(( scale - scale_point_rows ))
  [ "$scale_filler" -gt 0 ] || { echo "bench: the point workspaces already hold $scale_point_rows credentials, not fewer than --scale $scale" >&2; exit 1; }
  chunk=100000
  {
    cat <<SQL
CREATE TEMP TABLE scale_templates AS
  SELECT row_number() OVER (ORDER BY id) - 1 AS k, c.*
  FROM credentials c WHERE workspace_id ~ '^bench-[0-9]+\$' AND deleted_at IS NULL;
CREATE TEMP TABLE scale_event AS
  SELECT e.actor, e.action, e.outcome, e.status_code FROM audit_events e
  WHERE e.credential_id = (SELECT id FROM scale_templates WHERE k = 0) AND e.action = 1 AND e.outcome = 1
  ORDER BY e.id LIMIT 1;
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM scale_templates) OR NOT EXISTS (SELECT 1 FROM scale_event) THEN
    RAISE EXCEPTION 'no point credential with its create event to copy';
  END IF;
END \$\$;
SELECT count(*) AS templates FROM scale_templates \\gset
SQL
    for lo in $(seq 0 "$chunk" $(( scale_filler - 1 ))); do
      hi=$(( lo + chunk - 1 )); [ "$hi" -lt "$scale_filler" ] || hi=$(( scale_filler - 1 ))
      cat <<SQL
\\echo filler rows $lo..$hi
WITH c AS (
  INSERT INTO credentials (id, workspace_id, name, category, type_id, description, masked_content,
      is_default, ciphertext, nonce, wrapped_key, master_key_id, master_key_version, payload_format,
      value_generation, created_at, updated_at)
  SELECT gen_random_uuid(), 'bench-fill-' || (g % $scale_fill_workspaces), 'fill-' || g, t.category,
      t.type_id, t.description, t.masked_content, false, t.ciphertext, t.nonce, t.wrapped_key,
      t.master_key_id, t.master_key_version, t.payload_format, t.value_generation,
      now() - make_interval(secs => g), now() - make_interval(secs => g)
  FROM generate_series($lo, $hi) AS g JOIN scale_templates t ON t.k = g % :templates
  RETURNING id, workspace_id, created_at)
INSERT INTO audit_events (workspace_id, credential_id, actor, action, outcome, status_code, request_id, occurred_at)
SELECT c.workspace_id, c.id, e.actor, e.action, e.outcome, e.status_code, 'fill-' || c.id, c.created_at
FROM c, scale_event e;
SQL
    done
  } | sql -d vault >&2
  # Planner statistics and the visibility map as a settled table has them, and the seed's
  # dirty pages written out before anything is measured.
  sql -d vault -c "VACUUM (ANALYZE) credentials" -c "VACUUM (ANALYZE) audit_events"
  sql -d postgres -c "CHECKPOINT"
  scale_seed_s=$(( $(date +%s) - seed_start ))
  sql -d vault -At >"$results/scale-seed.json" <<'SQL'
SELECT json_build_object(
  'point_and_filler', (SELECT count(*) FROM credentials WHERE deleted_at IS NULL AND workspace_id ~ '^bench-(fill-)?[0-9]+$'),
  'point_and_filler_workspaces', (SELECT count(DISTINCT workspace_id) FROM credentials WHERE deleted_at IS NULL AND workspace_id ~ '^bench-(fill-)?[0-9]+$'),
  'credentials', (SELECT count(*) FROM credentials),
  'workspaces', (SELECT count(DISTINCT workspace_id) FROM credentials),
  'audit_events', (SELECT count(*) FROM audit_events),
  'credentials_bytes', pg_total_relation_size('credentials'),
  'audit_events_bytes', pg_total_relation_size('audit_events'))
SQL
  cat "$results/scale-seed.json" >&2
  python3 - "$results/scale-seed.json" "$scale" "$scale_workspaces" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n, ws = int(sys.argv[2]), int(sys.argv[3])
if d["point_and_filler"] != n or d["point_and_filler_workspaces"] != ws:
    raise SystemExit(f"bench: the scale seed made {d['point_and_filler']} credentials in "
                     f"{d['point_and_filler_workspaces']} workspaces, not {n} in {ws}")
PY
  # The readiness loop compares the key versions in use with the kms's keyring every 2 s; a
  # filler row naming a version the kms lacks would turn health NOT_SERVING (logged).
  sleep 3
  if grep -q '"message":"not ready' "$tmp/api.log"; then
    echo "bench: credentials-api went NOT_SERVING after the scale seed:" >&2
    grep '"message":"not ready' "$tmp/api.log" | tail -n 3 >&2
    exit 1
  fi
  # The API must read the filler as it reads its own rows: list and get them, without an error.
  lg --op get --workspace-prefix bench-fill --workspaces 10 -c 2 -d 1s --warmup 0s \
    --max-error-rate 0 --json --label scale-filler-get >"$results/scale-filler-get.json" \
    || { echo "bench: the API could not list or get the filler rows" >&2; exit 1; }
  echo "filler rows read through the API: $(python3 "$helper" summary "$results/scale-filler-get.json")" >&2

  step "the scale point: access, get and list page 1 at 8 clients on a table of $scale credentials"
  scale_points scale-
  scale_note="$scale credentials in $scale_workspaces workspaces: the $scale_point_rows credentials of the point workspaces (created through the API) and $scale_filler filler rows written by SQL into $scale_fill_workspaces workspaces bench-fill-* ($scale_seed_s s to write, vacuum and analyze)"
fi

# --- 8. report -------------------------------------------------------------------------------
[ -n "$out" ] || out=$(mktemp /tmp/vault-bench-smoke.XXXXXX.md)
step "writing $out"
mem_total=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain 2>/dev/null | wc -l)
[ "$dirty" -gt 0 ] && commit="$commit (+ $dirty uncommitted changes)"
elapsed=$(( $(date +%s) - started_at ))
export BM_NPROC BM_DATE BM_COMMIT BM_MODE BM_SEEDS BM_LIST_NOTE BM_TOTAL BM_CPU BM_MEM BM_PG BM_RUSTC BM_WIDE_IDS
BM_NPROC=$(nproc)
BM_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
BM_COMMIT=$commit
BM_MEM=$mem_total
BM_CPU=${cpu_model:-unknown}
BM_PG=$("$pg_bin/postgres" --version)
BM_RUSTC=$(rustc --version 2>/dev/null || echo unknown)
if [ "$smoke" = 1 ]; then BM_MODE="smoke (tiny: checks the tooling, the numbers mean nothing)"; else BM_MODE=full; fi
if [ "$only" = scale ]; then BM_MODE="$BM_MODE, --only scale (the scale point alone, at 8 clients)"; clients=8; fi
BM_SEEDS="$point_seed credentials across $workspaces workspaces (bench-0..bench-$((workspaces - 1))) through the API; the list workspace bench-list holds $list_rows"
BM_LIST_NOTE=$list_seed_note
BM_WIDE_IDS=$wide_ids
BM_TOTAL="$((elapsed / 60)) min $((elapsed % 60)) s (build, setup, seeding and points)"
export BM_SCALE_NOTE=$scale_note
python3 - "$tmp/meta.json" "$smoke" "$warmup" "$duration" "$workspaces" "$list_rows" "$pgbench_scale" "$runs" "$clients" \
  "$scale" "$scale_workspaces" "$scale_filler" "$scale_fill_workspaces" "$scale_seed_s" "$point_seed" "$only" "$scale_point_rows" <<'PY'
import json, os, sys
(out, smoke, warmup, duration, workspaces, list_rows, scale, runs, clients, scale_n, scale_ws,
 scale_filler, scale_fill_ws, scale_seed_s, point_seed, only, scale_point_rows) = sys.argv[1:]
e = os.environ
json.dump({
    "date": e["BM_DATE"], "git_commit": e["BM_COMMIT"], "nproc": e["BM_NPROC"],
    "memory": e["BM_MEM"], "cpu": e["BM_CPU"], "kernel": " ".join(os.uname()[0:3:2]),
    "postgres": e["BM_PG"], "rustc": e["BM_RUSTC"], "mode": e["BM_MODE"],
    "per_point": f"{warmup} s warm-up + {duration} s measured", "clients": clients, "runs": runs,
    "seeds": e["BM_SEEDS"], "total_time": e["BM_TOTAL"], "warmup": int(warmup),
    "duration": int(duration), "workspaces": int(workspaces), "list_rows": int(list_rows),
    "pgbench_scale": int(scale), "list_seed_note": e["BM_LIST_NOTE"], "smoke": smoke == "1",
    "wide_ids": int(e["BM_WIDE_IDS"]),
    "scale": int(scale_n), "scale_workspaces": int(scale_ws), "scale_filler": int(scale_filler),
    "scale_fill_workspaces": int(scale_fill_ws), "scale_seed_s": int(scale_seed_s),
    "point_seed": int(point_seed), "only": only, "scale_note": e["BM_SCALE_NOTE"],
    "scale_point_rows": int(scale_point_rows),
}, open(out, "w"), indent=1)
PY
python3 "$helper" report "$results" "$tmp/meta.json" "$out"
echo "bench: results written to $out" >&2
