# Serving from a streaming standby: rec.recommend and rec.similar_items
# answer on a hot standby exactly as on the primary, with and without a
# deployed model; a promotion or a purchase on the primary shows on the
# standby once replayed; writes (rec.track, rec.train) fail there with the
# read-only SQLSTATE instead of doing anything surprising; and the training
# launcher does not run on the standby.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('serve_primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('serve_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres', q{
	CREATE EXTENSION rec;
	SELECT rec.generate_demo_data(users => 400, items => 200, events => 8000, seed => 7);
});

my $users = '1, 2, 3, 50, 399, 123456789';
my $query = qq{
	SELECT u, r.rank, r.item_id,
		   -- popularity scores decay to each query's own start time; model
		   -- scores (inner products) must match exactly
		   CASE WHEN r.source = 'als' THEN round(r.score::numeric, 6) END, r.source
	FROM unnest(ARRAY[$users]::bigint[]) u, rec.recommend(u, 10) r
	ORDER BY u, r.rank;
};
my $similar = q{
	SELECT i, s.rank, s.item_id, round(s.score::numeric, 6)
	FROM unnest(ARRAY[1, 2, 3]::bigint[]) i, rec.similar_items(i, 5) s
	ORDER BY i, s.rank;
};

sub compare
{
	my ($what) = @_;
	$primary->wait_for_catchup($standby);
	my $p = $primary->safe_psql('postgres', $query);
	my $s = $standby->safe_psql('postgres', $query);
	isnt($p, '', "primary recommends ($what)");
	is($s, $p, "standby recommends exactly as the primary ($what)");
	is($standby->safe_psql('postgres', $similar),
		$primary->safe_psql('postgres', $similar),
		"standby's similar items equal the primary's ($what)");
	return $s;
}

my $before = compare('popularity only');
like($before, qr/\|popular$/m, 'without a model, popular items are served');

# train and promote on the primary; the standby serves the model once replayed
my $m = $primary->safe_psql('postgres',
	q{SELECT rec.train('standby', factors => 8, iterations => 5, seed => 3)});
is($primary->safe_psql('postgres', "SELECT rec.wait($m, '120 s')"), 'ready', 'model trained');
$primary->safe_psql('postgres', "SELECT rec.promote($m)");
my $after = compare('model promoted');
like($after, qr/\|als$/m, 'the standby serves the promoted model');
like($after, qr/^123456789\|1\|\d+\|\|popular$/m,
	'an unknown user still gets popular items on the standby');

# a purchase on the primary removes the item on the standby once replayed
my ($top) = $standby->safe_psql('postgres',
	'SELECT item_id FROM rec.recommend(1, 1)') =~ /(\d+)/;
$primary->safe_psql('postgres', "SELECT rec.track(1, $top, 'purchase')");
compare('a purchase');
is($standby->safe_psql('postgres',
	"SELECT count(*) FROM rec.recommend(1, 50) WHERE item_id = $top"), '0',
	'the purchased item is gone on the standby too');

# writes fail cleanly on the standby (25006 read_only_sql_transaction)
my ($rc, $out, $err) = $standby->psql('postgres',
	"SELECT rec.track(1, $top, 'view')", on_error_stop => 1);
like($err, qr/read-only transaction/, 'rec.track is refused on the standby');
($rc, $out, $err) = $standby->psql('postgres',
	q{SELECT rec.train('on standby')}, on_error_stop => 1);
like($err, qr/read-only transaction|recovery/, 'rec.train is refused on the standby');
is($standby->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'rec%'}), '0',
	'no rec background worker runs on the standby');

# rollback on the primary: the standby follows
$primary->safe_psql('postgres', 'SELECT rec.undeploy()');
like(compare('undeploy'), qr/\|popular$/m, 'after undeploy the standby serves popular items again');

$standby->stop;
$primary->stop;
done_testing();
