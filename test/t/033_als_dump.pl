# pg_dump and restore keep trained models: the registry (with the model id
# sequence), the deployments and their history, the holdout, and each
# version's factor tables with their rec_hnsw index; the restored database
# (in the same cluster, and in another one) serves the same
# recommendations, the requesting roles map by name, and new jobs get new
# ids.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('als_dump');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION rec;
	SELECT rec.generate_demo_data(300, 200, 20000, 5, '2025-06-01 00:00+00');
});
my $m1 = $node->safe_psql('src', "SELECT rec.train('one', factors => 16, iterations => 5, holdout => true)");
my $m2 = $node->safe_psql('src', "SELECT rec.train('two', factors => 8, iterations => 5)");
is($node->safe_psql('src', "SELECT rec.wait($m1, '60 s') || rec.wait($m2, '60 s')"), 'readyready', 'trained');
$node->safe_psql('src', "SELECT rec.promote($m1); SELECT rec.promote($m2); SELECT rec.rollback()");

# a model queued by another role: rec.models records it by OID, and the
# dump by name, so a restore elsewhere maps it to that cluster's role
$node->safe_psql('src', q{
	CREATE ROLE rec_dump_analyst;
	GRANT EXECUTE ON FUNCTION rec.train(text, text, integer, integer, double precision,
		double precision, text, integer, bigint, integer, boolean) TO rec_dump_analyst;
	GRANT SELECT ON rec.events TO rec_dump_analyst;
});
my $ma = $node->safe_psql('src',
	"SET ROLE rec_dump_analyst; SELECT rec.train('by analyst', 'SELECT user_id, item_id FROM rec.events', factors => 4, iterations => 2)");
is($node->safe_psql('src', "SELECT rec.wait($ma, '60 s')"), 'ready', 'trained as another role');
$node->safe_psql('src', "SELECT rec.evaluate($m1)");

my $snapshot = q{
	SELECT 'models ' || string_agg(model_id || ':' || name || ':' || status || ':' || users || ':' || items
								   || ':' || (metrics->'holdout'->>'ndcg'), ' ' ORDER BY model_id)
	  FROM rec.models
	UNION ALL
	SELECT 'model rows ' || md5(string_agg(m::text, '|' ORDER BY model_id)) FROM rec.models m
	UNION ALL
	SELECT 'deployments ' || string_agg(surface || ':' || model_id, ' ') FROM rec.deployments
	UNION ALL
	SELECT 'deployment rows ' || md5(string_agg(d::text, '|' ORDER BY surface)) FROM rec.deployments d
	UNION ALL
	SELECT 'history ' || string_agg(action || ':' || model_id || ':' || undone, ' ' ORDER BY event_id)
	  FROM rec.deployment_history
	UNION ALL
	SELECT 'history rows ' || md5(string_agg(h::text, '|' ORDER BY event_id)) FROM rec.deployment_history h
	UNION ALL
	SELECT 'holdout ' || count(*) || ' ' || md5(string_agg(h::text, '|' ORDER BY h::text)) FROM rec.model_holdout h
	UNION ALL
	SELECT 'factors ' || m || ' ' || md5(string_agg(f::text, '|' ORDER BY f::text))
	  FROM unnest(ARRAY[} . "$m1, $m2" . q{]) m, rec.item_factors(m) f GROUP BY m
	UNION ALL
	SELECT 'user factors ' || m || ' ' || count(*) || ' ' || md5(string_agg(f::text, '|' ORDER BY f::text))
	  FROM unnest(ARRAY[} . "$m1, $m2" . q{]) m, rec.user_factors(m) f GROUP BY m
	UNION ALL
	SELECT 'factor tables ' || string_agg(c.relname || ':' || pg_get_userbyid(c.relowner) || ':'
										  || coalesce(c.relacl::text, '-'), ' ' ORDER BY c.relname)
	  FROM pg_class c WHERE c.relkind = 'r' AND c.relname ~ '^model_[0-9]+_(user|item)_factors$'
	UNION ALL
	SELECT 'indexes ' || count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	  JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'rec_hnsw'
	UNION ALL
	SELECT 'recommend ' || u || ' ' || string_agg(item_id || ':' || source, ',' ORDER BY rank)
	  FROM unnest(ARRAY[1, 7, 8, 42, 100000]) u, rec.recommend(u, 10) GROUP BY u
};
my $before = $node->safe_psql('src', $snapshot);
note($before);
like($before, qr/deployments home:$m1/, 'the first model serves after the rollback');
like($before, qr/indexes 3/, 'every item side indexed');
like($before, qr/recommend 7 [0-9:a-z,]*als/, 'the model serves');

my $tmp = PostgreSQL::Test::Utils::tempdir;
$node->command_ok(['pg_dump', '-Fc', '-f', "$tmp/src.dump", '-d', $node->connstr('src')], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(['pg_restore', '-d', $node->connstr('dst'), "$tmp/src.dump"], 'pg_restore');

is($node->safe_psql('dst', $snapshot), $before, 'the restored database has the same models and serves the same');

# into another cluster, where the role has another OID
my $other = PostgreSQL::Test::Cluster->new('als_dump_other');
$other->init;
$other->start;
$other->safe_psql('postgres', 'CREATE ROLE rec_dump_filler1; CREATE ROLE rec_dump_filler2; CREATE ROLE rec_dump_analyst; CREATE DATABASE dst');
$other->command_ok(['pg_restore', '-d', $other->connstr('dst'), "$tmp/src.dump"], 'pg_restore into another cluster');
is($other->safe_psql('dst', $snapshot), $before, 'the other cluster has the same models and serves the same');
is($other->safe_psql('dst', "SELECT requested_by::oid = 'rec_dump_analyst'::regrole::oid FROM rec.models WHERE model_id = $ma"),
	't', "the requester is that cluster's role of that name");
isnt($other->safe_psql('dst', "SELECT 'rec_dump_analyst'::regrole::oid"),
	$node->safe_psql('src', "SELECT 'rec_dump_analyst'::regrole::oid"), '(whose OID differs)');
$other->stop;

my $m3 = $node->safe_psql('dst', "SELECT rec.train('three', factors => 8, iterations => 2)");
ok($m3 > $m2, "a new job gets a new id ($m3)");
is($node->safe_psql('dst', "SELECT rec.wait($m3, '60 s')"), 'ready', 'and trains');

$node->stop;
done_testing();
