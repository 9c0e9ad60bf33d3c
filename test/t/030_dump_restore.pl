# pg_dump and restore keep rec's user data: the catalogue, the events, and
# the event kinds that differ from the built-in defaults (a user-defined kind
# and a changed built-in one). The popularity table is derived and rebuilt by
# the restore itself; recommendations and similar items afterwards are the
# same. Tried with a custom-format archive restored in parallel, with a
# plain SQL script, and data only into a database with the extension.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION rec;
	SELECT rec.generate_demo_data(300, 200, 20000, 5, '2025-06-01 00:00+00');
	INSERT INTO rec.event_kinds VALUES ('wishlist', 3, false);
	UPDATE rec.event_kinds SET weight = 1.5 WHERE kind = 'click';
	UPDATE rec.event_kinds SET suppresses = true WHERE kind = 'add_to_cart';
	SELECT rec.track(7, 11, 'wishlist', 1, '2025-05-31 00:00+00');
	SELECT rec.track(7, 12, 'add_to_cart', 1, '2025-05-31 00:00+00');
	UPDATE rec.items SET available = false WHERE item_id = 13;
	-- an event of an item the catalogue does not have: kept too
	SELECT rec.track(8, 99999, 'view', 1, '2025-05-31 00:00+00');
	-- a refresh with the click weight changed above
	SELECT rec.refresh_popularity();
});

# Everything a restore must reproduce, as one text per database.
my $snapshot = q{
	SELECT 'items ' || md5(string_agg(i::text, '|' ORDER BY item_id)) FROM rec.items i
	UNION ALL
	SELECT 'events ' || count(*) || ' ' || md5(string_agg(e::text, '|' ORDER BY e::text)) FROM rec.events e
	UNION ALL
	SELECT 'kinds ' || string_agg(k::text, ' ' ORDER BY kind) FROM rec.event_kinds k
	UNION ALL
	SELECT 'popularity ' || count(*) || ' ' || string_agg(item_id::text, ',' ORDER BY score_log DESC, item_id)
	  FROM rec.item_popularity
	UNION ALL
	SELECT 'recommend ' || u || ' ' || string_agg(item_id || ':' || source, ',' ORDER BY rank)
	  FROM unnest(ARRAY[1, 7, 8, 42, 100000]) u, rec.recommend(u, 10) GROUP BY u
	UNION ALL
	SELECT 'similar ' || i || ' ' || string_agg(item_id || ':' || round(score::numeric, 9), ',' ORDER BY rank)
	  FROM unnest(ARRAY[1, 2, 3, 50, 199]) i, rec.similar_items(i, 10) GROUP BY i
};
my $before = $node->safe_psql('src', $snapshot);
note($before);
like($before, qr/kinds .*\(click,1\.5,f\).*\(wishlist,3,f\)/s, 'source has the changed and the new kind');
like($before, qr/recommend 7 /, 'source recommends');

my $popularity_scores = q{SELECT string_agg(item_id || ':' || round(score_log::numeric, 6), ',' ORDER BY item_id)
	FROM rec.item_popularity};
my $scores_before = $node->safe_psql('src', $popularity_scores);

my $tmp = PostgreSQL::Test::Utils::tempdir;

# custom format, restored with two parallel jobs
$node->command_ok([ 'pg_dump', '-Fc', '-f', "$tmp/src.dump", '-d', 'src' ], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE dst1');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-j', '2', '-d', 'dst1', "$tmp/src.dump" ],
	'pg_restore -j 2');
is($node->safe_psql('dst1', $snapshot), $before, 'custom format: same data, recommendations and similar items');
is($node->safe_psql('dst1', $popularity_scores), $scores_before, 'custom format: same popularity scores');

# plain SQL
$node->command_ok([ 'pg_dump', '-Fp', '-f', "$tmp/src.sql", '-d', 'src' ], 'pg_dump -Fp');
$node->safe_psql('postgres', 'CREATE DATABASE dst2');
$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst2', '-f', "$tmp/src.sql" ],
	'psql < plain dump');
is($node->safe_psql('dst2', $snapshot), $before, 'plain format: same data, recommendations and similar items');

# data only, into a database where CREATE EXTENSION has seeded the kinds
# (docs/events.md: the triggers merge the changed built-in kinds)
$node->safe_psql('postgres', 'CREATE DATABASE dst3');
$node->safe_psql('dst3', 'CREATE EXTENSION rec');
$node->command_ok([ 'pg_restore', '--exit-on-error', '--data-only', '-d', 'dst3', "$tmp/src.dump" ],
	'pg_restore --data-only');
is($node->safe_psql('dst3', $snapshot), $before, 'data only: same data, recommendations and similar items');

# Only the kinds that differ from the defaults are in the dump.
my $dump = slurp_file("$tmp/src.sql");
my ($kinds) = $dump =~ /^COPY rec\.event_kinds .*?\n(.*?)^\\\.$/ms;
is(join(',', sort map { (split /\t/)[0] } split /\n/, $kinds), 'add_to_cart,click,wishlist',
	'dump holds the changed and the new kinds only');
unlike($dump, qr/^COPY rec\.item_popularity/m, 'derived popularity is not dumped');

# The restored database works on: logging an event changes its answers.
$node->safe_psql('dst1', q{SELECT rec.track(1, (SELECT item_id FROM rec.recommend(1, 1)), 'purchase')});
isnt($node->safe_psql('dst1', q{SELECT string_agg(item_id::text, ',' ORDER BY rank) FROM rec.recommend(1, 10)}),
	$node->safe_psql('src', q{SELECT string_agg(item_id::text, ',' ORDER BY rank) FROM rec.recommend(1, 10)}),
	'restored database takes new events');

$node->stop;
done_testing();
