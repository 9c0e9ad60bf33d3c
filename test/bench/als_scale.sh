#!/usr/bin/env bash
#
# test/bench/als_scale.sh: ALS at scale, end to end through SQL: a
# synthetic set of 20M interactions of 140k users and 27k items (Zipf item
# popularity, long-tailed user activity: test/bench/als_engine.c, `gen`) is
# loaded with COPY, trained with rec.train() (holdout on, so the worker also
# evaluates), and the phases are timed. The same training is then run in the
# stand-alone driver, which also reports CPU time per iteration (what an
# iteration costs on free cores when the machine is busy). Not part of
# test/run.
#
# Environment: N (20000000), USERS (140000), ITEMS (27000), FACTORS (64),
# ITERATIONS (15), ALPHA (2), REG (20), SOLVER (cg), THREADS (2), KEEP=1.
set -euo pipefail
. "$(dirname "$0")/als_lib.sh"

N=${N:-20000000}
USERS=${USERS:-140000}
ITEMS=${ITEMS:-27000}
FACTORS=${FACTORS:-64}
ITERATIONS=${ITERATIONS:-15}
ALPHA=${ALPHA:-2}
REG=${REG:-20}
SOLVER=${SOLVER:-cg}

als_start
t0=$(now)
psql -c "CREATE UNLOGGED TABLE ev (user_id int, item_id int, weight real, seq int)"
"$work/als_engine" gen -n "$N" -u "$USERS" -m "$ITEMS" | psql -c "\\copy ev FROM STDIN"
psql -c "CREATE VIEW ev_src AS SELECT user_id, item_id, weight, to_timestamp(seq) AS occurred_at FROM ev"
load=$(secs "$t0")
echo "# loaded $(val 'SELECT count(*) FROM ev') interactions of $(val 'SELECT count(DISTINCT user_id) FROM ev') users and $(val 'SELECT count(DISTINCT item_id) FROM ev') items in $load s (generate + COPY)"

t1=$(now)
m=$(val "SELECT rec.train('scale', 'ev_src', factors => $FACTORS, iterations => $ITERATIONS, alpha => $ALPHA,
		regularization => $REG, solver => '$SOLVER', holdout => true)")
st=$(val "SELECT rec.wait($m)")
[ "$st" = ready ] || { val "SELECT error FROM rec.models WHERE model_id = $m"; exit 1; }
wall=$(secs "$t1")
psql -c "SELECT users, items, interactions, pg_size_pretty(size_bytes) AS size FROM rec.models WHERE model_id = $m"
psql -c "SELECT key AS phase, round(value::numeric, 2) AS seconds FROM rec.models, jsonb_each_text(metrics->'seconds') WHERE model_id = $m"
echo "rec.train: median $(val "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v::float8)::numeric, 3) FROM jsonb_array_elements_text((SELECT metrics->'iteration_seconds' FROM rec.models WHERE model_id = $m)) v") s/iteration, min $(val "SELECT round(min(v::float8)::numeric, 3) FROM jsonb_array_elements_text((SELECT metrics->'iteration_seconds' FROM rec.models WHERE model_id = $m)) v") s ($(val "SELECT metrics->>'threads' FROM rec.models WHERE model_id = $m") threads, $(val "SELECT metrics->>'kernel' FROM rec.models WHERE model_id = $m") kernels)"
echo "rec.train: memory $(val "SELECT round((metrics->'memory'->>'peak_bytes')::numeric / 1048576) FROM rec.models WHERE model_id = $m") MiB allocated by the job at its peak, worker peak RSS $(val "SELECT round((metrics->'memory'->>'rss_peak_bytes')::numeric / 1048576) FROM rec.models WHERE model_id = $m") MiB"
echo "rec.train: holdout $(val "SELECT metrics->'holdout'->>'users' || ' users, HR@10 ' || round((metrics->'holdout'->>'hit_rate')::numeric, 4) || ', NDCG@10 ' || round((metrics->'holdout'->>'ndcg')::numeric, 4) FROM rec.models WHERE model_id = $m")"
echo "end to end: load $load s, rec.train() to ready $wall s"

echo "# the same training in the stand-alone driver:"
"$work/als_engine" synth -n "$N" -u "$USERS" -m "$ITEMS" -f "$FACTORS" -i "$ITERATIONS" -a "$ALPHA" \
	-r "$REG" -s "$SOLVER" -t "$THREADS" 2>/dev/null
