# Zero-downtime promotion: pgbench calls rec.recommend without pause while a
# background session keeps promoting one model, rolling back to the other
# and promoting again. No call may fail, and every result must be exactly
# what one of the two models serves on its own: never a mix.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('als_promote');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION rec;
	INSERT INTO rec.items (item_id) SELECT i FROM generate_series(1, 300) i;
	INSERT INTO rec.events (user_id, item_id, kind, occurred_at)
	SELECT u, i, 'view', now() - interval '1 hour'
	FROM generate_series(1, 400) u, generate_series(1, 300) i
	WHERE (u % 7 = i % 7 AND (u * 3 + i) % 5 = 0) OR (u * i) % 97 = 0;
});

my $a = $node->safe_psql('postgres', "SELECT rec.train('a', factors => 16, iterations => 8, seed => 1)");
my $b = $node->safe_psql('postgres', "SELECT rec.train('b', factors => 16, iterations => 8, seed => 2, alpha => 8)");
is($node->safe_psql('postgres', "SELECT rec.wait($a, '60 s') || rec.wait($b, '60 s')"), 'readyready',
	'two models trained');

# what each model serves on its own, for users 1..50
$node->safe_psql('postgres', q{
	CREATE TABLE expected (model_id bigint, user_id bigint, items bigint[]);
	CREATE TABLE observed (user_id bigint, items bigint[], sources text[]);
});
for my $m ($a, $b)
{
	$node->safe_psql('postgres', qq{
		SELECT rec.promote($m);
		INSERT INTO expected
		SELECT $m, u, (SELECT array_agg(item_id ORDER BY rank) FROM rec.recommend(u, 10))
		FROM generate_series(1, 50) u;
	});
}
my $differ = $node->safe_psql('postgres', q{
	SELECT count(*) FROM expected x JOIN expected y USING (user_id)
	WHERE x.model_id < y.model_id AND x.items <> y.items});
ok($differ >= 40, "the two models recommend differently to most users ($differ of 50)");

# a session that switches models as fast as it can, each switch committed
$node->safe_psql('postgres', qq{
	CREATE PROCEDURE switcher(rounds int) LANGUAGE plpgsql AS \$\$
	DECLARE
		cur bigint;
	BEGIN
		FOR i IN 1..rounds LOOP
			SELECT model_id INTO cur FROM rec.deployments WHERE surface = 'home';
			PERFORM rec.promote(CASE WHEN cur = $a THEN $b ELSE $a END);
			COMMIT;
			PERFORM rec.rollback();
			COMMIT;
			SELECT model_id INTO cur FROM rec.deployments WHERE surface = 'home';
			PERFORM rec.promote(CASE WHEN cur = $a THEN $b ELSE $a END);
			COMMIT;
			PERFORM pg_sleep(0.002);
		END LOOP;
	END
	\$\$;
});
my $switcher = $node->background_psql('postgres', on_error_stop => 1);
$switcher->query_until(qr/start/, "\\echo start\nCALL switcher(100000);\n");

$node->pgbench(
	'--no-vacuum --client=4 --jobs=2 --time=4',
	0,
	[qr/processed: [1-9]/],
	[qr/^$/],
	'rec.recommend under concurrent promote and rollback: no errors',
	{
		'recommend' => q{
\set uid random(1, 50)
INSERT INTO observed SELECT :uid, array_agg(item_id ORDER BY rank), array_agg(DISTINCT source) FROM rec.recommend(:uid, 10);
}
	});

# stop the switcher
$node->safe_psql('postgres',
	"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CALL switcher%'");
eval { $switcher->quit; };

my $switches = $node->safe_psql('postgres', 'SELECT count(*) FROM rec.deployment_history');
ok($switches > 50, "models were switched while serving ($switches switches)");
my ($total, $from_a, $from_b, $other, $mixed_sources) = split /\|/, $node->safe_psql('postgres', qq{
	SELECT count(*),
		   count(*) FILTER (WHERE o.items = ea.items AND ea.items <> eb.items),
		   count(*) FILTER (WHERE o.items = eb.items AND ea.items <> eb.items),
		   count(*) FILTER (WHERE o.items IS DISTINCT FROM ea.items AND o.items IS DISTINCT FROM eb.items),
		   count(*) FILTER (WHERE o.sources <> '{als}')
	FROM observed o
	JOIN expected ea ON ea.user_id = o.user_id AND ea.model_id = $a
	JOIN expected eb ON eb.user_id = o.user_id AND eb.model_id = $b});
ok($total > 100, "many recommendations observed ($total)");
is($other, '0', 'every result is exactly one model\'s result');
is($mixed_sources, '0', 'every result comes from the model source');
ok($from_a > 0 && $from_b > 0, "both models served ($from_a and $from_b results)");

$node->stop;
done_testing();
