# The README's examples, in order, through the Citus coordinator (issue 20, requirement 2): scripts/readme_test.py
# on a coordinator with two workers after aos_cus.citus_distribute(). Every block must run; outputs that differ
# on Citus are the ones the README's "Scaling out with Citus" limits name (node id ranges, examples that are not
# delegated), shown here as notes.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AosCusCitus;

my ($coord) = citus_cluster();
$coord->safe_psql('postgres', 'SELECT aos_cus.citus_distribute()');

local $ENV{PGHOST} = $coord->host;
local $ENV{PGPORT} = $coord->port;
my $out = `python3 $ENV{REPO}/scripts/readme_test.py postgres 2>&1`;
my @errors = $out =~ /^(not ok - .* runs)$/mg;
my @differ = $out =~ /^not ok - (.* runs and prints what the README shows)$/mg;
my ($passed) = $out =~ /^readme: (\d+) passed/m;
note "README blocks whose output differs on Citus: " . join('; ', @differ) if @differ;
cmp_ok($passed // 0, '>', 5, 'the README test ran through the coordinator') or diag $out;
is_deeply(\@errors, [], 'every sql and sh block of the README runs through the coordinator') or diag $out;
like($out, qr/^ok - the functions of schema aos_cus are exactly the README's/m, 'the API is the README\'s on Citus too');
ok(@differ <= 3, 'at most the three blocks the README\'s Citus limits explain differ')
	or diag $out;

done_testing();
