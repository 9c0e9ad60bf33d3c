# rec_hnsw under concurrency: pgbench clients mix inserts, updates,
# deletes and scans while another keeps vacuuming. No errors; afterwards the
# index passes rec.hnsw_check and answers correctly.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('hnsw_conc');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION rec;
	CREATE FUNCTION public.rv() RETURNS rec.vector LANGUAGE sql VOLATILE AS
	  $$ SELECT ('[' || array_to_string(ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 8)), ',') || ']')::rec.vector $$;
	CREATE TABLE t (id serial PRIMARY KEY, v rec.vector(8)) WITH (autovacuum_enabled = off);
	INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 2000);
	CREATE INDEX t_idx ON t USING rec_hnsw (v rec.vector_l2_ops) WITH (m = 8, ef_construction = 32);
});

# the scans below do use the index (a volatile query vector would not)
like($node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	EXPLAIN (COSTS OFF) WITH q AS MATERIALIZED (SELECT public.rv() AS v)
	SELECT id FROM t ORDER BY v OPERATOR(rec.<->) (SELECT v FROM q) LIMIT 10}),
	qr/Index Scan using t_idx/, 'the scans use the index');

$node->pgbench(
	'--no-vacuum --client=4 --transactions=150',
	0,
	[qr{processed: 600/600}],
	[qr{^$}],
	'mixed inserts, updates, deletes, scans, vacuum and checks',
	{
		'hnsw_mix' => q{
			\set r random(1, 4000)
			INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 3);
			UPDATE t SET v = public.rv() WHERE id = :r;
			DELETE FROM t WHERE id = :r + 1;
			-- 10 distinct rows, closest first (else: division by zero). The
			-- scan resumes its search while it hands out rows, and at a small
			-- search width a later row can come out closer than an earlier
			-- one (about 1% of scans at ef_search 20): a wide search here.
			SET rec.hnsw_ef_search = 64;
			WITH q AS MATERIALIZED (SELECT public.rv() AS v)
			SELECT 1 / (count(*) = 10 AND count(DISTINCT id) = 10 AND bool_and(ok))::int
			FROM (SELECT id, d >= lag(d, 1, '-Infinity') OVER (ORDER BY n) AS ok
			      FROM (SELECT id, d, row_number() OVER () AS n
			            FROM (SELECT id, v OPERATOR(rec.<->) (SELECT v FROM q) AS d FROM t
			                  ORDER BY v OPERATOR(rec.<->) (SELECT v FROM q) LIMIT 10) s1) s2) s3;
		},
		'hnsw_vacuum@1' => q{
			VACUUM t;
		},
		'hnsw_check@1' => q{
			SELECT rec.hnsw_check('t_idx');
		},
		'hnsw_mix2@6' => q{
			\set r random(1, 4000)
			-- a stored vector finds its own row first (else: division by zero)
			WITH q AS MATERIALIZED (SELECT v FROM t WHERE id >= :r ORDER BY id LIMIT 1)
			SELECT 1 / (count(*) = 0 OR min(d) = 0)::int
			FROM (SELECT v OPERATOR(rec.<->) (SELECT v FROM q) AS d FROM t
			      ORDER BY v OPERATOR(rec.<->) (SELECT v FROM q) LIMIT 5) s;
		},
	});

$node->safe_psql('postgres', "SELECT rec.hnsw_check('t_idx')");
pass('index intact after the concurrent run');
$node->safe_psql('postgres', 'VACUUM t');
$node->safe_psql('postgres', "SELECT rec.hnsw_check('t_idx')");
pass('index intact after a final vacuum');

# every live row finds itself first
my $bad = $node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT count(*) FROM t a
	WHERE (SELECT b.v FROM t b ORDER BY b.v OPERATOR(rec.<->) a.v LIMIT 1) OPERATOR(rec.<->) a.v <> 0
});
is($bad, '0', 'every row is its own nearest neighbour');
my $n = $node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT count(*) FROM (SELECT id FROM t ORDER BY v OPERATOR(rec.<->) (SELECT public.rv()) LIMIT 100000) s});
is($n, $node->safe_psql('postgres', 'SELECT count(*) FROM t'), 'an unbounded scan returns every row');

# VACUUM while inserts extend the index. An insert that is in flight while
# VACUUM marks the dead elements may link its new element, on a page added
# after VACUUM began, to an element marked meanwhile; that list must be
# repaired before the marked element's slot is freed. The vacuum is slowed
# down (cost delay) so that many inserts overlap its marks; right after it,
# before inserts could reuse the freed slots, no list may name a free slot.
$node->safe_psql('postgres', q{
	CREATE TABLE w (id serial PRIMARY KEY, v rec.vector(8)) WITH (autovacuum_enabled = off);
	INSERT INTO w (v) SELECT public.rv() FROM generate_series(1, 10000);
	CREATE INDEX w_idx ON w USING rec_hnsw (v rec.vector_l2_ops) WITH (m = 8, ef_construction = 32);
	DELETE FROM w WHERE id % 2 = 0;
});
my $script = $node->basedir . '/w_insert.sql';
open(my $fh, '>', $script) or die;
print $fh "INSERT INTO w (v) SELECT public.rv();\n";
close($fh);
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '3', '-T', '120', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM w');
for (my $i = 0; $i < 100; $i++)
{
	last if $node->safe_psql('postgres', 'SELECT count(*) FROM w') > $before + 200;
	select(undef, undef, undef, 0.1);
}
# two rounds: the even rows deleted before the inserts began, then (deleted
# while they run) the rows id % 4 = 1
for my $round (1 .. 2)
{
	$node->safe_psql('postgres', 'DELETE FROM w WHERE id % 4 = 1') if $round == 2;
	$node->safe_psql('postgres', q{
		SET vacuum_cost_limit = 20;
		SET vacuum_cost_delay = '1ms';
		VACUUM w;
	});
	my ($ret, $cout, $cerr) = $node->psql('postgres', "SELECT rec.hnsw_check('w_idx')");
	is($cerr, '', "round $round: no list names a freed slot after a vacuum that raced inserts");
}
$h->kill_kill;
my $grown = $node->safe_psql('postgres', 'SELECT max(id) FROM w');
cmp_ok($grown, '>', 11000, "inserts ran during the vacuums (ids up to $grown)");

# Inserts into an empty index race to become the entry point: none of the
# first elements may be left without a link (each round: 16 clients insert
# one row each into a freshly emptied index, then the check).
$node->safe_psql('postgres', q{
	CREATE TABLE e (id serial, v rec.vector(8));
	CREATE INDEX e_idx ON e USING rec_hnsw (v rec.vector_l2_ops);
});
my $escript = $node->basedir . '/e_insert.sql';
open($fh, '>', $escript) or die;
print $fh "INSERT INTO e (v) VALUES ('[1,2,3,4,5,6,7,8]');\n";
close($fh);
my $unreachable = 0;
for my $i (1 .. 50)
{
	$node->safe_psql('postgres', 'TRUNCATE e');
	IPC::Run::run(
		[ 'pgbench', '-n', '-c', '16', '-t', '1', '-f', $escript,
		  '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err) or die "pgbench failed: $err";
	my ($ret, $cout, $cerr) = $node->psql('postgres', "SELECT rec.hnsw_check('e_idx')");
	$unreachable++ if $cerr ne '';
}
is($unreachable, 0, 'concurrent first inserts leave no element unreachable');

$node->stop;
done_testing();
