# rec_hnsw builds: parallel workers, progress in pg_stat_progress_create_index,
# cancellation at any moment (serial and parallel), and a graph that does not
# fit into maintenance_work_mem.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('hnsw_build');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_parallel_maintenance_workers = 2
min_parallel_table_scan_size = 0
maintenance_work_mem = '256MB'
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION rec;
	-- d dimensions, 6 of them independent: easy enough for exact self-recall
	CREATE FUNCTION public.rv(d int) RETURNS rec.vector LANGUAGE sql VOLATILE AS
	  $$ SELECT ('[' || array_to_string(ARRAY(SELECT a[1 + k % 6] * (1 + k % 3) FROM generate_series(0, d - 1) k), ',') || ']')::rec.vector
	     FROM (SELECT ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 6)) AS a) s $$;
	CREATE TABLE big (id serial PRIMARY KEY, v rec.vector(32));
	INSERT INTO big (v) SELECT public.rv(32) FROM generate_series(1, 60000);
	CREATE TABLE q AS SELECT i AS id, public.rv(32) AS v FROM generate_series(1, 20) i;
});

my $recall_sql = q{
	SET enable_seqscan = off;
	SELECT avg(cardinality(ARRAY(
	  SELECT unnest(ARRAY(SELECT b.id FROM big b ORDER BY b.v OPERATOR(rec.<->) q.v LIMIT 10))
	  INTERSECT
	  SELECT unnest(ARRAY(SELECT b.id FROM big b ORDER BY rec.l2_distance(b.v, q.v) LIMIT 10)))) / 10.0) >= 0.9
	FROM q};

# parallel build: workers are launched and the result is sound
my ($ret, $out, $err) = $node->psql('postgres', q{
	SET client_min_messages = debug1;
	CREATE INDEX big_par ON big USING rec_hnsw (v rec.vector_l2_ops) WITH (m = 8, ef_construction = 32)});
is($ret, 0, 'parallel build succeeds');
like($err, qr/rec_hnsw build: [12] parallel workers launched/, 'parallel workers were launched');
$node->safe_psql('postgres', "SELECT rec.hnsw_check('big_par')");
is($node->safe_psql('postgres', $recall_sql), 't', 'parallel build: recall@10 >= 0.9');
$node->safe_psql('postgres', 'DROP INDEX big_par');

# progress: watch a build from another session
my ($bout, $berr) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-c',
	  'SET max_parallel_maintenance_workers = 0; CREATE INDEX big_prog ON big USING rec_hnsw (v rec.vector_l2_ops)' ],
	'>', \$bout, '2>', \$berr);
my %seen;
my $total = 0;
for (my $i = 0; $i < 600 && $h->pumpable; $i++)
{
	my $row = $node->safe_psql('postgres',
		"SELECT phase || '|' || tuples_total || '|' || tuples_done FROM pg_stat_progress_create_index");
	if ($row ne '')
	{
		my ($phase, $tt, $td) = split /\|/, $row;
		$seen{$phase} = 1;
		$total = $tt if $tt > $total;
	}
	$h->pump_nb;
	select(undef, undef, undef, 0.02);
}
$h->finish;
ok(grep(/building graph/, keys %seen), 'progress shows phase "building graph"');
is($total, 60000, 'progress counts the rows to insert into the graph');
$node->safe_psql('postgres', "SELECT rec.hnsw_check('big_prog')");
$node->safe_psql('postgres', 'DROP INDEX big_prog');

# cancellation, serial and parallel
for my $w (0, 2)
{
	($ret, $out, $err) = $node->psql('postgres', qq{
		SET max_parallel_maintenance_workers = $w;
		SET statement_timeout = '300ms';
		CREATE INDEX big_cancel ON big USING rec_hnsw (v rec.vector_l2_ops)});
	like($err, qr/canceling statement due to statement timeout/, "build with $w workers can be cancelled");
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'big_cancel'"),
		'0', 'no index is left behind');
}

# a graph larger than maintenance_work_mem: built in part, the rest inserted
$node->safe_psql('postgres', q{
	CREATE TABLE wide (id serial PRIMARY KEY, v rec.vector(200));
	INSERT INTO wide (v) SELECT public.rv(200) FROM generate_series(1, 3000);
});
($ret, $out, $err) = $node->psql('postgres', q{
	SET maintenance_work_mem = '1MB';
	SET max_parallel_maintenance_workers = 0;
	CREATE INDEX wide_idx ON wide USING rec_hnsw (v rec.vector_l2_ops) WITH (m = 8, ef_construction = 32)});
is($ret, 0, 'build beyond maintenance_work_mem succeeds');
like($err, qr/graph did not fit into maintenance_work_mem/, 'and says so');
$node->safe_psql('postgres', "SELECT rec.hnsw_check('wide_idx')");
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT count(*) FROM (SELECT id FROM wide ORDER BY v OPERATOR(rec.<->) (SELECT public.rv(200)) LIMIT 5000) s}),
	'3000', 'every row is in the index');
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT count(*) FROM wide a
	WHERE (SELECT b.id FROM wide b ORDER BY b.v OPERATOR(rec.<->) a.v LIMIT 1) <> a.id}),
	'0', 'every row finds itself');

# the same in parallel
$node->safe_psql('postgres', 'DROP INDEX wide_idx');
($ret, $out, $err) = $node->psql('postgres', q{
	SET maintenance_work_mem = '1MB';
	CREATE INDEX wide_idx ON wide USING rec_hnsw (v rec.vector_l2_ops) WITH (m = 8, ef_construction = 32)});
is($ret, 0, 'parallel build beyond maintenance_work_mem succeeds');
$node->safe_psql('postgres', "SELECT rec.hnsw_check('wide_idx')");
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT count(*) FROM (SELECT id FROM wide ORDER BY v OPERATOR(rec.<->) (SELECT public.rv(200)) LIMIT 5000) s}),
	'3000', 'every row is in the index (parallel)');

$node->stop;
done_testing();
