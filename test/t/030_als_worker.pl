# Training jobs in the background worker: the caller may disconnect,
# progress is visible, rec.cancel() stops a job within a second, a crash, a
# fast shutdown or a terminated worker leave the job failed with its reason
# and nothing half-written, queued jobs survive a restart, the memory limit
# refuses a job with a clear message, a thread that cannot start fails the
# job with the reason, a worker that trains job after job does not grow,
# the thread cap applies, and the
# portable and AVX2 kernels give the same model as the default one.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('als_worker');
$node->init;
$node->append_conf('postgresql.conf', "log_min_messages = log\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION rec;
	CREATE TABLE ev AS
	SELECT u AS user_id, (u * 7 + j * 13 + (u % 5) * j) % 800 AS item_id, 1 + j % 3 AS weight
	FROM generate_series(1, 8000) u, generate_series(1, 50) j;
	CREATE TABLE small AS SELECT user_id, item_id, weight FROM ev WHERE user_id <= 200;
});

sub status
{
	my ($id) = @_;
	return $node->safe_psql('postgres', "SELECT status FROM rec.models WHERE model_id = $id");
}

# Queue a long job from a session that ends at once.
sub start_long_job
{
	my ($name) = @_;
	my $id = $node->safe_psql('postgres',
		"SELECT rec.train('$name', 'ev', factors => 64, iterations => 1000)");
	$node->poll_query_until('postgres',
		"SELECT iteration >= 1 FROM rec.training_progress WHERE model_id = $id")
	  or die "job $id did not start training";
	return $id;
}

sub no_tables
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT to_regclass('rec.model_${id}_user_factors') IS NULL
			AND to_regclass('rec.model_${id}_item_factors') IS NULL");
}

# --- the caller disconnects; progress shows the job
my $id = start_long_job('progress');
my $row = $node->safe_psql('postgres', qq{
	SELECT name, phase, iterations, loss > 0, array_length(loss_history, 1) = iteration,
		   array_length(iteration_seconds, 1) = iteration,
		   rows_read = (SELECT count(*) FROM ev), users, items, interactions > 0,
		   elapsed > '0'::interval, pid > 0
	FROM rec.training_progress WHERE model_id = $id});
is($row, "progress|training|1000|t|t|t|t|8000|800|t|t|t", 'progress view');
is(status($id), 'training', 'status training while it runs');
is($node->safe_psql('postgres', "SELECT rec.wait($id, '100 ms')"), 'training',
	'rec.wait returns the status when its timeout passes');

# --- rec.cancel stops it within a second
my $t0 = time;
is($node->safe_psql('postgres', "SELECT rec.cancel($id)"), 't', 'cancel accepted');
is($node->safe_psql('postgres', "SELECT rec.wait($id, '10 s')"), 'failed', 'cancelled job fails');
my $took = time - $t0;
ok($took < 1.0, "cancel took effect in under a second ($took s)");
like($node->safe_psql('postgres', "SELECT error FROM rec.models WHERE model_id = $id"),
	qr/cancelled by rec\.cancel\(\)/, 'error says who cancelled');
is(no_tables($id), 't', 'nothing written for a cancelled job');
is($node->safe_psql('postgres', 'SELECT count(*) FROM rec.training_progress'), '0',
	'progress view empty again');

# --- a queued job locked by another transaction when the worker looks for
# work (here a rec.cancel() that is then rolled back) is not stranded
$id = start_long_job('busy');
my $locked = $node->safe_psql('postgres', "SELECT rec.train('locked', 'small', factors => 4, iterations => 2)");
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe("SELECT rec.cancel($locked)");
$node->safe_psql('postgres', "SELECT rec.cancel($id)");
is($node->safe_psql('postgres', "SELECT rec.wait($id, '10 s')"), 'failed', 'the busy job ends');
# the worker has looked for the next job: it is waiting, or gone
$node->poll_query_until('postgres', q{
	SELECT count(*) = 0 OR bool_and(wait_event = 'Extension')
	FROM pg_stat_activity WHERE backend_type = 'rec training worker'})
  or die 'the worker did not look for the next job';
$locker->query_safe('ROLLBACK');
$locker->quit;
is($node->safe_psql('postgres', "SELECT rec.wait($locked, '30 s')"), 'ready',
	'a job locked while the worker looked is trained once the lock goes');

# --- cancel while the source query runs (it sleeps: no row arrives for 30 s)
$id = $node->safe_psql('postgres',
	"SELECT rec.train('slow source', 'SELECT user_id, item_id FROM ev, pg_sleep(30)')");
$node->poll_query_until('postgres',
	"SELECT phase = 'loading' FROM rec.training_progress WHERE model_id = $id")
  or die "job $id did not start loading";
$t0 = time;
$node->safe_psql('postgres', "SELECT rec.cancel($id)");
is($node->safe_psql('postgres', "SELECT rec.wait($id, '10 s')"), 'failed', 'cancelled while loading');
$took = time - $t0;
ok($took < 1.0, "cancel interrupted the source query in under a second ($took s)");
like($node->safe_psql('postgres', "SELECT error FROM rec.models WHERE model_id = $id"),
	qr/cancelled by rec\.cancel\(\)/, 'and says so');

# --- a crash while training: the job fails, a queued job survives
$id = start_long_job('crash');
my $queued = $node->safe_psql('postgres',
	"SELECT rec.train('after crash', 'small', factors => 8, iterations => 3)");
is(status($queued), 'queued', 'second job waits its turn');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', "SELECT rec.wait($queued, '60 s')"), 'ready',
	'queued job trained after the restart');
is(status($id), 'failed', 'job running at the crash is failed');
like($node->safe_psql('postgres', "SELECT error FROM rec.models WHERE model_id = $id"),
	qr/server stopped while this job was training/, 'crash reason recorded');
is(no_tables($id), 't', 'nothing of the crashed job is visible');

# --- a fast shutdown while training
$id = start_long_job('shutdown');
$node->stop('fast');
$node->start;
is(status($id), 'failed', 'job running at a fast shutdown is failed');
like($node->safe_psql('postgres', "SELECT error FROM rec.models WHERE model_id = $id"),
	qr/shutting down/, 'shutdown reason recorded');
is(no_tables($id), 't', 'nothing of the stopped job is visible');

# --- the worker terminated by an administrator
$id = start_long_job('terminated');
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM rec.training_progress WHERE model_id = $id");
is($node->safe_psql('postgres', "SELECT rec.wait($id, '10 s')"), 'failed',
	'terminated job fails');
like($node->safe_psql('postgres', "SELECT error FROM rec.models WHERE model_id = $id"),
	qr/terminated/, 'termination recorded');

# --- an error outside any job (the database made read-only, so the worker
# cannot even mark interrupted jobs): logged once, then the worker leaves
# instead of retrying at full speed; a later job gets a new worker
$node->safe_psql('postgres', 'CREATE DATABASE ro');
# (at log_min_messages = log, set above, ERRORs are not logged)
$node->safe_psql('postgres', 'ALTER DATABASE ro SET log_min_messages = warning');
$node->safe_psql('ro', q{
	CREATE EXTENSION rec;
	CREATE TABLE s AS SELECT u AS user_id, (u * 3 + j) % 40 AS item_id
	FROM generate_series(1, 100) u, generate_series(1, 5) j;
});
my $log_offset = -s $node->logfile;
my $ro1 = $node->safe_psql('ro', q{
	BEGIN;
	SELECT rec.train('read-only', 's', factors => 4, iterations => 2);
	ALTER DATABASE ro SET default_transaction_read_only = on;
	COMMIT;
});
$node->wait_for_log(qr/cannot execute UPDATE in a read-only transaction/, $log_offset);
ok($node->poll_query_until('ro',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'rec training worker' AND datname = 'ro'}),
	'the worker leaves after an error outside a job');
my @errors = (slurp_file($node->logfile, $log_offset) =~ /cannot execute UPDATE in a read-only transaction/g);
is(scalar(@errors), 1, 'the error is logged once');
$node->safe_psql('ro', q{SET default_transaction_read_only = off; ALTER DATABASE ro RESET default_transaction_read_only});
my $ro2 = $node->safe_psql('ro', "SELECT rec.train('writable again', 's', factors => 4, iterations => 2)");
is($node->safe_psql('ro', "SELECT rec.wait($ro1, '60 s') || rec.wait($ro2, '60 s')"), 'readyready',
	'the next job gets a new worker, which trains both');

# --- a training thread that cannot be started: the job fails with the
# reason pthread_create gave (it returns its error rather than setting
# errno). The worker's process limit is lowered while the source sleeps,
# so the second training thread of the job cannot start.
$id = $node->safe_psql('postgres',
	"SELECT rec.train('no thread', 'SELECT user_id, item_id FROM small, pg_sleep(1)', factors => 4, iterations => 2, threads => 2)");
$node->poll_query_until('postgres',
	"SELECT phase = 'loading' FROM rec.training_progress WHERE model_id = $id")
  or die "job $id did not start loading";
my $wpid = $node->safe_psql('postgres', "SELECT pid FROM rec.training_progress WHERE model_id = $id");
system('prlimit', "--pid=$wpid", '--nproc=1:') == 0 or die "prlimit failed";
is($node->safe_psql('postgres', "SELECT rec.wait($id, '60 s')"), 'failed', 'job without its threads fails');
like($node->safe_psql('postgres', "SELECT error FROM rec.models WHERE model_id = $id"),
	qr/^could not start a training thread: Resource temporarily unavailable$/,
	'the error names what pthread_create returned');
$id = $node->safe_psql('postgres', "SELECT rec.train('threads again', 'small', factors => 4, iterations => 2, threads => 2)");
is($node->safe_psql('postgres', "SELECT rec.wait($id, '60 s')"), 'ready', 'the next job trains');

# --- a worker that trains job after job does not grow: what a job keeps
# outside its transactions (here its 200 kB source text) is freed before
# the next. Five jobs (two of which fail) run in one worker; the sixth
# sleeps while the worker's memory is logged.
my $pad = "/* " . ('x' x 200_000) . " */";
my $batch = "BEGIN;\n";
for my $n (1 .. 5)
{
	my $where = $n % 2 ? 'true' : 'false';
	$batch .= "SELECT rec.train('job $n', 'SELECT user_id, item_id FROM small WHERE $where $pad', factors => 4, iterations => 2);\n";
}
$batch .= "SELECT rec.train('last', 'SELECT user_id, item_id FROM small, pg_sleep(2) $pad', factors => 4, iterations => 2);\nCOMMIT;\n";
my @jobs = split /\n/, $node->safe_psql('postgres', $batch);
$id = pop @jobs;
$node->poll_query_until('postgres',
	"SELECT phase = 'loading' FROM rec.training_progress WHERE model_id = $id")
  or die "job $id did not start loading";
is($node->safe_psql('postgres',
	"SELECT string_agg(status, ' ' ORDER BY model_id) FROM rec.models WHERE model_id IN (" . join(',', @jobs) . ")"),
	'ready failed ready failed ready', 'five jobs in a row, two failing');
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts(pid) FROM rec.training_progress WHERE model_id = $id");
$node->wait_for_log(qr/level: 0; TopMemoryContext: \d+ total/, $log_offset);
my ($top) = slurp_file($node->logfile, $log_offset) =~ /level: 0; TopMemoryContext: (\d+) total/;
ok($top < 400_000, "the worker's TopMemoryContext holds no earlier job ($top bytes)");
is($node->safe_psql('postgres', "SELECT rec.wait($id, '60 s')"), 'ready', 'and the last job trains');

# --- the memory limit
$node->append_conf('postgresql.conf', "rec.train_memory_limit = '1MB'\n");
$node->reload;
usleep(300_000);
$id = $node->safe_psql('postgres', "SELECT rec.train('too big', 'ev', factors => 64)");
is($node->safe_psql('postgres', "SELECT rec.wait($id, '60 s')"), 'failed', 'job over the limit fails');
like($node->safe_psql('postgres', "SELECT error FROM rec.models WHERE model_id = $id"),
	qr/needs more than rec\.train_memory_limit \(1\.0 MB\)/, 'limit named in the error');

# ranking a holdout needs scores of a block of users for every item, per
# thread: that counts too (here about 10 MB for 20,000 items, where
# training alone needs about 3 MB)
$node->append_conf('postgresql.conf', "rec.train_memory_limit = '8MB'\n");
$node->reload;
usleep(300_000);
$node->safe_psql('postgres', q{
	CREATE TABLE wide AS SELECT u AS user_id, (u * 10 + j) % 20000 AS item_id,
		timestamptz '2025-01-01' + j * interval '1 min' AS occurred_at
	FROM generate_series(1, 2000) u, generate_series(1, 10) j});
my $plain = $node->safe_psql('postgres', "SELECT rec.train('wide', 'wide', factors => 4, iterations => 2, threads => 2)");
$id = $node->safe_psql('postgres',
	"SELECT rec.train('wide, holdout', 'wide', factors => 4, iterations => 2, threads => 2, holdout => true)");
is($node->safe_psql('postgres', "SELECT rec.wait($plain, '60 s') || ' ' || rec.wait($id, '60 s')"),
	'ready failed', 'the holdout ranking counts against the memory limit');
like($node->safe_psql('postgres', "SELECT error FROM rec.models WHERE model_id = $id"),
	qr/needs more than rec\.train_memory_limit \(8\.0 MB\)/, 'and is refused with the limit named');

# --- the thread cap
$node->append_conf('postgresql.conf', "rec.train_memory_limit = '1GB'\nrec.train_max_threads = 1\n");
$node->reload;
usleep(300_000);
$id = $node->safe_psql('postgres', "SELECT rec.train('capped', 'small', factors => 8, iterations => 2, threads => 2)");
is($node->safe_psql('postgres', "SELECT rec.wait($id, '60 s')"), 'ready', 'capped job trains');
is($node->safe_psql('postgres', "SELECT metrics->>'threads' FROM rec.models WHERE model_id = $id"),
	'1', 'threads capped by rec.train_max_threads');

# --- every kernel set gives the same model
my %ids;
for my $kernel ('default', 'avx2', 'portable')
{
	if ($kernel eq 'default') { delete $ENV{REC_ALS_KERNEL}; }
	else { $ENV{REC_ALS_KERNEL} = $kernel; }
	$node->restart;
	$ids{$kernel} = $node->safe_psql('postgres',
		"SELECT rec.train('$kernel', 'small', factors => 20, iterations => 4, solver => 'cg', seed => 3)");
	is($node->safe_psql('postgres', "SELECT rec.wait($ids{$kernel}, '60 s')"), 'ready',
		"model trained with $kernel kernels");
	is($node->safe_psql('postgres', "SELECT metrics->>'kernel' = '$kernel' FROM rec.models WHERE model_id = $ids{$kernel}"),
		't', "$kernel kernels were used") if $kernel ne 'default';
}
delete $ENV{REC_ALS_KERNEL};
for my $kernel ('avx2', 'portable')
{
	my $diff = $node->safe_psql('postgres', qq{
		SELECT max(abs(rec.inner_product(xa.factors, ya.factors) - rec.inner_product(xb.factors, yb.factors)))
		FROM rec.user_factors($ids{default}) xa JOIN rec.user_factors($ids{$kernel}) xb USING (user_id)
		CROSS JOIN (rec.item_factors($ids{default}) ya JOIN rec.item_factors($ids{$kernel}) yb USING (item_id))});
	ok($diff < 1e-3, "$kernel kernels agree with the default ones (max score difference $diff)");
}

# --- DROP EXTENSION takes the factor tables along
ok($node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_class WHERE relname ~ '^model_[0-9]+_(user|item)_factors$'}) > 0,
	'factor tables exist');
$node->safe_psql('postgres', 'DROP EXTENSION rec');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_class WHERE relname ~ '^model_[0-9]+_(user|item)_factors'}), '0',
	'DROP EXTENSION dropped the factor tables');

$node->stop;
done_testing();
