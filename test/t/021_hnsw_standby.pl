# rec_hnsw replication: a streaming standby returns the same results as the
# primary after build, insert, delete and vacuum, while the primary runs with
# wal_consistency_checking for generic WAL (so the standby compares every
# replayed page with the primary's image).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $primary = PostgreSQL::Test::Cluster->new('hnsw_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "wal_consistency_checking = 'generic'\n");
$primary->start;
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('hnsw_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres', q{
	CREATE EXTENSION rec;
	CREATE FUNCTION public.rv() RETURNS rec.vector LANGUAGE sql VOLATILE AS
	  $$ SELECT ('[' || array_to_string(ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 12)), ',') || ']')::rec.vector $$;
	CREATE TABLE t (id serial PRIMARY KEY, v rec.vector(12));
	INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 3000);
	CREATE TABLE q (id int, v rec.vector(12));
	INSERT INTO q SELECT i, public.rv() FROM generate_series(1, 20) i;
	CREATE INDEX t_l2 ON t USING rec_hnsw (v rec.vector_l2_ops) WITH (m = 8, ef_construction = 32);
	CREATE INDEX t_ip ON t USING rec_hnsw (v rec.vector_ip_ops) WITH (m = 8, ef_construction = 32);
});

my $query = q{
	SET enable_seqscan = off;
	SELECT q.id, ARRAY(SELECT t.id FROM t ORDER BY t.v OPERATOR(rec.<->) q.v LIMIT 10),
	             ARRAY(SELECT t.id FROM t ORDER BY t.v OPERATOR(rec.<#>) q.v LIMIT 10)
	FROM q ORDER BY q.id;
};

sub compare
{
	my ($what) = @_;
	$primary->wait_for_catchup($standby);
	my $p = $primary->safe_psql('postgres', $query);
	my $s = $standby->safe_psql('postgres', $query);
	is($s, $p, "standby returns the primary's results after $what");
	$standby->safe_psql('postgres', "SELECT rec.hnsw_check('t_l2'), rec.hnsw_check('t_ip')");
}

compare('build');
$primary->safe_psql('postgres', 'INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 1000)');
compare('inserts');
$primary->safe_psql('postgres', 'UPDATE t SET v = public.rv() WHERE id % 7 = 0');
compare('updates');
$primary->safe_psql('postgres', 'DELETE FROM t WHERE id % 2 = 0');
compare('deletes');
$primary->safe_psql('postgres', 'VACUUM t');
compare('vacuum');
$primary->safe_psql('postgres', 'INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 1500)');
compare('reinserts into freed slots');
$primary->safe_psql('postgres', "SELECT rec.hnsw_check('t_l2'), rec.hnsw_check('t_ip')");

# rec.hnsw_check on the standby while the primary keeps changing the index:
# replay goes on during the check, which must not report what it saw
# half-replayed as corruption
my $script = $primary->basedir . '/churn.sql';
open(my $fh, '>', $script) or die;
print $fh q{
\set r random(1, 6000)
INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 10);
DELETE FROM t WHERE id IN (SELECT id FROM t WHERE id >= :r ORDER BY id LIMIT 8);
};
close($fh);
my $vscript = $primary->basedir . '/vacuum.sql';
open($fh, '>', $vscript) or die;
print $fh "VACUUM t;\n";
close($fh);
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-T', '8', '-f', "$script\@10", '-f', "$vscript\@1",
	  '-h', $primary->host, '-p', $primary->port, 'postgres' ],
	'>', \$out, '2>', \$err);
my $checks = 0;
my @errors;
while ($h->pumpable)
{
	my ($ret, $cout, $cerr) = $standby->psql('postgres',
		"SELECT rec.hnsw_check('t_l2'), rec.hnsw_check('t_ip')");
	push @errors, $cerr if $cerr ne '';
	$checks++;
	$h->pump_nb;
}
$h->finish;
ok($checks > 3, "checked the standby $checks times during replay");
is(join("\n", @errors), '', 'no corruption reported on the standby during replay');
compare('churn');

# the standby replayed everything with page consistency checks on
my $log = slurp_file($standby->logfile);
unlike($log, qr/inconsistent page found/, 'no inconsistent page during replay');
ok($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()') eq 't', 'standby still running');

$standby->stop;
$primary->stop;
done_testing();
