# rpm = 100 with 8 pgbench clients for 185 s (at least two full calendar minutes): at most 100 admitted per
# calendar minute and not far below. Minutes exist at any date, so CI runs this at the real clock only.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use AosCusTest;

my $node = aos_cus_node('rate', extra_conf => 'max_connections = 40');
my $T = '72000000-0000-4000-8000-000000000001';
my $RATE = '72000000-0000-4000-8000-0000000000a1';
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, rpm)
VALUES ('$T', '$RATE', 'rate', 'openai', 'enabled', 100);
CREATE TABLE rate_admitted (t0 timestamptz, t1 timestamptz);
-- One rate check with the time just before and just after it, kept when admitted.
CREATE FUNCTION rate_check() RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp(); d text;
BEGIN
    SELECT decision INTO d FROM aos_cus.check('$T', '$RATE');
    IF d = 'allowed' THEN INSERT INTO rate_admitted VALUES (t0, clock_timestamp()); END IF;
END \$\$;
});

my $script = PostgreSQL::Test::Utils::tempdir . '/rate.sql';
open(my $fh, '>', $script) or die "$script: $!";
print $fh "SELECT rate_check();\n\\sleep 10 ms\n";
close $fh;
my $rate_out = '';
my $rate = IPC::Run::start([ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-c', 8, '-j', 2, '-T', 185,
	'-f', $script, 'postgres' ], '>', \$rate_out, '2>', \$rate_out);

# Rate windows: every full calendar minute admitted at most 100, and not far below.
$rate->finish;
is($?, 0, 'rate pgbench ran') or diag $rate_out;
my $windows = $node->safe_psql('postgres', q{
WITH m AS (SELECT generate_series(date_trunc('minute', min(t0)) + interval '1 minute',
                                  date_trunc('minute', max(t1)) - interval '1 minute', interval '1 minute') AS w
             FROM rate_admitted)
SELECT m.w, count(*) FILTER (WHERE a.t0 >= m.w AND a.t1 < m.w + interval '1 minute'),
       count(*) FILTER (WHERE a.t1 >= m.w AND a.t0 < m.w + interval '1 minute')
  FROM m LEFT JOIN rate_admitted a ON a.t1 >= m.w AND a.t0 < m.w + interval '1 minute'
 GROUP BY m.w ORDER BY m.w});
my @w = map { [ split /\|/ ] } split /\n/, $windows;
note "rate windows (minute|surely inside|possibly inside):\n$windows";
cmp_ok(scalar(@w), '>=', 2, 'the rate run covered at least two full minutes');
for my $row (@w)
{
	cmp_ok($row->[1], '<=', 100, "minute $row->[0]: at most 100 admitted");
	cmp_ok($row->[2], '>=', 90, "minute $row->[0]: not far below 100");
}

$node->stop;
done_testing();
