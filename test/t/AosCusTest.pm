# AosCusTest.pm: a PostgreSQL::Test::Cluster node set up as aos_cus needs it.
package AosCusTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Exporter 'import';

our @EXPORT = qw(aos_cus_node crash_and_restart);

# A started node with aos_cus preloaded, a fresh 0600 keyring, and the extension created in "postgres".
# Options: extra_conf (postgresql.conf lines), init (a hash of PostgreSQL::Test::Cluster init options).
sub aos_cus_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} // {} });
	my $keyring = $node->basedir . '/keyring';
	open(my $fh, '>', $keyring) or die "keyring: $!";
	printf $fh "1:%s\n", join('', map { sprintf('%02x', int(rand(256))) } 1 .. 32);
	close $fh;
	chmod 0600, $keyring;
	fake_clock_restart();
	my $extra = $opts{extra_conf} // '';
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'aos_cus'
aos_cus.keyring_file = '$keyring'
$extra
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION aos_cus');
	return $node;
}

# Under scripts/test.sh --at (AOS_CUS_AT set), restart the fake clock at the instant for this node's server and
# every client this test starts after it, so each test's cluster crosses the same boundary.
sub fake_clock_restart
{
	return unless $ENV{AOS_CUS_AT};
	my ($target, $real) = split /\n/, `env -u LD_PRELOAD -u FAKETIME sh -c 'date -u -d "\$AOS_CUS_AT" +%s && date -u +%s'`;
	die "AOS_CUS_AT '$ENV{AOS_CUS_AT}' is not an instant" if $? != 0;
	$ENV{FAKETIME} = sprintf('+%ds', $target - $real);
}

# SIGKILL the postmaster, wait until it and its children are gone, and start again (crash recovery).
sub crash_and_restart
{
	my ($node) = @_;
	my $pid = $node->{_pid};
	$node->kill9;
	for (my $i = 0; $i < 600 && kill(0, $pid); $i++)
	{
		select(undef, undef, undef, 0.1);
	}
	for (my $try = 0; $try < 60; $try++)
	{
		return if $node->start(fail_ok => 1);
		select(undef, undef, undef, 0.5);
	}
	die "node did not restart after SIGKILL";
}

1;
