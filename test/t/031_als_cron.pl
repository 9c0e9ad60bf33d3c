# Retraining scheduled with pg_cron: a job scheduled with cron.schedule()
# queues rec.train() from pg_cron's own worker, and the training worker
# trains it to the end. pg_cron 1.4 schedules by the minute, so the test
# uses its '@reboot' schedule (run when pg_cron starts) to avoid waiting for
# the next minute; the same rec.train() call serves a nightly '0 3 * * *'.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('als_cron');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'rec,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION rec;
	CREATE TABLE ev AS
	SELECT u AS user_id, (u * 3 + j * 5) % 50 AS item_id
	FROM generate_series(1, 300) u, generate_series(1, 12) j;
	SELECT cron.schedule('nightly retraining', '0 3 * * *',
		$$SELECT rec.train('nightly', 'ev', factors => 8, iterations => 5)$$);
	SELECT cron.schedule('retrain at start', '@reboot',
		$$SELECT rec.train('at start', 'ev', factors => 8, iterations => 5)$$);
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'), '2', 'two schedules');

# pg_cron runs '@reboot' jobs when it starts
$node->restart;
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM cron.job_run_details WHERE status = 'succeeded'})
  or die 'pg_cron did not run the job';
like($node->safe_psql('postgres',
	q{SELECT command FROM cron.job_run_details WHERE status = 'succeeded'}),
	qr/rec\.train\('at start'/, 'pg_cron ran the scheduled rec.train()');

my $id = $node->safe_psql('postgres', q{SELECT model_id FROM rec.models WHERE name = 'at start'});
ok($id ne '', 'the scheduled job queued a model');
is($node->safe_psql('postgres', "SELECT rec.wait($id, '60 s')"), 'ready',
	'the scheduled training ran to the end');
is($node->safe_psql('postgres', "SELECT requested_by = current_user::regrole FROM rec.models WHERE model_id = $id"),
	't', 'queued as the role that owns the schedule');
is($node->safe_psql('postgres', "SELECT count(*) > 0 FROM rec.item_factors($id)"), 't',
	'its factors are there');
is($node->safe_psql('postgres', q{SELECT count(*) FROM rec.models WHERE name = 'nightly'}), '0',
	'the nightly job waits for 3 am');

$node->stop;
done_testing();
