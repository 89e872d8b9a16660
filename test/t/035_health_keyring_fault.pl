# Issue 22 finding 6: a keyring that is not there for the server (not configured) or holds a wrong key is a fault
# of the server, not of the tenants' credentials. The health worker pauses its probes (integrations keep their
# state), reports the fault once (a WARNING and the health_worker_paused counter) and resumes when the keyring is
# fixed and the server restarted (the keyring is read at postmaster start only); test_credentials() raises the
# fault instead of recording failing. Issue 21: a configured keyring that is missing or unreadable at start stops
# the server from starting at all (FATAL), so nothing is probed or recorded then either.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;
use AosCusMock;

my %keys = mock_keys();
my ($mock, $port) = start_mock_provider();
my $node = aos_cus_node('health_keyring', extra_conf => qq{
aos_cus.health_worker = on
aos_cus.health_database = 'postgres'
aos_cus.health_interval = '1s'
aos_cus.health_timeout = '5s'
aos_cus.egress_allowed_networks = '127.0.0.1/32'
aos_cus.egress_allow_http = on
});
my $keyring = $node->basedir . '/keyring';
my $good_keyring = slurp_file($keyring);
my $t = '00000000-0000-4000-8000-0000000000f1';

# Write the keyring (undef: remove it) with a mode.
sub write_keyring
{
	my ($content, $mode) = @_;
	unlink $keyring;
	return unless defined $content;
	open(my $fh, '>', $keyring) or die "keyring: $!";
	print $fh $content;
	close $fh;
	chmod $mode, $keyring;
}

# Write the keyring, configure it (or, with $unset, no keyring at all), restart, and return the log offset before.
sub keyring_restart
{
	my ($content, $mode, $unset) = @_;
	write_keyring($content, $mode);
	$node->append_conf('postgresql.conf', $unset ? "aos_cus.keyring_file = ''" : "aos_cus.keyring_file = '$keyring'");
	my $offset = -s $node->logfile;
	$node->restart;
	return $offset;
}

# "state|error" of every integration, in name order.
sub states
{
	return $node->safe_psql('postgres', q{SELECT string_agg(health_state || '|' || coalesce(health_error, ''), ',' ORDER BY name)
		FROM aos_cus.cus_integrations});
}

sub counter
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT value FROM aos_cus.stat_counters() WHERE name = '$name'");
}

# Three integrations at the mock with encrypted credentials: the worker probes them every second.
my @ids;
for my $g (1 .. 3)
{
	my $id = sprintf('11111111-0000-4000-8000-%012d', $g);
	$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, credential_ref, base_url)
VALUES ('$t', '$id', 'kf-$g', 'openai', 'enabled', aos_cus.encrypt_credential('$t', '$id', '$keys{GOOD}'), 'http://127.0.0.1:$port')});
	push @ids, $id;
}
ok($node->poll_query_until('postgres', q{SELECT bool_and(health_state = 'healthy') FROM aos_cus.cus_integrations}),
	'with the keyring loaded every integration is probed healthy');

# A configured keyring missing or unreadable at start: the server does not start; nothing is probed or recorded.
for my $fault (['missing keyring', undef, 0600, qr/could not open keyring file/],
	['unreadable keyring', $good_keyring, 0640, qr/keyring file .* has group or world access/])
{
	my ($label, $content, $mode, $why) = @$fault;
	my $before = states();
	$node->stop;
	write_keyring($content, $mode);
	my $offset = -s $node->logfile;
	ok(!$node->start(fail_ok => 1), "$label: the server does not start");
	like(substr(slurp_file($node->logfile), $offset), qr/FATAL:  aos_cus: keyring not loaded: $why/, "$label: FATAL says why");
	write_keyring($good_keyring, 0600);
	$node->start;
	is(states(), $before, "$label: integrations keep their previous state");
}

# No keyring configured, or a wrong key: the server starts, the worker pauses, nothing is recorded failing.
my $round = 0;
for my $fault (['no keyring configured', $good_keyring, 0600, 1, qr/the aos_cus keyring is not available: aos_cus.keyring_file is not set/],
	['wrong key for version 1', "1:" . ('e5' x 32) . "\n", 0600, 0, qr/wrong key for version 1 in the aos_cus keyring/])
{
	my ($label, $content, $mode, $unset, $why) = @$fault;
	my $before = states();
	my $offset = keyring_restart($content, $mode, $unset);
	my $checked = $node->safe_psql('postgres', 'SELECT max(health_checked_at) FROM aos_cus.cus_integrations');
	ok($node->poll_query_until('postgres', q{SELECT value = 1 FROM aos_cus.stat_counters() WHERE name = 'health_worker_paused'}),
		"$label: the pause is counted in stat_counters");
	sleep 4;	# four health intervals
	is(states(), $before, "$label: integrations keep their previous state");
	is($node->safe_psql('postgres', 'SELECT max(health_checked_at) FROM aos_cus.cus_integrations'), $checked, "$label: no probe ran");
	my $log = substr(slurp_file($node->logfile), $offset);
	my @reports = $log =~ /(WARNING:  aos_cus health worker: probes paused: )/g;
	is(scalar @reports, 1, "$label: the fault is reported once in the log");
	like($log, qr/probes paused: $why/, "$label: the report says why");
	is(counter('health_worker_paused'), '1', "$label: counted once");
	like($node->safe_psql('postgres', q{SELECT metrics FROM aos_cus.metrics() metrics}), qr/aos_cus_health_worker_paused_total 1/,
		"$label: metrics() shows the pause");
	is($node->safe_psql('postgres', qq{SET aos_cus.health_min_interval = 0; SELECT aos_cus.request_health_check('$t', '$ids[$round]')}), 't', "$label: a requested check is queued");
	$round++;
	sleep 2;
	is($node->safe_psql('postgres', 'SELECT count(*) FROM aos_cus.cus_health_checks'), $round, "$label: and waits in the queue");
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT * FROM aos_cus.test_credentials('$t', '$ids[1]')");
	like($err, qr/ERROR:  55000: .*(the aos_cus keyring is not available|wrong key for version 1)/, "$label: test_credentials() raises the server fault (55000)");
	is(states(), $before, "$label: test_credentials() recorded nothing");
	unlike($log, qr/e5e5e5e5|$keys{GOOD}/, "$label: no key material in the log");
}

# The keyring is fixed and the server restarted: probes resume, the queued check is probed.
my $checked = $node->safe_psql('postgres', 'SELECT max(health_checked_at) FROM aos_cus.cus_integrations');
keyring_restart($good_keyring, 0600);
ok($node->poll_query_until('postgres', qq{SELECT min(health_checked_at) > '$checked' FROM aos_cus.cus_integrations}),
	'with the keyring back every integration is probed again');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM aos_cus.cus_health_checks'), 'the queued check was probed');
is(states(), 'healthy|,healthy|,healthy|', 'every integration is healthy');
is(counter('health_worker_paused'), '0', 'no pause after the restart');
unlike(slurp_file($node->logfile), qr/credential could not be resolved/, 'no integration was ever recorded with an unresolvable credential');

$node->stop;
$mock->kill_kill;
done_testing();
