# AosCusMock.pm: start and query test/mock_provider.py (loopback-only mock of the providers' list-models endpoints).
package AosCusMock;

use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Exporter 'import';

our @EXPORT = qw(start_mock_provider mock_stats mock_keys set_mock_key_env);

# Every mock this test started, killed at exit even when the test dies or bails out.
my @mocks;
END { $_->kill_kill for @mocks; }

# Keys the tests use, by name; a "valid-" prefix is accepted by the mock, the suffix picks its answer.
my %keys = (
	GOOD     => 'valid-good-Secret-4711-health',
	BAD      => 'wrong-Secret-0815-health',
	R401     => 'wrong-Secret-0815-health',
	R403     => 'valid-403',
	R429     => 'valid-429',
	R500     => 'valid-500',
	HANG     => 'valid-hang',
	REDIRECT => 'valid-redirect',
	ENDLESS  => 'valid-endless',
);

# The key table (name => value).
sub mock_keys { return %keys; }

# Put every key into the environment as AOS_CUS_KEY_<NAME>, for env:// references of a node started afterwards.
sub set_mock_key_env
{
	$ENV{"AOS_CUS_KEY_$_"} = $keys{$_} for keys %keys;
	return;
}

# Start the mock on a free loopback port (HTTPS with (cert, key) PEM files); returns (IPC::Run handle, port).
# Kill with $h->kill_kill.
sub start_mock_provider
{
	my ($cert, $key) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $port_file = "$dir/port";
	my @tls = $cert ? ('--tls-cert', $cert, '--tls-key', $key) : ();
	my $h = IPC::Run::start([ '/usr/bin/python3', "$ENV{REPO}/test/mock_provider.py", '--port-file', $port_file, @tls ],
		'>', "$dir/out", '2>', "$dir/err");
	push @mocks, $h;
	for (my $i = 0; $i < 100 && !-s $port_file; $i++)
	{
		select(undef, undef, undef, 0.1);
	}
	die "mock provider did not start" unless -s $port_file;
	my $port = PostgreSQL::Test::Utils::slurp_file($port_file);
	chomp $port;
	return ($h, $port);
}

# The mock's request counters, as a hash decoded from its JSON.
sub mock_stats
{
	my ($port) = @_;
	require JSON::PP;
	require IO::Socket::INET;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die "mock: $!";
	print $s "GET /__stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	local $/;
	my $resp = <$s>;
	close $s;
	my ($body) = $resp =~ /\r\n\r\n(.*)\z/s;
	return JSON::PP::decode_json($body);
}

1;
