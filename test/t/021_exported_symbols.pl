# The libraries export only what PostgreSQL looks up (Pg_magic_func,
# _PG_init, pg_finfo_rec_*) and rec_* functions, so rec.so and pgvector's
# vector.so (or any other module) can live in one server without their C
# symbols meeting. Checks the very library the test servers load.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('symbols');
$node->init;
$node->start;

# The runner stages the build and points dynamic_library_path at it; find
# rec.so the way the server does.
my $path = $node->safe_psql('postgres', 'SHOW dynamic_library_path');
my $pkglibdir = $node->config_data('--pkglibdir');
my @dirs = map { s/\$libdir/$pkglibdir/r } split /:/, $path;
my ($dir) = grep { -f "$_/rec.so" } @dirs;
ok(defined $dir, 'found rec.so on dynamic_library_path') or BAIL_OUT("no rec.so in $path");

# What the server actually loaded is this file.
$node->safe_psql('postgres', 'CREATE EXTENSION rec');
my $probin = $node->safe_psql('postgres',
	q{SELECT DISTINCT probin FROM pg_proc WHERE pronamespace = 'rec'::regnamespace AND prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')});
is($probin, '$libdir/rec', 'SQL functions point at $libdir/rec');

for my $lib (grep { -f } map { "$dir/$_" } qw(rec.so rec_train.so))
{
	my ($stdout, $stderr);
	IPC::Run::run([ 'nm', '-D', '--defined-only', $lib ], '>', \$stdout, '2>', \$stderr)
	  or die "nm failed on $lib: $stderr";
	my @syms = map { (split ' ')[-1] } grep { /\S/ } split /\n/, $stdout;
	ok(scalar(@syms) > 0, "$lib: has dynamic symbols");
	my @bad = grep { !/^(Pg_magic_func|_PG_init|pg_finfo_rec_\w+|rec_\w+)$/ } @syms;
	is_deeply(\@bad, [], "$lib: exports nothing outside Pg_magic_func, _PG_init, pg_finfo_rec_*, rec_*");
	ok((grep { $_ eq 'Pg_magic_func' } @syms), "$lib: exports Pg_magic_func");
	if ($lib =~ m{/rec\.so$})
	{
		ok((grep { $_ eq '_PG_init' } @syms), "$lib: exports _PG_init");
		# Every C function the extension's SQL names is exported with its
		# finfo record.
		my @missing;
		for my $fn (split /\n/, $node->safe_psql('postgres',
				q{SELECT DISTINCT prosrc FROM pg_proc WHERE pronamespace = 'rec'::regnamespace AND prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')}))
		{
			push @missing, $fn unless (grep { $_ eq $fn } @syms) && (grep { $_ eq "pg_finfo_$fn" } @syms);
		}
		is_deeply(\@missing, [], "$lib: every SQL-callable function is exported with its finfo");
	}
}

$node->stop;
done_testing();
