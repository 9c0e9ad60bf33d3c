#!/usr/bin/env bash
#
# test/bench/hnsw_bench.sh: rec_hnsw against pgvector's hnsw, side by side,
# in one throwaway server. Not part of test/run.
#
#   test/bench/hnsw_bench.sh [N] [KIND] [OPS] [EF_LIST]
#
#   N        rows (default 100000); queries: 1000, not in the base set
#   KIND     clustered: unit vectors from a mixture of 100 Gaussian centres
#            mips:      the same mixture, not normalised (log-normal norms,
#                       like ALS factors)
#            gauss:     plain Gaussian vectors, not normalised
#   OPS      ip (default), l2 or cosine
#   EF_LIST  default "0 20 40 80 160" (0: rec's calibrated default);
#            "-" skips the unfiltered measurements
#
# Environment: DIM (64), M (16), EFC (64), SECONDS_PER_EF (10), REPEAT (3),
# BUILDS ("0 1": parallel workers per build; PGV_BUILDS overrides it for
# pgvector), FILTER_QUERIES (200), FILTERS ("10pct 1pct 2pct_far"),
# REC_FILTER_SETTINGS (a list of rec variants for the filtered queries,
# separated by ';', each a list of name=value; default: one variant with the
# defaults), REC_RELOPTS (more reloptions for rec's index, e.g.
# ", angular_links = off"), CHURN (unset), ENGINES ("rec pgvector"), PORT (5498),
# KEEP=1 keeps the server's directory.
#
# Prints, per engine: serial and parallel build time, index size, and per
# ef_search: recall@10 against the exact answer, queries per second from
# one client with a prepared statement, p50 and p99 latency.
# pgvector is used only if `CREATE EXTENSION vector` works; it is never
# built here.
set -euo pipefail

N=${1:-100000}
KIND=${2:-clustered}
OPS=${3:-ip}
EFS=${4:-"0 20 40 80 160"}
[ "$EFS" = - ] && EFS=""
DIM=${DIM:-64}
M=${M:-16}
EFC=${EFC:-64}
SECS=${SECONDS_PER_EF:-10}
REPEAT=${REPEAT:-3}
ENGINES=${ENGINES:-"rec pgvector"}
FQ=${FILTER_QUERIES:-200}
BUILDS=${BUILDS:-"0 1"}
FILTERS=${FILTERS:-"10pct 1pct 2pct_far"}
PORT=${PORT:-5498}
PGBIN=/usr/lib/postgresql/15/bin
src=$(cd "$(dirname "$0")/../.." && pwd)

case $OPS in
ip) recop='<#>'; pgop='<#>'; recopc=rec.vector_ip_ops; pgopc=vector_ip_ops ;;
l2) recop='<->'; pgop='<->'; recopc=rec.vector_l2_ops; pgopc=vector_l2_ops ;;
cosine) recop='<=>'; pgop='<=>'; recopc=rec.vector_cosine_ops; pgopc=vector_cosine_ops ;;
*) echo "unknown OPS $OPS"; exit 1 ;;
esac

if [ "$(id -u)" = 0 ]; then runas=(runuser -u postgres --); owner=postgres; else runas=(); owner=$(id -un); fi
work=$(mktemp -d /tmp/rec-bench.XXXXXX)
chmod 755 "$work"
trap '[ -n "${KEEP:-}" ] || { "${runas[@]}" $PGBIN/pg_ctl -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }' EXIT

(cd "$src" && make -s -j2 >/dev/null && make -s install DESTDIR="$work/stage" >/dev/null)
chown -R "$owner" "$work"
"${runas[@]}" $PGBIN/initdb -D "$work/data" >/dev/null
cat >>"$work/data/postgresql.conf" <<EOF
extension_destdir = '$work/stage'
dynamic_library_path = '$work/stage/usr/lib/postgresql/15/lib:\$libdir'
shared_preload_libraries = 'rec'
port = $PORT
unix_socket_directories = '$work'
listen_addresses = ''
shared_buffers = 4GB
maintenance_work_mem = 4GB
work_mem = 64MB
max_worker_processes = 8
max_parallel_workers = 8
fsync = off
synchronous_commit = off
wal_level = replica
max_wal_size = 10GB
jit = off
search_path = 'public, rec'
EOF
"${runas[@]}" $PGBIN/pg_ctl -D "$work/data" -l "$work/log" -w start >/dev/null
psql() { command $PGBIN/psql -h "$work" -p $PORT -U postgres -X -q -v ON_ERROR_STOP=1 "$@" postgres; }

psql -c "CREATE EXTENSION rec"
if [[ " $ENGINES " == *" pgvector "* ]] && ! psql -c "CREATE EXTENSION vector" 2>/dev/null; then
	echo "# pgvector not available: measuring rec only"
	ENGINES=rec
fi

echo "# data: N=$N kind=$KIND dim=$DIM ops=$OPS m=$M ef_construction=$EFC ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
t0=$(date +%s)
psql <<EOF
CREATE FUNCTION pg_temp.nrm() RETURNS float8 LANGUAGE sql VOLATILE
	AS \$\$ SELECT sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) \$\$;
SELECT setseed(0.42);
CREATE TABLE centres AS
	SELECT c, array_agg(pg_temp.nrm() ORDER BY d) AS a
	FROM generate_series(0, 99) c, generate_series(1, $DIM) d GROUP BY c;
CREATE TABLE raw AS
	SELECT i AS id,
	       CASE WHEN '$KIND' = 'gauss'
	            THEN (SELECT array_agg(pg_temp.nrm() ORDER BY d) FROM generate_series(1, $DIM) d WHERE i > 0)
	            ELSE (SELECT array_agg(c.a[d] + 0.5 * pg_temp.nrm() ORDER BY d) FROM generate_series(1, $DIM) d)
	       END AS a,
	       exp(0.5 * pg_temp.nrm()) AS scale
	FROM generate_series(1, $N + 1000) i,
	     LATERAL (SELECT a FROM centres WHERE c = (i::bigint * 7919) % 100) c;
CREATE TABLE vecs AS
	SELECT id, '[' || array_to_string(
	         CASE WHEN '$KIND' = 'clustered'
	              THEN (SELECT array_agg(x / (SELECT sqrt(sum(y * y)) FROM unnest(a) y) ORDER BY o)
	                    FROM unnest(a) WITH ORDINALITY u(x, o))
	              WHEN '$KIND' = 'mips'
	              THEN (SELECT array_agg(x * scale ORDER BY o) FROM unnest(a) WITH ORDINALITY u(x, o))
	              ELSE a END, ',') || ']' AS t
	FROM raw;
DROP TABLE raw;
CREATE TABLE items (id int PRIMARY KEY, v rec.vector($DIM), cat1 int, cat10 int, cl int);
INSERT INTO items SELECT id, t::rec.vector, (random() * 100)::int % 100, (random() * 10)::int % 10, (id::bigint * 7919) % 100
	FROM vecs WHERE id <= $N ORDER BY random();
CREATE TABLE queries (id int PRIMARY KEY, v rec.vector($DIM));
INSERT INTO queries SELECT id - $N, t::rec.vector FROM vecs WHERE id > $N;
EOF
if [[ " $ENGINES " == *" pgvector "* ]]; then
	psql <<EOF
CREATE TABLE pitems (id int PRIMARY KEY, v public.vector($DIM), cat1 int, cat10 int, cl int);
INSERT INTO pitems SELECT id, v::text::public.vector, cat1, cat10, cl FROM items;
CREATE TABLE pqueries (id int PRIMARY KEY, v public.vector($DIM));
INSERT INTO pqueries SELECT id, v::text::public.vector FROM queries;
EOF
fi
psql -c "DROP TABLE vecs"; psql -c "VACUUM ANALYZE"
echo "# data generated in $(($(date +%s) - t0)) s"

ms() { date +%s%N; }

# exact answers, two connections
t0=$(date +%s)
psql -c "CREATE TABLE gt (qid int PRIMARY KEY, ids int[])"
for part in 0 1; do
	psql -c "SET enable_indexscan = off; SET max_parallel_workers_per_gather = 0;
	         INSERT INTO gt SELECT q.id, ARRAY(SELECT i.id FROM items i ORDER BY i.v $recop q.v, i.id LIMIT 10)
	         FROM queries q WHERE q.id % 2 = $part" &
done
wait
echo "# ground truth in $(($(date +%s) - t0)) s"


build() {
	# $1 engine, $2 workers
	local table=items opc=$recopc am=rec_hnsw
	if [ "$1" = pgvector ]; then table=pitems; opc=$pgopc; am=hnsw; fi
	psql -c "DROP INDEX IF EXISTS ${table}_idx"
	psql -c "CHECKPOINT"
	local t=$(ms)
	psql -c "SET max_parallel_maintenance_workers = $2; CREATE INDEX ${table}_idx ON $table USING $am (v $opc) WITH (m = $M, ef_construction = $EFC$( [ "$1" = rec ] && echo "${REC_RELOPTS:-}"))"
	echo $((($(ms) - t) / 1000000))
}

for eng in $ENGINES; do
	table=items; qtable=queries; op=$recop; guc=rec.hnsw_ef_search
	if [ "$eng" = pgvector ]; then table=pitems; qtable=pqueries; op=$pgop; guc=hnsw.ef_search; fi
	builds=$BUILDS
	if [ "$eng" = pgvector ] && [ -n "${PGV_BUILDS:-}" ]; then builds=$PGV_BUILDS; fi
	for w in $builds; do
		t=$(build "$eng" "$w")
		printf '%-8s build with %d parallel workers (plus leader): %.2f s\n' "$eng" "$w" "$(echo "$t/1000" | bc -l)"
	done
	size=$(psql -At -c "SELECT pg_relation_size('${table}_idx')")
	printf '%-8s index %.1f MiB\n' "$eng" "$(echo "$size/1048576" | bc -l)"
	cat >"$work/q_$eng.sql" <<EOF
\set qid random(1, 1000)
SELECT id FROM $table ORDER BY v $op (SELECT v FROM $qtable WHERE id = :qid) LIMIT 10;
EOF
	for ef in $EFS; do
		# ef 0 is rec's "calibrated at build"; pgvector has no such setting
		if [ "$ef" = 0 ] && [ "$eng" = pgvector ]; then continue; fi
		recall=$(psql -At -c "SET $guc = $ef; SET enable_seqscan = off;
			SELECT round(avg(cardinality(ARRAY(
			  SELECT unnest(g.ids) INTERSECT
			  SELECT unnest(ARRAY(SELECT i.id FROM $table i ORDER BY i.v $op q.v LIMIT 10)))) / 10.0), 4)
			FROM $qtable q JOIN gt g ON g.qid = q.id")
		# REPEAT runs; report the median by queries per second
		for r in $(seq "$REPEAT"); do
			rm -f "$work"/pgbench_log.*
			(cd "$work" && PGOPTIONS="-c $guc=$ef -c enable_seqscan=off" command $PGBIN/pgbench -h "$work" -p $PORT -U postgres \
				-n -M prepared -c 1 -T "$SECS" -f "$work/q_$eng.sql" -l postgres >"$work/pgbench.out" 2>&1)
			qps=$(grep -E '^tps' "$work/pgbench.out" | sed -E 's/tps = ([0-9.]+).*/\1/')
			lat=$(cat "$work"/pgbench_log.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "%.3f %.3f", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
			echo "$qps $lat"
		done | sort -n | awk -v n="$REPEAT" '{a[NR]=$0} END {print a[int((n+1)/2)]}' >"$work/median"
		read -r qps p50 p99 <"$work/median"
		printf '%-8s ef_search %4s  recall@10 %.4f  %8.0f q/s  p50 %s ms  p99 %s ms  (median of %d runs of %d s)\n' \
			"$eng" "$ef" "$recall" "$qps" "$p50" "$p99" "$REPEAT" "$SECS"
	done
done

# ---------------------------------------------------------------- filters
# LIMIT 20 under a filter, recall against the exact filtered answer, for
# the first $FQ queries. Filters: 10% and 1% of rows chosen at random, and
# 2% of rows made of two clusters other than the query's (the hard case:
# the matching rows are far from the query). Latency: REPEAT runs of $FQ
# queries (random among the first $FQ) from one client with a prepared
# statement; the run with the median mean latency is reported.
echo "# filtered queries: LIMIT 20, $FQ queries (pgvector: hnsw.iterative_scan = relaxed_order)"
fcond() {
	# $1 filter, $2 the expression for the query's id
	case $1 in
	10pct) echo "i.cat10 = 3" ;;
	1pct) echo "i.cat1 = 7" ;;
	2pct_far) echo "i.cl IN (((($2::bigint + $N) * 7919) % 100 + 37) % 100, ((($2::bigint + $N) * 7919) % 100 + 61) % 100)" ;;
	esac
}
IFS=';' read -r -a recsets <<<"${REC_FILTER_SETTINGS:-}"
[ ${#recsets[@]} -gt 0 ] || recsets=("")
for f in $FILTERS; do
	c=$(fcond $f q.id)
	psql -c "SET enable_indexscan = off; SET max_parallel_workers_per_gather = 0;
	         CREATE TABLE gtf_$f AS SELECT q.id AS qid, ARRAY(SELECT i.id FROM items i WHERE $c ORDER BY i.v $recop q.v, i.id LIMIT 20) AS ids
	         FROM queries q WHERE q.id <= $FQ"
	for eng in $ENGINES; do
		table=items; qtable=queries; op=$recop; sets=("${recsets[@]}")
		if [ "$eng" = pgvector ]; then table=pitems; qtable=pqueries; op=$pgop; sets=("hnsw.iterative_scan=relaxed_order"); fi
		for set in "${sets[@]}"; do
			sql="SET enable_seqscan = off;"; opts="-c enable_seqscan=off"
			for kv in $set; do sql="$sql SET ${kv%%=*} = '${kv#*=}';"; opts="$opts -c $kv"; done
			r=$(psql -At -c "$sql SELECT round(avg(cardinality(ARRAY(SELECT unnest(g.ids) INTERSECT SELECT unnest(r.ids))) / greatest(cardinality(g.ids), 1)::numeric), 4),
				round(avg(cardinality(r.ids)), 2), min(cardinality(r.ids)), sum((cardinality(r.ids) < cardinality(g.ids))::int)
				FROM $qtable q JOIN gtf_$f g ON g.qid = q.id,
				LATERAL (SELECT ARRAY(SELECT i.id FROM $table i WHERE $c ORDER BY i.v $op q.v LIMIT 20) AS ids) r")
			IFS='|' read -r rec rows minrows short <<<"$r"
			printf '%s\n' '\set qid random(1, '"$FQ"')' \
				"SELECT i.id FROM $table i WHERE $(fcond $f :qid) ORDER BY i.v $op (SELECT v FROM $qtable WHERE id = :qid) LIMIT 20;" >"$work/qf.sql"
			for rr in $(seq "$REPEAT"); do
				rm -f "$work"/pgbench_log.*
				(cd "$work" && PGOPTIONS="$opts" command $PGBIN/pgbench -h "$work" -p $PORT -U postgres \
					-n -M prepared -c 1 -t "$FQ" -f "$work/qf.sql" -l postgres >"$work/pgbench.out" 2>&1)
				cat "$work"/pgbench_log.* | awk '{print $3}' | sort -n |
					awk '{a[NR]=$1; s+=$1} END {printf "%.3f %.3f %.3f\n", s/NR/1000, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}'
			done | sort -n | awk -v n="$REPEAT" '{a[NR]=$0} END {print a[int((n+1)/2)]}' >"$work/median"
			read -r mean p50 p99 <"$work/median"
			printf '%-8s filter %-9s %-30s recall@20 %s  rows avg %s min %s (%s short)  mean %s ms  p50 %s ms  p99 %s ms\n' \
				"$eng" "$f" "${set:-defaults}" "$rec" "$rows" "$minrows" "$short" "$mean" "$p50" "$p99"
		done
	done
done

# ---------------------------------------------------------------- churn
# CHURN=1: delete half the rows, VACUUM (timed), insert as many new ones,
# and compare recall@10 at the default width with a fresh build on the
# final rows; index size before and after.
if [ -n "${CHURN:-}" ]; then
	echo "# churn: delete 50%, VACUUM, insert as many"
	# a random half (the data's clusters follow id, so not id % 2)
	psql -c "CREATE TABLE spare AS SELECT id + 10000000 AS id, v FROM items WHERE hashint4(id) & 1 = 0"
	for eng in $ENGINES; do
		table=items; qtable=queries; op=$recop; guc=rec.hnsw_ef_search; ef=${CHURN_EF:-40}; cast=""
		if [ "$eng" = pgvector ]; then table=pitems; qtable=pqueries; op=$pgop; guc=hnsw.ef_search; cast="::text::public.vector"; fi
		before=$(psql -At -c "SELECT pg_relation_size('${table}_idx')")
		psql -c "DELETE FROM $table WHERE hashint4(id) & 1 = 0"
		t0=$(ms)
		psql -c "VACUUM $table"
		tv=$(($(ms) - t0))
		t0=$(ms)
		psql -c "INSERT INTO $table (id, v) SELECT id, v$cast FROM spare"
		ti=$(($(ms) - t0))
		psql -c "CREATE TABLE gtc_$eng AS SELECT q.id AS qid, ARRAY(SELECT i.id FROM $table i ORDER BY i.v $op q.v, i.id LIMIT 10) AS ids FROM $qtable q" \
			-c "SET enable_indexscan = off" >/dev/null
		rc="SELECT round(avg(cardinality(ARRAY(SELECT unnest(g.ids) INTERSECT
			  SELECT unnest(ARRAY(SELECT i.id FROM $table i ORDER BY i.v $op q.v LIMIT 10)))) / 10.0), 4)
			FROM $qtable q JOIN gtc_$eng g ON g.qid = q.id"
		r1=$(psql -At -c "SET $guc = $ef; SET enable_seqscan = off; $rc")
		after=$(psql -At -c "SELECT pg_relation_size('${table}_idx')")
		psql -c "REINDEX INDEX ${table}_idx"
		r2=$(psql -At -c "SET $guc = $ef; SET enable_seqscan = off; $rc")
		printf '%-8s VACUUM %.2f s, insert %.2f s; recall@10 (ef_search %s) after churn %s, fresh build %s; index %.1f -> %.1f MiB\n' \
			"$eng" "$(echo "$tv/1000000000" | bc -l)" "$(echo "$ti/1000000000" | bc -l)" "$ef" "$r1" "$r2" \
			"$(echo "$before/1048576" | bc -l)" "$(echo "$after/1048576" | bc -l)"
	done
fi
