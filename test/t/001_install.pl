# Installation: the extension loads with and without shared_preload_libraries,
# and every SQL object it creates lives in schema rec.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('install');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION rec');
is($node->safe_psql('postgres', q{SELECT '[1,2.5,3]'::rec.vector}),
	'[1,2.5,3]', 'vector round trip');

# Every object the extension owns is in schema rec (or is the schema itself,
# or an access method, which has no schema and is named rec_*).
my $outside = $node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_depend d
	WHERE d.refclassid = 'pg_extension'::regclass
	  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'rec')
	  AND d.deptype = 'e'
	  AND pg_describe_object(d.classid, d.objid, d.objsubid) NOT LIKE '%rec.%'
	  AND pg_describe_object(d.classid, d.objid, d.objsubid) <> 'schema rec'
	  -- access methods have no schema: rec's are named rec_*
	  AND pg_describe_object(d.classid, d.objid, d.objsubid) NOT LIKE 'access method rec\_%'
});
is($outside, '0', 'no extension object outside schema rec');

# Drop and re-create: nothing is left behind. (CREATE EXTENSION made schema
# rec from rec.control; as for any such schema, DROP EXTENSION leaves it,
# empty.)
$node->safe_psql('postgres', 'DROP EXTENSION rec');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_class WHERE relnamespace = 'rec'::regnamespace
	UNION ALL SELECT count(*) FROM pg_proc WHERE pronamespace = 'rec'::regnamespace
	UNION ALL SELECT count(*) FROM pg_type WHERE typnamespace = 'rec'::regnamespace}),
	"0\n0\n0", 'DROP EXTENSION leaves no object behind');
$node->safe_psql('postgres', 'CREATE EXTENSION rec');
$node->restart;
is($node->safe_psql('postgres', q{SET search_path = rec, public; SELECT '[1,2]'::vector <-> '[4,6]'}),
	'5', 'works after restart');

$node->stop;
done_testing();
