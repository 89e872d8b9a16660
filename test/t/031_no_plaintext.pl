# No plaintext anywhere: store credentials and exercise every error path of the functions that take a
# secret, with log_min_messages = debug1, log_min_error_statement = error and pg_stat_statements
# (track = all); then look for the secrets' bytes in the server log, pg_stat_statements, every file of
# the data directory (tables, WAL, stats) and pg_waldump's output for the WAL written meanwhile.
# log_statement = all and log_min_duration_statement = 0 make it harder: those lines are redacted too.
use strict;
use warnings;
use File::Find;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('noplain', extra_conf => q{
shared_preload_libraries = 'aos_cus, pg_stat_statements'
pg_stat_statements.track = all
log_min_messages = debug1
log_min_error_statement = error
log_statement = all
log_min_duration_statement = 0
});
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');

# Two secrets: one with a provider key shape, one with none (recognized only by the function it goes to).
my @chars = ('a' .. 'z', 'A' .. 'Z', '0' .. '9');
my $body1 = join('', map { $chars[ int(rand(@chars)) ] } 1 .. 40);
my $body2 = join('', map { $chars[ int(rand(@chars)) ] } 1 .. 40);
my $s1 = "sk-proj-$body1";
my $s2 = "zz-custom-$body2";
my $t = '00000000-0000-4000-8000-0000000000e1';
my $other = '00000000-0000-4000-8000-0000000000e2';
my $a = '00000000-0000-4000-8000-0000000000a1';
my $d = '00000000-0000-4000-8000-0000000000d1';
my $unknown = '00000000-0000-4000-8000-0000000000ff';

$node->safe_psql('postgres', qq{
CREATE ROLE np_app IN ROLE aos_cus_app;
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider) VALUES ('$t', '$a', 'np-a', 'openai');
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, status, deleted_at) VALUES ('$t', '$d', 'np-d', 'openai', 'deleted', now());
SELECT pg_stat_statements_reset();
});
my $wal_start = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');

# Every statement below hands a secret to aos_cus; ok => 1 ones must succeed, the others must fail.
my @cases = (
	[ 1, 'rotate_credential stores a key', "SELECT aos_cus.rotate_credential('$t', '$a', '$s1')" ],
	[ 1, 'encrypt_credential', "SELECT aos_cus.encrypt_credential('$t', '$a', '$s2')" ],
	[ 1, 'credential_reference', "SELECT * FROM aos_cus.credential_reference('$t', '$a', '$s2')" ],
	[ 1, 'rotate_credential with a shapeless key', "SELECT aos_cus.rotate_credential('$t', '$a', '$s2')" ],
	[ 1, 'resolve_credential', "SELECT aos_cus.resolve_credential('$t', '$a') IS NOT NULL" ],
	[ 0, 'rotate_credential: unknown integration', "SELECT aos_cus.rotate_credential('$t', '$unknown', '$s1')" ],
	[ 0, 'rotate_credential: deleted integration', "SELECT aos_cus.rotate_credential('$t', '$d', '$s2')" ],
	[ 0, 'rotate_credential: padded key', "SELECT aos_cus.rotate_credential('$t', '$a', ' $s2')" ],
	[ 0, 'rotate_credential: huge key', "SELECT aos_cus.rotate_credential('$t', '$a', '$s2' || repeat('x', 3000))" ],
	[ 0, 'rotate_credential: other tenant', "SET aos_cus.tenant_id = '$other'; SELECT aos_cus.rotate_credential('$t', '$a', '$s2')" ],
	[ 0, 'rotate_credential: no privilege', "SET ROLE np_app; SELECT aos_cus.rotate_credential('$t', '$a', '$s2')" ],
	[ 0, 'encrypt_credential: other tenant', "SET aos_cus.tenant_id = '$other'; SELECT aos_cus.encrypt_credential('$t', '$a', '$s1')" ],
	[ 0, 'encrypt_credential: malformed uuid', "SELECT aos_cus.encrypt_credential('not-a-uuid', '$a', '$s2')" ],
	[ 0, 'encrypt_credential: error after it ran', "SELECT aos_cus.encrypt_credential('$t', '$a', '$s2')::int" ],
	[ 0, 'encrypt_credential: no privilege', "SET ROLE np_app; SELECT aos_cus.encrypt_credential('$t', '$a', '$s2')" ],
	[ 0, 'validate_credential_format: a key', "SELECT aos_cus.validate_credential_format('$s1')" ],
	[ 0, 'validate_credential_format: shapeless', "SELECT aos_cus.validate_credential_format('$s2')" ],
	[ 0, 'decrypt_credential: a key as ref', "SELECT aos_cus.decrypt_credential('$t', '$a', '$s1')" ],
	[ 0, 'CHECK: insert a key', "INSERT INTO aos_cus.cus_integrations (tenant_id, name, provider, credential_ref) VALUES ('$t', 'np-x', 'openai', '$s1')" ],
	[ 0, 'CHECK: update to a shapeless key', "UPDATE aos_cus.cus_integrations SET credential_ref = '$s2' WHERE id = '$a'" ],
);
push @cases, (
	[ 1, 'create_integration', "SELECT aos_cus.create_integration('$t', 'np-new', 'openai', '$s1')" ],
	[ 1, 'create_integration with a shapeless key', "SELECT aos_cus.create_integration('$t', 'np-new2', 'custom', '$s2', '{\"limits\": {\"rpm\": 5}}')" ],
	[ 0, 'create_integration: duplicate name', "SELECT aos_cus.create_integration('$t', 'np-new', 'openai', '$s2')" ],
	[ 0, 'create_integration: bad provider', "SELECT aos_cus.create_integration('$t', 'np-bad', 'openia', '$s2')" ],
	[ 0, 'create_integration: bad limits', "SELECT aos_cus.create_integration('$t', 'np-bad', 'openai', '$s2', '{\"limits\": {\"rpm\": -1}}')" ],
	[ 0, 'create_integration: bad time zone', "SELECT aos_cus.create_integration('$t', 'np-bad', 'openai', '$s2', '{\"limits\": {\"timezone\": \"Mars/Base\"}}')" ],
	[ 0, 'create_integration: unknown option', "SELECT aos_cus.create_integration('$t', 'np-bad', 'openai', '$s2', '{\"secret\": 1}')" ],
	[ 0, 'create_integration: other tenant', "SET aos_cus.tenant_id = '$other'; SELECT aos_cus.create_integration('$t', 'np-bad', 'openai', '$s2')" ],
	[ 0, 'create_integration: malformed tenant', "SELECT aos_cus.create_integration('nope', 'np-bad', 'openai', '$s2')" ],
	[ 0, 'create_integration: no privilege', "SET ROLE np_app; SELECT aos_cus.create_integration('$t', 'np-bad', 'openai', '$s1')" ],
);

foreach my $c (@cases)
{
	my ($expect_ok, $label, $sql) = @$c;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	if ($expect_ok)
	{
		is($ret, 0, "$label succeeds");
	}
	else
	{
		isnt($ret, 0, "$label fails");
	}
	unlike($err, qr/\Q$body1\E|\Q$body2\E/, "$label: the error text holds no secret");
}

# The extended protocol with bind parameters (as drivers and PostgREST send them): parameters are
# logged in the DETAIL of log_statement lines unless hidden.
my $script = $node->basedir . '/bind.sql';
open(my $fh, '>', $script) or die;
print $fh "SELECT aos_cus.rotate_credential(:t::uuid, :a::uuid, :s);\n";
close $fh;
my ($bout, $berr) = run_command([ 'pgbench', '-n', '-t', '1', '-M', 'extended', '-D', "t=$t", '-D', "a=$a", '-D', "s=$s1",
	'-f', $script, '-d', $node->connstr('postgres') ]);
like($bout, qr/number of failed transactions: 0|number of transactions actually processed: 1/, 'a bind-parameter call succeeds');
($bout, $berr) = run_command([ 'pgbench', '-n', '-t', '1', '-M', 'extended', '-D', "t=$t", '-D', "a=$unknown", '-D', "s=$s2",
	'-f', $script, '-d', $node->connstr('postgres') ]);
like($berr, qr/does not exist/, 'a failing bind-parameter call fails');
$node->safe_psql('postgres', "SELECT aos_cus.rotate_credential('$t', '$a', '$s2')");
is($node->safe_psql('postgres', "SELECT aos_cus.resolve_credential('$t', '$a')"), $s2, 'the stored credential resolves');

$node->safe_psql('postgres', 'CHECKPOINT');
my $wal_end = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
my $pgss = $node->safe_psql('postgres', 'SELECT string_agg(query, E\'\n\') FROM pg_stat_statements');
like($pgss, qr/rotate_credential/, 'pg_stat_statements recorded the calls');
$node->stop;

# Where a secret could hide: its body without the last four characters (which the hint keeps by design).
my @needles = (substr($body1, 0, 36), substr($body2, 0, 36));
my $found = sub {
	my ($hay) = @_;
	return scalar grep { index($hay, $_) >= 0 } @needles;
};

my $log = slurp_file($node->logfile);
like($log, qr/DEBUG:/, 'the server logged at debug1');
like($log, qr/statement hidden by aos_cus: it carries a credential/, 'log_statement lines of secret-carrying statements are redacted');
like($log, qr/ERROR:  integration $unknown does not exist/, 'the log has the errors');
is($found->($log), 0, 'no secret in the server log');
is($found->($pgss), 0, 'no secret in pg_stat_statements');

my @hits;
find(sub {
	return unless -f $_;
	my $bytes = slurp_file($_);
	push @hits, $File::Find::name if $found->($bytes);
}, $node->data_dir);
is(join(', ', @hits), '', 'no secret in any file of the data directory (tables, indexes, WAL, pg_stat_tmp)');

my ($stdout, $stderr) = run_command([ 'pg_waldump', '-p', $node->data_dir . '/pg_wal', '-s', $wal_start, '-e', $wal_end ]);
like($stdout, qr/Heap/, 'pg_waldump decoded the WAL written during the test');
is($found->($stdout . $stderr), 0, 'no secret in pg_waldump output');

done_testing();
