# rec_hnsw crash safety: an immediate stop right after a build, and in the
# middle of concurrent inserts; after restart the index passes
# rec.hnsw_check (structure and reachability of every live row) and answers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('hnsw_crash');
$node->init;
$node->append_conf('postgresql.conf', "fsync = on\nmax_parallel_maintenance_workers = 1\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION rec;
	CREATE FUNCTION public.rv() RETURNS rec.vector LANGUAGE sql VOLATILE AS
	  $$ SELECT ('[' || array_to_string(ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 16)), ',') || ']')::rec.vector $$;
	CREATE FUNCTION public.rv8() RETURNS rec.vector LANGUAGE sql VOLATILE AS
	  $$ SELECT ('[' || array_to_string(ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 8)), ',') || ']')::rec.vector $$;
	CREATE TABLE t (id bigserial PRIMARY KEY, v rec.vector(16));
	INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 5000);
	CREATE INDEX t_idx ON t USING rec_hnsw (v rec.vector_l2_ops);
});

# crash right after the build
$node->stop('immediate');
$node->start;
$node->safe_psql('postgres', "SELECT rec.hnsw_check('t_idx')");
pass('index intact after a crash right after CREATE INDEX');

my $probe = q{
	SET enable_seqscan = off;
	SELECT count(*) FROM (SELECT id FROM t ORDER BY v OPERATOR(rec.<->) (SELECT v FROM t WHERE id = 7) LIMIT 10) s;
};
is($node->safe_psql('postgres', $probe), '10', 'scan returns LIMIT rows after restart');
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT id FROM t ORDER BY v OPERATOR(rec.<->) (SELECT v FROM t WHERE id = 4321) LIMIT 1}),
	'4321', 'a stored vector finds itself');

# crash in the middle of inserts from two clients
my $script = $node->basedir . '/insert.sql';
open(my $fh, '>', $script) or die;
print $fh "INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 5);\n";
close($fh);
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-T', '60', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
# wait until the inserts are well under way
for (my $i = 0; $i < 100; $i++)
{
	last if $node->safe_psql('postgres', 'SELECT count(*) FROM t') > $before + 500;
	sleep(0.1);
}
$node->stop('immediate');
$h->kill_kill;
$node->start;
my $after = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
cmp_ok($after, '>', $before, "inserts happened before the crash ($before -> $after rows)");
$node->safe_psql('postgres', "SELECT rec.hnsw_check('t_idx')");
pass('index intact after a crash in the middle of inserts');
is($node->safe_psql('postgres', $probe), '10', 'scan returns LIMIT rows');

# the index keeps working: more inserts, a vacuum, a check
$node->safe_psql('postgres', q{
	INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 500);
	DELETE FROM t WHERE id % 3 = 0;
	VACUUM t;
});
$node->safe_psql('postgres', "SELECT rec.hnsw_check('t_idx')");
pass('index intact after more inserts and a vacuum');

# crashes in the middle of VACUUM: it marks dead elements, repairs lists,
# then frees slots page by page. A slowed-down VACUUM is stopped at several
# points of its index pass; each time the restarted index must pass the
# check, answer, and let the next VACUUM finish the job.
my $nleft = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
for my $ms (300, 900, 1800)
{
	$node->safe_psql('postgres', q{
		INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 3000);
		DELETE FROM t WHERE id % 2 = 0;
	});
	my ($vout, $verr) = ('', '');
	my $v = IPC::Run::start(
		[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
		  '-c', "SET vacuum_cost_delay = '2ms'", '-c', 'SET vacuum_cost_limit = 20',
		  '-c', 'VACUUM t' ],
		'>', \$vout, '2>', \$verr);
	my $phase = '';
	for (my $i = 0; $i < 300 && $phase ne 'vacuuming indexes'; $i++)
	{
		$phase = $node->safe_psql('postgres', 'SELECT phase FROM pg_stat_progress_vacuum');
		select(undef, undef, undef, 0.01);
	}
	is($phase, 'vacuuming indexes', "VACUUM reached its index pass ($ms ms)");
	select(undef, undef, undef, $ms / 1000.0);
	$node->stop('immediate');
	$v->kill_kill;
	$node->start;
	my ($ret, $cout, $cerr) = $node->psql('postgres', "SELECT rec.hnsw_check('t_idx')");
	is($cerr, '', "index intact after a crash $ms ms into VACUUM's index pass");
	$nleft = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
	is($node->safe_psql('postgres', qq{
		SET enable_seqscan = off;
		SELECT count(*) FROM (SELECT id FROM t ORDER BY v OPERATOR(rec.<->) (SELECT public.rv()) LIMIT 100000) s}),
		$nleft, 'and returns every row');
	$node->safe_psql('postgres', 'VACUUM t');
	($ret, $cout, $cerr) = $node->psql('postgres', "SELECT rec.hnsw_check('t_idx')");
	is($cerr, '', 'intact after the next VACUUM');
}

# a crash in the middle of VACUUM's last pass, which frees the slots of
# removed elements page by page: elements still waiting to be freed may
# name slots freed already, and an element and its upper-layer slot must
# not be separated. The pass is made slow (each page it dirties costs a
# delay, and checkpoints keep cleaning the pages) and the crash comes once
# the free space map shows it under way.
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_freespacemap;
	CREATE TABLE c (id serial PRIMARY KEY, v rec.vector(8)) WITH (autovacuum_enabled = off);
	INSERT INTO c (v) SELECT public.rv8() FROM generate_series(1, 6000);
	CREATE INDEX c_idx ON c USING rec_hnsw (v rec.vector_l2_ops) WITH (m = 8, ef_construction = 32);
	DELETE FROM c WHERE id % 2 = 0;
	CHECKPOINT;
});
my ($vout, $verr) = ('', '');
my $v = IPC::Run::start(
	[ 'psql', '-XAtq', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
	  '-c', "SET vacuum_cost_delay = '20ms'", '-c', 'SET vacuum_cost_limit = 20',
	  '-c', 'SET vacuum_cost_page_hit = 0', '-c', 'SET vacuum_cost_page_miss = 0',
	  '-c', 'VACUUM c' ],
	'>', \$vout, '2>', \$verr);
my $freed = 0;
my $deadline = time() + 120;
while ($freed < 10 && time() < $deadline)
{
	$freed = $node->safe_psql('postgres', q{
		CHECKPOINT;
		SELECT count(*) FROM pg_freespace('c_idx') WHERE avail > 0});
}
cmp_ok($freed, '>=', 10, 'VACUUM is freeing slots');
$node->stop('immediate');
$v->kill_kill;
$node->start;
my ($ret, $cout, $cerr) = $node->psql('postgres', "SELECT rec.hnsw_check('c_idx')");
is($cerr, '', 'index intact after a crash while VACUUM frees slots');
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT count(*) FROM (SELECT id FROM c ORDER BY v OPERATOR(rec.<->) (SELECT public.rv8()) LIMIT 100000) s}),
	'3000', 'and returns every row');
$node->safe_psql('postgres', 'VACUUM c');
($ret, $cout, $cerr) = $node->psql('postgres', "SELECT rec.hnsw_check('c_idx')");
is($cerr, '', 'intact after the next VACUUM');

$node->stop;
done_testing();
