# AosCusTest.pm: a PostgreSQL::Test::Cluster node set up as aos_cus needs it.
package AosCusTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Exporter 'import';

our @EXPORT = qw(aos_cus_node crash_and_restart);

# A started node with aos_cus preloaded, a fresh 0600 keyring, and the extension created in "postgres".
sub aos_cus_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	my $keyring = $node->basedir . '/keyring';
	open(my $fh, '>', $keyring) or die "keyring: $!";
	printf $fh "1:%s\n", join('', map { sprintf('%02x', int(rand(256))) } 1 .. 32);
	close $fh;
	chmod 0600, $keyring;
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
