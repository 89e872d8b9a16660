# The committed seed SQL, upgrade block, disagreement report and generated tests are exactly what their
# generators produce from data/langfuse-default-model-prices.json and data/genai-prices/data.json, and
# every model and tier of the Langfuse JSON and every genai-prices row of the merge is seeded.
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
	  . "g = [x for x in p.merge(r, p.load_genai())[0] if x['source'].startswith('genai-prices: ')]; "
	  . "print(len({(x['provider'], x['model']) for x in r}), len(r)); print(len({(x['provider'], x['model']) for x in g}), len(g))" ],
	'>', \$json_counts, '2>', \$err)
  or die "reading the JSON failed: $err";
my ($langfuse_counts, $genai_counts) = split /\n/, $json_counts;

my $node = aos_cus_node('seed');
is($node->safe_psql('postgres', q{
SELECT count(DISTINCT (provider, model)) || ' ' || count(*) FROM aos_cus.cus_model_prices WHERE source LIKE 'langfuse: %'}),
	$langfuse_counts, 'every model and pricing tier of the Langfuse JSON is seeded');
is($node->safe_psql('postgres', q{
SELECT count(DISTINCT (provider, model)) || ' ' || count(*) FROM aos_cus.cus_model_prices WHERE source LIKE 'genai-prices: %'}),
	$genai_counts, 'every genai-prices model, dated price and tier of the merge is seeded');
is($node->safe_psql('postgres', q{
SELECT string_agg(provider || ':' || n, ',' ORDER BY provider) FROM (
  SELECT provider, count(DISTINCT model) n FROM aos_cus.cus_model_prices GROUP BY provider) s}),
	'anthropic:40,aws_bedrock:81,azure_openai:22,google:64,mistral:31,openai:139',
	'seeded models per provider: every provider but custom is priced');
is($node->safe_psql('postgres', q{
SELECT string_agg(DISTINCT split_part(model, '.', CASE WHEN model ~ '^(global|regional|us|eu|apac)\.' THEN 2 ELSE 1 END), ',')
  FROM aos_cus.cus_model_prices WHERE provider = 'aws_bedrock' AND model ~ '\.'}),
	'amazon,anthropic,deepseek,google,meta,mistral,nvidia,openai,qwen', 'Bedrock prices Amazon, Anthropic, Meta and Mistral models (and more)');
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
