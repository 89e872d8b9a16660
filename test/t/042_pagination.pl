# Keyset pagination over 10,000 integrations while two other sessions keep creating, soft-deleting
# and hard-deleting integrations of the same tenant (pgbench): every one of the 10,000 comes back
# exactly once, in id order. auto_explain shows that list_integrations' page query uses the index.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use AosCusTest;

my $node = aos_cus_node('pagination');
my $P = 'cccccccc-0000-4000-8000-000000000003';
$node->safe_psql('postgres', qq{
CREATE ROLE page_reader LOGIN IN ROLE aos_cus_reader;
INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider, status)
SELECT '$P', 'stable-' || g, 'openai', (ARRAY['created', 'enabled', 'disabled'])[1 + g % 3] FROM generate_series(1, 10000) g;
CREATE TABLE stable AS SELECT id FROM aos_cus.cus_integrations WHERE tenant_id = '$P';
CREATE TABLE seen (ord bigserial, id uuid);
GRANT INSERT, SELECT ON seen TO page_reader;
GRANT USAGE ON SEQUENCE seen_ord_seq TO page_reader;
ANALYZE aos_cus.cus_integrations;
});

# The churn: each pgbench client creates, soft-deletes and hard-deletes its own integrations.
my $script = $node->basedir . '/churn.sql';
open(my $fh, '>', $script) or die;
print $fh qq{\\set n random(1, 1000000000)
SELECT aos_cus.create_integration('$P', 'churn-' || :client_id || '-' || :n, 'openai', 'sk-proj-churn-000000000000000');
SELECT aos_cus.delete_integration('$P', id) FROM aos_cus.cus_integrations
 WHERE tenant_id = '$P' AND name LIKE 'churn-' || :client_id || '-%' AND status <> 'deleted' ORDER BY random() LIMIT 1;
DELETE FROM aos_cus.cus_integrations WHERE tenant_id = '$P' AND id IN (SELECT id FROM aos_cus.cus_integrations
 WHERE tenant_id = '$P' AND name LIKE 'churn-' || :client_id || '-%' AND status = 'deleted' LIMIT 1);
};
close $fh;
my ($churn_out, $churn_err) = ('', '');
my $churn = IPC::Run::start([ 'pgbench', '-n', '-c', '2', '-T', '20', '-f', $script, '-d', $node->connstr('postgres') ],
	'>', \$churn_out, '2>', \$churn_err);
sleep 1;

# Walk every page (100 rows) as a reader acting for the tenant, one statement per page.
$node->safe_psql('postgres', qq{
SET ROLE page_reader;
SET aos_cus.tenant_id = '$P';
DO \$\$
DECLARE last uuid; n int;
BEGIN
    LOOP
        WITH page AS (SELECT id FROM aos_cus.list_integrations('$P', NULL, last, 100)),
             ins AS (INSERT INTO seen (id) SELECT id FROM page ORDER BY id RETURNING id)
        SELECT count(*), max(id::text)::uuid INTO n, last FROM ins;
        EXIT WHEN n = 0;
        PERFORM pg_sleep(0.02);
    END LOOP;
END \$\$;
});
$churn->finish;
like($churn_out, qr/number of transactions actually processed: (\d+)/, 'the churn ran');
my ($churned) = $churn_out =~ /number of transactions actually processed: (\d+)/;
ok(($churned // 0) > 10, "other sessions changed the tenant meanwhile ($churned churn transactions)");
is($node->safe_psql('postgres', q{SELECT count(*) FROM stable s WHERE (SELECT count(*) FROM seen WHERE seen.id = s.id) = 1}),
	'10000', 'each of the 10,000 integrations came back exactly once');
is($node->safe_psql('postgres', q{SELECT count(*) FROM (SELECT id FROM seen GROUP BY id HAVING count(*) > 1) d}), '0',
	'no integration came back twice');
is($node->safe_psql('postgres', q{SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY ord) AS prev FROM seen) s WHERE prev >= id}), '0',
	'pages come in strictly increasing id order');

# The page query uses the primary key index (custom and generic plans alike).
my $offset = -s $node->logfile;
$node->safe_psql('postgres', qq{
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET aos_cus.tenant_id = '$P';
SELECT (SELECT count(*) FROM aos_cus.list_integrations('$P', NULL, s.id, 50)) FROM (SELECT id FROM stable ORDER BY id LIMIT 8) s;
SELECT count(*) FROM aos_cus.list_integrations('$P', 'enabled', NULL, 50);
});
my $plans = substr(slurp_file($node->logfile), $offset);
my @page_plans = grep { /Query Text:\s+SELECT[^\n]*FROM aos_cus\.cus_integrations c/ } split /LOG:  duration: /, $plans;
ok(@page_plans >= 9, 'auto_explain logged the page queries (' . scalar(@page_plans) . ')');
is(scalar(grep { /Index Scan using cus_integrations_pkey on cus_integrations c/ } @page_plans), scalar(@page_plans),
	'every page query is an index scan on the primary key');
is(scalar(grep { /Seq Scan on cus_integrations/ } @page_plans), 0, 'no page query scans the table sequentially');
unlike($plans, qr/SQL function "integration_of"/, 'integration_of() is inlined into the page query');

$node->stop;
done_testing();
