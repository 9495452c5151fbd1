#!/usr/bin/env bash
# Postgres's cost of one of the store's statements: runs a pgbench script of this directory
# against a cluster with pg_stat_statements loaded and prints Postgres CPU per transaction
# (from /proc: the postmaster and its children) and, per statement, exec µs, blocks, dirtied
# blocks, WAL records, WAL bytes and full-page images per call.
# usage: PGDIR=<socket dir> PGPORT=<port> DATADIR=<cluster data dir> DB=<database> \
#          measure.sh LABEL SCRIPT.sql [CLIENTS] [SECONDS]
set -euo pipefail
label=$1 script=$2 c=${3:-8} t=${4:-5}
H=${PGDIR:?socket dir} P=${PGPORT:?port} D=${DATADIR:?data dir} DB=${DB:-vault}
pm=$(head -1 "$D/postmaster.pid")
# utime, stime, cutime, cstime: exited backends are reaped by the postmaster into its c*time.
cpu() { local tot=0 p s x; for p in $pm $(pgrep -P "$pm"); do
  s=$(cut -d' ' -f14-17 /proc/$p/stat 2>/dev/null) || continue; for x in $s; do tot=$((tot+x)); done; done; echo $tot; }
q() { psql -qAt -F' | ' -h "$H" -p "$P" -U postgres -d "$DB" -c "$1"; }
q "SELECT pg_stat_statements_reset()" >/dev/null
q "CHECKPOINT" >/dev/null
a=$(cpu)
out=$(pgbench -h "$H" -p "$P" -U postgres -n -M prepared -f "$script" -c "$c" -j 2 -T "$t" "$DB" 2>&1)
b=$(cpu)
tx=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
echo "== $label: $tx tx, postgres CPU $(( (b - a) * 1000000 / $(getconf CLK_TCK) / tx )) us/tx"
q "SELECT calls, round((total_exec_time / calls)::numeric * 1000) AS us, \
   round((shared_blks_hit + shared_blks_read)::numeric / calls, 1) AS blocks, \
   round(shared_blks_dirtied::numeric / calls, 2) AS dirtied, round(wal_records::numeric / calls, 1) AS wal_records, \
   round(wal_bytes / calls) AS wal_bytes, round(wal_fpi::numeric / calls, 2) AS fpi, \
   left(regexp_replace(query, '\s+', ' ', 'g'), 70) FROM pg_stat_statements \
   WHERE calls >= 100 AND query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT 8"
