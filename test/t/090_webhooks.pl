# Webhook delivery (issue 15) against a local receiver that verifies every signature with Python's hmac:
# the postmaster SIGKILLed mid-delivery and restarted loses no event and redelivers with the same webhook-id;
# each endpoint gets its events one at a time, in order; no transaction or snapshot while a request is in flight;
# a receiver that is down gets its events once it is back (backoff meanwhile); one that answers 500 forever has
# the event dead-lettered after aos_cus.webhook_max_attempts with growing delays; redeliver(); metrics(); no secret
# in the server log.
use strict;
use warnings;
use IPC::Run;
use IO::Socket::INET;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $dir = PostgreSQL::Test::Utils::tempdir();
my @receivers;
END { local $?; $_->kill_kill for @receivers; }

# Start the receiver (on $port, or a free one); its secrets and log live in a state file across restarts.
sub start_receiver
{
	my ($port) = @_;
	unlink "$dir/port";
	my $h = IPC::Run::start([ '/usr/bin/python3', "$ENV{REPO}/test/webhook_receiver.py", '--port', $port // 0,
			'--port-file', "$dir/port", '--state', "$dir/state.json", '--slow', '2' ],
		'>', "$dir/out", '2>', "$dir/err");
	push @receivers, $h;
	for (my $i = 0; $i < 100 && !-s "$dir/port"; $i++)
	{
		select(undef, undef, undef, 0.1);
	}
	die "receiver did not start" unless -s "$dir/port";
	return ($h, PostgreSQL::Test::Utils::slurp_file("$dir/port"));
}

my ($receiver, $port) = start_receiver();

# One HTTP request to the receiver; returns the body.
sub http
{
	my ($method, $path, $body) = @_;
	$body //= '';
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die "receiver: $!";
	print $s "$method $path HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
	local $/;
	my $resp = <$s>;
	close $s;
	my ($content) = $resp =~ /\r\n\r\n(.*)\z/s;
	return $content;
}

# Every request the receiver recorded.
sub received { return decode_json(http('GET', '/__log')); }

my $node = aos_cus_node('webhooks', extra_conf => qq{
aos_cus.webhook_worker = on
aos_cus.health_database = 'postgres'
aos_cus.egress_allowed_networks = '127.0.0.1/32'
aos_cus.egress_allow_http = on
aos_cus.webhook_retry_base = '200ms'
aos_cus.webhook_retry_max = '1s'
aos_cus.webhook_max_attempts = 4
aos_cus.webhook_projection_interval = 0
restart_after_crash = on
log_statement = 'all'
});
my $tenant = '00000000-0000-4000-8000-0000000000f1';
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'aos_cus webhook worker'}),
	'the webhook worker runs');

# An endpoint at the receiver; its secret (generated or given) is told to the receiver. Returns its id.
my @secrets;
sub endpoint
{
	my ($path, $secret, $events, $format) = @_;
	my $args = join(', ', "'$tenant'", "'http://127.0.0.1:$port$path'", $secret ? "'$secret'" : 'NULL',
		$events ? "ARRAY[$events]" : 'NULL', "'" . ($format // 'standard') . "'");
	my ($id, $s) = split /\|/, $node->safe_psql('postgres', "SELECT webhook_id, secret FROM aos_cus.create_webhook($args)");
	push @secrets, $s;
	http('POST', '/__secret', encode_json({ path => $path, secret => $s }));
	return $id;
}

my $ok = endpoint('/ok/a');
my $slack = endpoint('/ok/slack', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', q{'integration.health_changed'}, 'slack');
my $slow = endpoint('/slow/s', undef, q{'integration.health_changed'});

# Six integrations, each crossing 80% of its budget in check() (one budget.threshold event each), and three health
# changes of the first (healthy -> failing -> healthy -> failing).
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, budget_microcents)
SELECT '$tenant', ('00000000-0000-4000-8000-0000000001' || lpad(g::text, 2, '0'))::uuid, 'i' || g, 'openai', 'enabled', 1000
  FROM generate_series(1, 6) g;
});
$node->safe_psql('postgres', qq{SELECT aos_cus.check('$tenant', id, 850, 0) FROM aos_cus.cus_integrations ORDER BY id});
for my $state (qw(healthy failing healthy failing))
{
	$node->safe_psql('postgres', qq{SELECT aos_cus.record_health('$tenant', '00000000-0000-4000-8000-000000000101', '$state', 1)});
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.cus_webhook_events'), '9', 'nine events in the outbox');

# While a request to the slow endpoint is in flight, the worker holds no transaction or snapshot; then SIGKILL.
my $in_flight;
for (my $i = 0; $i < 300 && !$in_flight; $i++)
{
	($in_flight) = grep { $_->{path} eq '/slow/s' && !$_->{answered} } @{ received() };
	select(undef, undef, undef, 0.05) unless $in_flight;
}
ok($in_flight, 'a delivery to the slow endpoint is in flight');
is($node->safe_psql('postgres', q{SELECT state || '|' || coalesce(backend_xid::text, '-') || '|' || coalesce(backend_xmin::text, '-')
	FROM pg_stat_activity WHERE backend_type = 'aos_cus webhook worker'}), 'idle|-|-',
	'no transaction or snapshot is held during the HTTP request');
crash_and_restart($node);
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM aos_cus.cus_webhook_deliveries WHERE status <> 'delivered'}),
	'after the crash every delivery is delivered');

# What the receiver got: every event at least once per endpoint, in event order, all signatures valid.
my $log = received();
my $expected = $node->safe_psql('postgres', q{
SELECT d.webhook_id || ' ' || string_agg(e.event_id::text, ',' ORDER BY e.id)
  FROM aos_cus.cus_webhook_deliveries d JOIN aos_cus.cus_webhook_events e ON e.tenant_id = d.tenant_id AND e.id = d.event_seq
 GROUP BY d.webhook_id});
my %path_of = ($ok => '/ok/a', $slack => '/ok/slack', $slow => '/slow/s');
for my $line (split /\n/, $expected)
{
	my ($webhook, $ids) = split / /, $line;
	my $path = $path_of{$webhook};
	my (@first, %seen);
	for my $r (grep { $_->{path} eq $path } @$log)
	{
		push @first, $r->{id} unless $seen{ $r->{id} }++;
	}
	is(join(',', @first), $ids, "$path: every event arrived, first arrivals in event order");
}
is(scalar(grep { !$_->{verified} } @$log), 0, 'the receiver verified every signature with Python hmac (' . scalar(@$log) . ' requests)');
my @again = grep { $_->{path} eq '/slow/s' && $_->{id} eq $in_flight->{id} } @$log;
cmp_ok(scalar(@again), '>=', 2, 'the delivery in flight at the crash was sent again with the same webhook-id');
is($node->safe_psql('postgres', qq{SELECT attempts FROM aos_cus.cus_webhook_deliveries d JOIN aos_cus.cus_webhook_events e
	ON e.id = d.event_seq WHERE e.event_id = '$in_flight->{id}' AND d.webhook_id = '$slow'}), '1',
	'the interrupted attempt left no trace: one recorded attempt');
my ($slack_req) = grep { $_->{path} eq '/ok/slack' } @$log;
like($slack_req->{body}, qr/^\{"text": "aos_cus: integration:00000000-0000-4000-8000-000000000101 is failing \(was healthy\)"\}$/,
	'format slack sends {"text": ...}');
my ($std) = grep { $_->{path} eq '/ok/a' && $_->{type} eq 'budget.threshold' } @$log;
my $body = decode_json($std->{body});
is($body->{data}{scope}, "integration:00000000-0000-4000-8000-000000000101", 'the standard body carries type, timestamp and data with the scope');
is($std->{content_type}, 'application/json', 'the body is JSON');

# A receiver answering 500 forever: dead-lettered after 4 attempts, with growing delays.
my $fail = endpoint('/fail/f', undef, q{'budget.exhausted'});
$node->safe_psql('postgres', qq{SELECT aos_cus.check('$tenant', '00000000-0000-4000-8000-000000000102', 5000, 0)});
ok($node->poll_query_until('postgres', qq{SELECT status = 'dead' AND attempts = 4 AND last_http_status = 500
	FROM aos_cus.cus_webhook_deliveries WHERE webhook_id = '$fail'}), 'answered 500 forever: dead-lettered after 4 attempts');
my @fails = grep { $_->{path} eq '/fail/f' } @{ received() };
is(scalar(@fails), 4, 'the receiver got exactly 4 attempts');
is(scalar(keys %{ { map { $_->{id} => 1 } @fails } }), 1, 'all with the same webhook-id');
my @gaps = map { $fails[$_]{arrived} - $fails[ $_ - 1 ]{arrived} } 1 .. 3;
ok($gaps[0] >= 0.09 && $gaps[2] > $gaps[0], sprintf('exponential backoff with jitter between attempts (%.2f s, %.2f s, %.2f s)', @gaps));
my $metrics = $node->safe_psql('postgres', 'SELECT aos_cus.metrics()');
like($metrics, qr/^aos_cus_webhook_deliveries_total\{tenant_id="$tenant",webhook_id="$fail",outcome="dead_lettered"\} 1$/m,
	'metrics(): one dead letter');
like($metrics, qr/^aos_cus_webhook_deliveries_total\{tenant_id="$tenant",webhook_id="$fail",outcome="failed"\} 4$/m, 'metrics(): four failed attempts');
like($metrics, qr/^aos_cus_webhook_deliveries_total\{tenant_id="$tenant",webhook_id="$fail",outcome="retried"\} 3$/m, 'metrics(): three retries');
like($metrics, qr/^aos_cus_webhook_deliveries_total\{tenant_id="$tenant",webhook_id="$ok",outcome="delivered"\} 10$/m,
	'metrics(): ten delivered to the endpoint taking every event (the nine and budget.exhausted)');

# redeliver(): the dead letter goes out again, same webhook-id.
my $dead_id = $fails[0]{id};
is($node->safe_psql('postgres', qq{SELECT aos_cus.redeliver('$dead_id')}), '2',
	'redeliver() queues the event again to both endpoints that had it (one dead-lettered, one delivered)');
ok($node->poll_query_until('postgres', qq{SELECT status = 'dead' AND attempts = 4 FROM aos_cus.cus_webhook_deliveries WHERE webhook_id = '$fail'}),
	'and it is dead-lettered again after 4 more attempts');
is(scalar(grep { $_->{path} eq '/fail/f' && $_->{id} eq $dead_id } @{ received() }), 8, 'with the same webhook-id');

# The receiver down for a while: attempts back off; delivered once it is back.
$node->safe_psql('postgres', 'ALTER SYSTEM SET aos_cus.webhook_max_attempts = 100');
$node->reload;
$receiver->kill_kill;
$node->safe_psql('postgres', qq{SELECT aos_cus.record_health('$tenant', '00000000-0000-4000-8000-000000000101', 'healthy', 1)});
ok($node->poll_query_until('postgres', qq{SELECT attempts >= 3 AND status = 'pending' AND last_error IS NOT NULL
	FROM aos_cus.cus_webhook_deliveries WHERE webhook_id = '$ok' ORDER BY event_seq DESC LIMIT 1}),
	'receiver down: the delivery is retried with backoff, still pending');
like($node->safe_psql('postgres', 'SELECT aos_cus.metrics()'),
	qr/^aos_cus_webhook_oldest_pending_age_seconds\{tenant_id="$tenant",webhook_id="$ok"\} (?!0$)[0-9.]+$/m,
	'metrics(): the oldest undelivered event has an age');
($receiver, $port) = start_receiver($port);
ok($node->poll_query_until('postgres', qq{SELECT count(*) = 0 FROM aos_cus.cus_webhook_deliveries
	WHERE status = 'pending'}), 'receiver back: delivered');
my $last = $node->safe_psql('postgres', q{SELECT event_id FROM aos_cus.cus_webhook_events ORDER BY id DESC LIMIT 1});
ok((grep { $_->{path} eq '/ok/a' && $_->{id} eq $last && $_->{verified} } @{ received() }), 'the receiver got it, signed');

# The egress policy applies at delivery too: with 127.0.0.1 no longer allowed, nothing reaches the receiver.
$node->safe_psql('postgres', q{ALTER SYSTEM SET aos_cus.egress_allowed_networks = ''});
$node->reload;
my $before = scalar(@{ received() });
$node->safe_psql('postgres', qq{SELECT aos_cus.record_health('$tenant', '00000000-0000-4000-8000-000000000101', 'failing', 1)});
ok($node->poll_query_until('postgres', qq{SELECT attempts >= 2 AND last_error = 'egress refused: the target address is not allowed by the egress policy'
	FROM aos_cus.cus_webhook_deliveries WHERE webhook_id = '$ok' ORDER BY event_seq DESC LIMIT 1}),
	'a URL the egress policy now refuses is not connected to: the attempts fail as egress refused');
is(scalar(@{ received() }), $before, 'the receiver got nothing');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET aos_cus.egress_allowed_networks});
$node->reload;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM aos_cus.cus_webhook_deliveries WHERE status = 'pending'}),
	'allowed again: delivered');

# Retention: events delivered (or dead-lettered) everywhere and older than aos_cus.webhook_retention are dropped.
$node->safe_psql('postgres', q{ALTER SYSTEM SET aos_cus.webhook_retention = '1s'});
$node->safe_psql('postgres', q{SELECT pg_sleep(1.1)});
$node->reload;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM aos_cus.cus_webhook_events}),
	'old events no longer pending anywhere are pruned');
is($node->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.cus_webhook_deliveries'), '0', 'with their deliveries');

# A keyring fault (another key under version 1) pauses deliveries without spending attempts; fixed, they resume.
my $keyring = $node->basedir . '/keyring';
my $good_keyring = slurp_file($keyring);
sub write_keyring
{
	open(my $fh, '>', $keyring) or die "keyring: $!";
	print $fh $_[0];
	close $fh;
	chmod 0600, $keyring;
}
write_keyring(sprintf("1:%s\n", 'ab' x 32));
my $offset = -s $node->logfile;
$node->restart;
$node->safe_psql('postgres', qq{SELECT aos_cus.record_health('$tenant', '00000000-0000-4000-8000-000000000101', 'healthy', 1)});
ok($node->wait_for_log(qr/aos_cus webhook worker: deliveries paused: /, $offset), 'a wrong key in the keyring pauses deliveries (WARNING)');
$node->safe_psql('postgres', 'SELECT pg_sleep(1)');
is($node->safe_psql('postgres', qq{SELECT status || ':' || attempts FROM aos_cus.cus_webhook_deliveries WHERE webhook_id = '$ok'
	ORDER BY event_seq DESC LIMIT 1}), 'pending:0', 'paused: no attempt is spent');
write_keyring($good_keyring);
$node->restart;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM aos_cus.cus_webhook_deliveries WHERE status = 'pending'}),
	'the keyring fixed: delivered');

# Key rotation re-encrypts webhook secrets too: with version 1 gone from the keyring, deliveries are still signed.
write_keyring($good_keyring . sprintf("2:%s\n", 'cd' x 32));
$node->restart;
is($node->safe_psql('postgres', 'SELECT aos_cus.rotate_encryption_key()'), scalar(@secrets),
	'rotate_encryption_key re-encrypts every webhook secret');
is($node->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_webhooks WHERE secret_ref NOT LIKE 'encrypted://v1/2/%'}),
	'0', 'no webhook secret is left under version 1');
is($node->safe_psql('postgres', q{SELECT string_agg(version || ':' || credentials, ',' ORDER BY version) FROM aos_cus.keyring_status()}),
	'1:0,2:' . scalar(@secrets), 'keyring_status counts webhook secrets per version');
write_keyring(sprintf("2:%s\n", 'cd' x 32));
$node->restart;
my $rotated = $node->safe_psql('postgres', qq{SELECT aos_cus.record_health('$tenant', '00000000-0000-4000-8000-000000000101', 'failing', 1);
	SELECT event_id FROM aos_cus.cus_webhook_events ORDER BY id DESC LIMIT 1});
$rotated =~ s/^\n//;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM aos_cus.cus_webhook_deliveries WHERE status = 'pending'}),
	'with version 1 removed: delivered');
ok((grep { $_->{path} eq '/ok/a' && $_->{id} eq $rotated && $_->{verified} } @{ received() }),
	'signed with the secret created under version 1 (the receiver verified it)');

# Secrets never reach the server log (log_statement = 'all' logged every statement of this test).
my $server_log = slurp_file($node->logfile);
is(scalar(grep { index($server_log, substr($_, 6)) >= 0 } @secrets), 0, 'no webhook secret in the server log');

$node->stop;
done_testing();
