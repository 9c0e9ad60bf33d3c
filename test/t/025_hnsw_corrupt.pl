# rec.hnsw_check finds corruption: bytes of the index file are overwritten
# while the server is stopped, and the check must raise
# ERRCODE_INDEX_CORRUPTED (XX002) with a detail that names what is wrong.
# Scans, inserts and VACUUM on the damaged index must not crash the server.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy;

my $node = PostgreSQL::Test::Cluster->new('hnsw_corrupt');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION rec;
	CREATE FUNCTION public.rv() RETURNS rec.vector LANGUAGE sql VOLATILE AS
	  $$ SELECT ('[' || array_to_string(ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 8)), ',') || ']')::rec.vector $$;
	CREATE TABLE t (id serial PRIMARY KEY, v rec.vector(8)) WITH (autovacuum_enabled = off);
	INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 2000);
	CREATE INDEX t_idx ON t USING rec_hnsw (v rec.vector_l2_ops) WITH (m = 8, ef_construction = 32);
});
is($node->safe_psql('postgres', "SELECT rec.hnsw_check('t_idx')"), '', 'the intact index passes');

my $file = $node->data_dir . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filepath('t_idx')");
$node->stop;
my $pristine = $node->basedir . '/t_idx.pristine';
copy($file, $pristine) or die "copy: $!";

my $BLCKSZ = 8192;

sub read_block
{
	my ($blk) = @_;
	open(my $fh, '<:raw', $file) or die "open: $!";
	seek($fh, $blk * $BLCKSZ, 0);
	read($fh, my $page, $BLCKSZ) == $BLCKSZ or die "short read";
	close($fh);
	return $page;
}

sub write_block
{
	my ($blk, $page) = @_;
	open(my $fh, '+<:raw', $file) or die "open: $!";
	seek($fh, $blk * $BLCKSZ, 0);
	print $fh $page;
	close($fh);
}

# byte offset in the page of slot $off (1-based), from its line pointer
sub slot_offset
{
	my ($page, $off) = @_;
	my $lp = unpack('V', substr($page, 24 + 4 * ($off - 1), 4));
	return $lp & 0x7FFF;
}

# Each case damages a pristine copy of block $blk, then checks.
sub corrupt_case
{
	my ($name, $blk, $damage, $detail, %opt) = @_;
	copy($pristine, $file) or die "copy: $!";
	my $page = read_block($blk);
	$damage->(\$page);
	write_block($blk, $page);
	$node->start;

	my ($ret, $out, $err) = $node->psql('postgres', "SELECT rec.hnsw_check('t_idx')",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/ERROR:  XX002: index "t_idx" is corrupted/, "$name: reported as XX002")
	  or diag($err);
	like($err, $detail, "$name: the detail says what is wrong");

	unless ($opt{check_only})
	{
		# The damaged index may raise errors, but the server must survive.
		# The rows inserted are rolled back (and vacuumed away), so that the
		# heap stays what the pristine index file describes.
		$node->psql('postgres', q{
			SET enable_seqscan = off;
			SELECT count(*) FROM (SELECT id FROM t ORDER BY v OPERATOR(rec.<->) (SELECT public.rv()) LIMIT 50) s});
		$node->psql('postgres', q{
			BEGIN;
			INSERT INTO t (v) SELECT public.rv() FROM generate_series(1, 300);
			ROLLBACK});
		$node->psql('postgres', 'VACUUM t');
		is($node->safe_psql('postgres', 'SELECT 1'), '1', "$name: scans, inserts and VACUUM did not crash");
	}
	$node->stop;
}

# slot layout (src/hnsw/hnsw_int.h): kind, level, deleted, count0 (1 byte
# each), heap TID (6), unused (2), upper (4), norm2 (4), neighbour ids (4
# each). Block 1 holds elements only (the build writes them first).

corrupt_case('neighbour id beyond the end', 1, sub {
	my $p = shift;
	substr($$p, slot_offset($$p, 1) + 20, 4) = pack('V', 0xFFFFFF00);
}, qr/DETAIL:  Element 0 names neighbour 4294967040 on layer 0, which is not an element \(beyond the end\)/);

corrupt_case('unknown slot kind', 1, sub {
	my $p = shift;
	substr($$p, slot_offset($$p, 2), 1) = pack('C', 9);
}, qr/DETAIL:  Slot \(1,2\) has unknown kind 9/);

corrupt_case('neighbour count', 1, sub {
	my $p = shift;
	substr($$p, slot_offset($$p, 1) + 3, 1) = pack('C', 200);
}, qr/DETAIL:  Element 0 has 200 layer-0 neighbours, at most 16 allowed/);

corrupt_case('free-slot count', 1, sub {
	my $p = shift;
	substr($$p, $BLCKSZ - 6, 2) = pack('v', 7);
}, qr/DETAIL:  Block 1 has 0 free slots but its header says 7/);

# the row that slot 3 holds (in the pristine file)
copy($pristine, $file) or die "copy: $!";
my $page1 = read_block(1);
my ($bhi, $blo, $posid) = unpack('vvv', substr($page1, slot_offset($page1, 3) + 4, 6));
my $tid = '(' . ($bhi * 65536 + $blo) . ",$posid)";
corrupt_case('heap TID', 1, sub {
	my $p = shift;
	substr($$p, slot_offset($$p, 3) + 8, 2) = pack('v', 2000);
}, qr/DETAIL:  Heap row \Q$tid\E is not held by any element reachable from the entry point/);

corrupt_case('line pointer', 1, sub {
	my $p = shift;
	my $lp = unpack('V', substr($$p, 24 + 4 * 2, 4));
	substr($$p, 24 + 4 * 2, 4) = pack('V', ($lp & ~0x7FFF) | 8184);
}, qr/DETAIL:  Slot \(1,3\) at offset 8184 lies outside the page's item space/, check_only => 1);

# meta page: RHnswMetaData after the page header; entry_level at 24 + 32
corrupt_case('entry point level', 0, sub {
	my $p = shift;
	substr($$p, 24 + 32, 4) = pack('l<', 99);
}, qr/DETAIL:  Entry point \d+ has level \d+, the meta page says 99/);

# a scan of that index stops with the same SQLSTATE (instead of descending
# 99 layers that do not exist)
copy($pristine, $file) or die "copy: $!";
my $meta = read_block(0);
substr($meta, 24 + 32, 4) = pack('l<', 99);
write_block(0, $meta);
$node->start;
my ($ret, $out, $err) = $node->psql('postgres', q{
	SET enable_seqscan = off;
	SELECT count(*) FROM (SELECT id FROM t ORDER BY v OPERATOR(rec.<->) (SELECT public.rv()) LIMIT 5) s},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  XX002: index "t_idx" has an inconsistent meta page/, 'a scan reports a damaged meta page');
$node->stop;

# back to the pristine file: intact again
copy($pristine, $file) or die "copy: $!";
$node->start;
is($node->safe_psql('postgres', "SELECT rec.hnsw_check('t_idx')"), '', 'the restored index passes');
$node->stop;
done_testing();
