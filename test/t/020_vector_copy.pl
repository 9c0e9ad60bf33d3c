# vector type: binary and text COPY round trips (client-side \copy and
# server-side COPY), the exact binary layout on the wire, and vector_recv's
# handling of malformed binary input (each a clean error with its SQLSTATE).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('vector_copy');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION rec');

my $dir = $node->basedir;

# Awkward values: signed zero, the smallest subnormal, the largest finite
# float4, values that need 9 significant digits, 1 and 16000 dimensions.
$node->safe_psql('postgres', q{
	CREATE TABLE src (id int, v rec.vector);
	INSERT INTO src VALUES
		(1, '[1,2.5,-3]'), (2, '[-0,0,1e-45,-1e-45]'), (3, '[3.4028235e38,-3.4028235e38,1.1754944e-38]'),
		(4, '[0.1,0.2,0.30000001,1.00000012,16777217]'), (5, '[42]'), (6, NULL);
	INSERT INTO src SELECT 7, array_agg(sin(i) * 10 ^ (i % 13 - 6))::real[]::rec.vector FROM generate_series(1, 16000) i;
	INSERT INTO src SELECT 100 + i, array_agg(random() * 2 - 1)::real[]::rec.vector
	FROM generate_series(1, 200) i, generate_series(1, 1 + i % 40) j GROUP BY i;
	CREATE TABLE dst (LIKE src);
	CREATE TABLE dst2 (LIKE src);
});

# Compares two tables value by value through the binary send form, which
# tells -0 from 0 (the = operator does not).
sub same_tables
{
	my ($a, $b) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM (
			(SELECT id, rec.vector_send(v) FROM $a EXCEPT ALL SELECT id, rec.vector_send(v) FROM $b)
			UNION ALL
			(SELECT id, rec.vector_send(v) FROM $b EXCEPT ALL SELECT id, rec.vector_send(v) FROM $a)) d});
}

# Client-side binary COPY out and back in.
my $bin = "$dir/vectors.bin";
$node->safe_psql('postgres', "\\copy src TO '$bin' (FORMAT binary)");
$node->safe_psql('postgres', "\\copy dst FROM '$bin' (FORMAT binary)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM dst'), '207', 'binary \copy loaded every row');
is(same_tables('src', 'dst'), '0', 'binary \copy round trip keeps every value bit for bit');

# Server-side text COPY out and back in.
my $txt = "$dir/vectors.txt";
$node->safe_psql('postgres', "COPY src TO '$txt'");
$node->safe_psql('postgres', "COPY dst2 FROM '$txt'");
is(same_tables('src', 'dst2'), '0', 'text COPY round trip keeps every value bit for bit');

# The binary file holds pgvector's layout: int16 dims, int16 0, float4s,
# all big-endian. Row 1 is the first tuple after the 19-byte header.
{
	open(my $fh, '<:raw', $bin) or die "open $bin: $!";
	local $/;
	my $data = <$fh>;
	close $fh;
	my ($nfields, $len1, $id, $len2) = unpack('n N N N', substr($data, 19, 14));
	is($nfields, 2, 'tuple has two fields');
	is($len1, 4, 'int field');
	is($id, 1, 'first row is id 1');
	is($len2, 4 + 3 * 4, 'vector field is 4 + 4 * dims bytes');
	my ($dims, $unused, @x) = unpack('n n N3', substr($data, 33, $len2));
	is($dims, 3, 'dims field');
	is($unused, 0, 'reserved field is zero');
	is_deeply([ map { unpack('f>', pack('N', $_)) } @x ], [ 1, 2.5, -3 ],
		'elements are big-endian float4');
}

# Malformed binary input: build one-column binary COPY files by hand.
$node->safe_psql('postgres', 'CREATE TABLE one (v rec.vector); CREATE TABLE two (v rec.vector(2))');

sub copy_file
{
	my ($name, @fields) = @_;
	my $data = "PGCOPY\n\377\r\n\0" . pack('N N', 0, 0);
	for my $f (@fields)
	{
		$data .= pack('n', 1) . pack('N', length($f)) . $f;
	}
	$data .= pack('n', 0xFFFF);
	my $path = "$dir/$name.bin";
	open(my $fh, '>:raw', $path) or die "open $path: $!";
	print $fh $data;
	close $fh;
	return $path;
}

sub vec_bytes
{
	my ($dims, $unused, @x) = @_;
	return pack('n n', $dims & 0xFFFF, $unused) . join('', map { pack('f>', $_) } @x);
}

my $nan = unpack('f>', pack('N', 0x7FC00000));
my $inf = unpack('f>', pack('N', 0x7F800000));
my $ninf = unpack('f>', pack('N', 0xFF800000));

my @cases = (
	[ 'valid', 'one', vec_bytes(3, 0, 1, 2, 3), undef ],
	[ 'signed zero and subnormal', 'one', vec_bytes(2, 0, -0.0, 1.4e-45), undef ],
	[ 'zero dimensions', 'one', vec_bytes(0, 0), qr/22000: a vector needs at least one element/ ],
	[ 'negative dimensions', 'one', vec_bytes(-1, 0), qr/22000: a vector needs at least one element/ ],
	[ 'too many dimensions', 'one', vec_bytes(16001, 0, (0) x 16001), qr/54000: a vector can hold at most 16000 elements/ ],
	[ 'reserved field set', 'one', vec_bytes(1, 1, 5), qr/22P03: .*reserved field must be zero/ ],
	[ 'NaN element', 'one', vec_bytes(2, 0, 1, $nan), qr/22000: a vector cannot contain NaN/ ],
	[ 'infinite element', 'one', vec_bytes(1, 0, $inf), qr/22000: a vector cannot contain infinity/ ],
	[ 'minus infinity', 'one', vec_bytes(2, 0, 0, $ninf), qr/22000: a vector cannot contain infinity/ ],
	[ 'fewer elements than dims', 'one', vec_bytes(3, 0, 1, 2), qr/08P01: insufficient data left in message/ ],
	[ 'header cut short', 'one', pack('n', 1), qr/08P01: insufficient data left in message/ ],
	[ 'more elements than dims', 'one', vec_bytes(1, 0, 1, 2), qr/22P03: incorrect binary data format/ ],
	[ 'typmod enforced', 'two', vec_bytes(3, 0, 1, 2, 3), qr/22000: vector has 3 dimensions, expected 2/ ],
	[ 'typmod satisfied', 'two', vec_bytes(2, 0, 1, 2), undef ],
);

for my $c (@cases)
{
	my ($name, $table, $bytes, $want) = @$c;
	my $path = copy_file($name =~ s/\W/_/gr, $bytes);
	my ($ret, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nCOPY $table FROM '$path' (FORMAT binary)");
	if (defined $want)
	{
		isnt($ret, 0, "$name: rejected");
		like($err, $want, "$name: error and SQLSTATE");
	}
	else
	{
		is($ret, 0, "$name: accepted") or diag($err);
	}
}
is($node->safe_psql('postgres', 'SELECT string_agg(v::text, \' \' ORDER BY v::text) FROM one'),
	'[-0,1e-45] [1,2,3]', 'only the valid rows were loaded');
is($node->safe_psql('postgres', 'SELECT v::text FROM two'), '[1,2]', 'typmod-satisfying row loaded');

# The server is still up after all of that.
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'server alive');

$node->stop;
done_testing();
