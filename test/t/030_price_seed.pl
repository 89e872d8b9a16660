# The committed seed SQL and the generated cost test are exactly what their generators produce
# from data/langfuse-default-model-prices.json, and every model and tier of the JSON is seeded.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $repo = $ENV{REPO} or die "REPO is not set";
for my $script ('price_seed.py', 'gen_cost_test.py')
{
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ 'python3', "$repo/scripts/$script", '--check' ], '>', \$stdout, '2>', \$stderr);
	ok($ok, "scripts/$script --check: committed output matches the generator") or diag($stderr);
}

# Count the JSON's models and pricing tiers with the converter's own reader, then compare with the table.
my ($json_counts, $err);
IPC::Run::run([ 'python3', '-c',
	"import sys; sys.path.insert(0, '$repo/scripts'); import price_seed as p; r = p.load_rows(); "
	  . "print(len({(x['provider'], x['model']) for x in r}), len(r))" ], '>', \$json_counts, '2>', \$err)
  or die "reading the JSON failed: $err";
chomp $json_counts;

my $node = aos_cus_node('seed');
is($node->safe_psql('postgres', q{
SELECT count(DISTINCT (provider, model)) || ' ' || count(*) FROM aos_cus.cus_model_prices WHERE source LIKE 'langfuse: %'}),
	$json_counts, 'every model and pricing tier of the JSON is seeded');
is($node->safe_psql('postgres', q{
SELECT string_agg(provider || ':' || n, ',' ORDER BY provider) FROM (
  SELECT provider, count(DISTINCT model) n FROM aos_cus.cus_model_prices WHERE source LIKE 'langfuse: %' GROUP BY provider) s}),
	'anthropic:32,google:34,openai:101', 'seeded models per provider');

# A seeded price survives dump and restore once (seed rows are not dumped, user rows are).
$node->safe_psql('postgres', q{SELECT aos_cus.set_price('custom', 'dump-model', 1, 2, effective_from => '2020-01-01')});
my $dump = $node->basedir . '/prices.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-d', $node->connstr('restored'), '-f', $dump ], 'restore');
is($node->safe_psql('restored', q{SELECT count(*) FROM aos_cus.cus_model_prices}),
	$node->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_model_prices}), 'same price rows after restore');
is($node->safe_psql('restored', q{SELECT aos_cus.cost_microcents('custom', 'dump-model', 1000000, 1000000)}), '3',
	'the user price works after restore');

$node->stop;
done_testing();
