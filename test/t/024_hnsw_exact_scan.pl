# rec_hnsw's exact phase under concurrency. pgbench clients run filtered
# queries with a tiny graph budget, so every scan finishes with the exact
# pass (several passes: work_mem = 64kB holds 4,096 candidates), while other
# clients insert, update and delete rows and one keeps vacuuming, freeing
# slots that inserts reuse under the scans. Every scan must return LIMIT
# rows whenever that many rows match under its snapshot, and no row twice;
# no errors; the index stays intact.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hnsw_exact');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION rec;
	CREATE FUNCTION public.rv() RETURNS rec.vector LANGUAGE sql VOLATILE AS
	  $$ SELECT ('[' || array_to_string(ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 8)), ',') || ']')::rec.vector $$;
	CREATE TABLE t (id serial PRIMARY KEY, cat int, v rec.vector(8)) WITH (autovacuum_enabled = off);
	INSERT INTO t (cat, v) SELECT (random() * 300)::int, public.rv() FROM generate_series(1, 6000);
	CREATE INDEX t_idx ON t USING rec_hnsw (v rec.vector_l2_ops) WITH (m = 8, ef_construction = 32);
});

# the check runs in one statement, so both counts see one snapshot; a
# wrong count divides by zero (not foldable into a constant at plan time)
$node->pgbench(
	'--no-vacuum --client=5 --transactions=100',
	0,
	[qr{processed: 500/500}],
	[qr{^$}],
	'filtered exact scans during inserts, updates, deletes and vacuum',
	{
		'hnsw_exact_filter@5' => q{
			\set c random(0, 300)
			SET enable_seqscan = off;
			SET work_mem = '64kB';
			SET rec.hnsw_max_scan_tuples = 10;
			SELECT CASE WHEN r.n = least(20, m.n) AND r.n = r.d THEN 1 ELSE 1 / (r.n * 0) END
			FROM (SELECT count(*) AS n, count(DISTINCT id) AS d
			      FROM (SELECT id FROM t WHERE cat = :c ORDER BY v OPERATOR(rec.<->) public.rv() LIMIT 20) s) r,
			     (SELECT count(*) AS n FROM t WHERE cat = :c) m;
		},
		'hnsw_exact_write@4' => q{
			\set r random(1, 8000)
			INSERT INTO t (cat, v) SELECT (random() * 300)::int, public.rv() FROM generate_series(1, 5);
			UPDATE t SET v = public.rv() WHERE id = :r;
			DELETE FROM t WHERE id IN (:r + 1, :r + 2, :r + 3);
		},
		'hnsw_exact_vacuum@1' => q{
			VACUUM t;
		},
	});

$node->safe_psql('postgres', "SELECT rec.hnsw_check('t_idx')");
pass('index intact after the concurrent run');

# and at rest: the exact answer for every category
my $bad = $node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SET rec.hnsw_max_scan_tuples = 10;
	SET work_mem = '64kB';
	CREATE TEMP TABLE qv AS SELECT public.rv() AS v;
	SELECT count(*) FROM generate_series(0, 300) c
	WHERE (SELECT count(*) FROM (SELECT id FROM t WHERE cat = c ORDER BY v OPERATOR(rec.<->) (SELECT v FROM qv) LIMIT 20) s)
	      <> least(20, (SELECT count(*) FROM t WHERE cat = c))
});
is($bad, '0', 'every category returns LIMIT rows, or all of its rows');

$node->stop;
done_testing();
