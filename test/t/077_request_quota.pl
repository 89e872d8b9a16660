# Request quotas (issue 14): rph 50 with 4 pgbench clients making 200 checks: exactly 50 admitted (admission under
# the entry's spinlock), the rest request_quota; after a restart the hour's count is rebuilt from its usage rows.
# The limit's zone keeps the hour boundary at least 20 minutes away (UTC turns hours at :00, Asia/Kolkata at :30).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('quota');
my $T = '77000000-0000-4000-8000-000000000001';
my $Q = '77000000-0000-4000-8000-0000000000a1';
my $R = '77000000-0000-4000-8000-0000000000a2';
my $zone = $node->safe_psql('postgres',
	q{SELECT CASE WHEN extract(minute FROM now()) BETWEEN 20 AND 39 THEN 'UTC' ELSE 'Asia/Kolkata' END});
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, rph, timezone)
VALUES ('$T', '$Q', 'quota', 'openai', 'enabled', 50, '$zone'), ('$T', '$R', 'rebuilt', 'openai', 'enabled', 12, '$zone');
CREATE TABLE quota_decisions (decision text, reason text);
});

my $script = PostgreSQL::Test::Utils::tempdir . '/quota.sql';
open(my $fh, '>', $script) or die "$script: $!";
print $fh "INSERT INTO quota_decisions SELECT decision, reason FROM aos_cus.check('$T', '$Q', 1, 0);\n";
close $fh;
my ($out, $err) = run_command([ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-c', 4, '-j', 2, '-t', 50,
	'-f', $script, 'postgres' ]);
like($out, qr/number of transactions actually processed: 200/, 'pgbench made 200 checks') or diag $err;
is($node->safe_psql('postgres', q{SELECT count(*) FROM quota_decisions WHERE decision = 'allowed'}), '50',
	'rph 50 under 4 concurrent clients: exactly 50 admitted');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT decision || '/' || reason, ',') FROM quota_decisions WHERE decision <> 'allowed'}),
	'blocked/request_quota', 'the other 150 blocked with request_quota');

# Ten calls ingested in the hour; after a restart (shared memory empty) rph 12 admits two more.
$node->safe_psql('postgres', qq{
SELECT aos_cus.ingest_usage('$T', jsonb_build_object('integration_id', '$R', 'call_id', 'rb-' || n, 'model', 'gpt-4o',
       'input_tokens', 1, 'output_tokens', 1, 'started_at', now())) FROM generate_series(1, 10) n});
$node->restart;
is($node->safe_psql('postgres', qq{
SELECT string_agg(c.decision::text, ',' ORDER BY n) FROM generate_series(1, 3) n, aos_cus.check('$T', '$R', n - n + 1, 0) c}),
	'allowed,allowed,blocked', 'after a restart the hour counts its 10 usage rows: 2 more admitted of 12');
# And the concurrent run's count after the restart: the 50 admitted wrote no usage, so they are not known.
is($node->safe_psql('postgres', qq{SELECT used FROM aos_cus.explain_check('$T', '$Q') WHERE dimension = 'rph'}), '0',
	'admissions never ingested are not in durable state: a restart forgets them (documented)');

$node->stop;
done_testing();
