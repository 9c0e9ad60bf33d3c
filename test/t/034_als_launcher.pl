# The training launcher survives being terminated: the postmaster starts a
# new one, which finds the training slots an earlier launcher handed out
# through shared memory, not through handles it no longer has. Jobs queued
# while there was no launcher, jobs whose worker was registered by the old
# launcher but could not start, and jobs queued afterwards all train.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('als_launcher');
$node->init;
$node->start;

for my $db ('postgres', 'x', 'y')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db") if $db ne 'postgres';
	$node->safe_psql($db, q{
		CREATE EXTENSION rec;
		CREATE TABLE small AS SELECT u AS user_id, (u * 7 + j) % 60 AS item_id
		FROM generate_series(1, 200) u, generate_series(1, 10) j;
	});
}

sub launcher_pid
{
	return $node->safe_psql('postgres',
		q{SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = 'rec training launcher'});
}

my $old_launcher = launcher_pid();
ok($old_launcher > 0, 'a launcher runs');

# A job trains in postgres while the launcher goes away (its source sleeps).
my $running = $node->safe_psql('postgres',
	"SELECT rec.train('running', 'SELECT user_id, item_id FROM small, pg_sleep(2)', factors => 4, iterations => 2)");
$node->poll_query_until('postgres',
	"SELECT phase = 'loading' FROM rec.training_progress WHERE model_id = $running")
  or die "job $running did not start";

# Database x accepts no new connections for a moment: the worker the
# launcher registers for it will fail before it has connected. The
# postmaster is stopped meanwhile, so that worker starts only once the
# launcher that registered it is gone (and with it its handle on it).
my $in_x = $node->background_psql('x');
my $admin = $node->background_psql('postgres');
$admin->query_safe('ALTER DATABASE x ALLOW_CONNECTIONS false');
my $postmaster = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
my $log_offset = -s $node->logfile;

kill('STOP', $postmaster) or die "could not stop the postmaster: $!";
my $orphan = $in_x->query_safe(
	"SELECT rec.train('orphan', 'small', factors => 4, iterations => 2)");
chomp $orphan;
usleep(1_000_000);				# the launcher registers a worker for x
$admin->query_safe("SELECT pg_terminate_backend($old_launcher)");
usleep(300_000);
kill('CONT', $postmaster) or die "could not continue the postmaster: $!";

$node->wait_for_log(qr/database "x" is not currently accepting connections/, $log_offset);
$admin->query_safe('ALTER DATABASE x ALLOW_CONNECTIONS true');

# queued while no launcher runs
my $in_y = $node->safe_psql('y', "SELECT rec.train('no launcher', 'small', factors => 4, iterations => 2)");

ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = 1 FROM pg_stat_activity
	   WHERE backend_type = 'rec training launcher' AND pid <> $old_launcher}),
	'the postmaster starts a new launcher');

is($node->safe_psql('postgres', "SELECT rec.wait($running, '30 s')"), 'ready',
	'the job that ran while the launcher was terminated ends');
my $st = $in_x->query_safe("SELECT rec.wait($orphan, '30 s')");
chomp $st;
is($st, 'ready', 'the job whose worker the old launcher registered trains');
is($node->safe_psql('y', "SELECT rec.wait($in_y, '30 s')"), 'ready',
	'the job queued while no launcher ran trains');
my $after = $node->safe_psql('postgres', "SELECT rec.train('after', 'small', factors => 4, iterations => 2)");
is($node->safe_psql('postgres', "SELECT rec.wait($after, '30 s')"), 'ready',
	'a following job trains');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'rec training launcher'}), '1',
	'one launcher');

$in_x->quit;
$admin->quit;
$node->stop;
done_testing();
