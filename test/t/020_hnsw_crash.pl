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

$node->stop;
done_testing();
