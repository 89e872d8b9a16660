# Issue 13, finding 9: no plaintext key in any log line or pg_stat_statements, with every logging setting at its
# most verbose (log_statement = all, log_min_duration_statement = 0, log_parameter_max_length(_on_error) = -1,
# log_error_verbosity = verbose, debug_print_* on, auto_explain of nested statements with parameters), over the
# simple protocol (psql) and the extended protocol with bind parameters (pgbench -M extended), succeeding and
# failing; utility statements that pg_stat_statements keeps verbatim (DO, EXPLAIN ANALYZE, CREATE TABLE AS, COPY)
# are refused when a key is written in their text.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('secretlog', extra_conf => q{
shared_preload_libraries = 'aos_cus, pg_stat_statements, auto_explain'
pg_stat_statements.track = all
pg_stat_statements.track_utility = on
log_min_messages = debug1
log_min_error_statement = debug5
log_statement = all
log_min_duration_statement = 0
log_parameter_max_length = -1
log_parameter_max_length_on_error = -1
log_error_verbosity = verbose
debug_print_parse = on
debug_print_rewritten = on
debug_print_plan = on
auto_explain.log_min_duration = 0
auto_explain.log_analyze = on
auto_explain.log_verbose = on
auto_explain.log_nested_statements = on
auto_explain.log_parameter_max_length = -1
});
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');

my @chars = ('a' .. 'z', 'A' .. 'Z', '0' .. '9');
my $body1 = join('', map { $chars[ int(rand(@chars)) ] } 1 .. 40);
my $body2 = join('', map { $chars[ int(rand(@chars)) ] } 1 .. 40);
my %v = (
	t => '00000000-0000-4000-8000-0000000000e1',
	o => '00000000-0000-4000-8000-0000000000e2',
	a => '00000000-0000-4000-8000-0000000000a1',
	u => '00000000-0000-4000-8000-0000000000ff',
	x => 'not-a-uuid',
	k => "sk-proj-$body1",     # shaped like a provider key
	s => "zz-custom-$body2",   # recognized only by the function it goes to
);
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider) VALUES ('$v{t}', '$v{a}', 'sl-a', 'openai');
SELECT pg_stat_statements_reset();
});

# Each case: [ expect success, label, SQL with :v placeholders (bind parameters over the extended protocol) ].
my @cases = (
	[ 1, 'create_integration', "SELECT aos_cus.create_integration(:t, 'sl-new-%P', 'openai', :k)" ],
	[ 0, 'create_integration: duplicate name', "SELECT aos_cus.create_integration(:t, 'sl-new-%P', 'custom', :s)" ],
	[ 0, 'create_integration: bad provider', "SELECT aos_cus.create_integration(:t, 'sl-bad', 'openia', :s)" ],
	[ 0, 'create_integration: bad limits', "SELECT aos_cus.create_integration(:t, 'sl-bad', 'openai', :s, '{\"limits\": {\"rpm\": -1}}')" ],
	[ 1, 'rotate_credential', "SELECT aos_cus.rotate_credential(:t, :a, :s)" ],
	[ 0, 'rotate_credential: unknown integration', "SELECT aos_cus.rotate_credential(:t, :u, :k)" ],
	[ 0, 'rotate_credential: malformed uuid', "SELECT aos_cus.rotate_credential(:x, :a, :s)" ],
	[ 0, 'rotate_credential: other tenant', "SET aos_cus.tenant_id = '$v{o}';\nSELECT aos_cus.rotate_credential(:t, :a, :s)" ],
	[ 0, 'encrypt_credential: error after it ran', "SELECT aos_cus.encrypt_credential(:t, :a, :s)::int" ],
	[ 1, 'credential_reference', "SELECT * FROM aos_cus.credential_reference(:t, :a, :s)" ],
	# A utility statement may take a key as a bind parameter (its text has $n), not written in its text.
	[ 'extended', 'EXPLAIN ANALYZE encrypt_credential', "EXPLAIN ANALYZE SELECT aos_cus.encrypt_credential(:t, :a, :s)" ],
	[ 'extended', 'EXPLAIN ANALYZE create_integration', "EXPLAIN ANALYZE SELECT aos_cus.create_integration(:t, 'sl-x-%P', 'openai', :k)" ],
);
# Statements that cannot take bind parameters: literals over both protocols.
my @literal = (
	[ 0, 'DO rotate_credential', "DO \$\$BEGIN PERFORM aos_cus.rotate_credential('$v{t}', '$v{a}', '$v{s}'); END\$\$" ],
	[ 0, 'DO create_integration', "DO \$\$BEGIN PERFORM aos_cus.create_integration('$v{t}', 'sl-do', 'openai', '$v{k}'); END\$\$" ],
	[ 0, 'CREATE TABLE AS encrypt_credential', "CREATE TABLE sl_keys AS SELECT aos_cus.encrypt_credential('$v{t}', '$v{a}', '$v{s}')" ],
	[ 0, 'COPY encrypt_credential', "COPY (SELECT aos_cus.encrypt_credential('$v{t}', '$v{a}', '$v{s}')) TO STDOUT" ],
);

# A secret's body without its last four characters (the hint keeps those by design), as text and as the
# decimal bytes debug_print_* prints a Const with.
my @needles;
foreach my $body ($body1, $body2)
{
	my $b = substr($body, 0, 36);
	push @needles, $b, join(' ', map { ord } split //, substr($b, 0, 12));
}
my $found = sub {
	my ($hay) = @_;
	return join(', ', grep { index($hay, $_) >= 0 } @needles);
};
my $script = $node->basedir . '/case.sql';
my @defs = map { ('-D', "$_=$v{$_}") } sort keys %v;
my $clients = '';
foreach my $c (@cases, @literal)
{
	my ($expect_ok, $label, $sql) = @$c;
	foreach my $proto ('simple', 'extended')
	{
		(my $text = $sql) =~ s/%P/$proto/g;
		my ($ok, $out, $err);
		if ($proto eq 'simple')
		{
			(my $psql = $text) =~ s/:([a-z])\b/'$v{$1}'/g;
			my $ret;
			($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$psql;");
			$ok = $ret == 0;
		}
		else
		{
			open(my $fh, '>', $script) or die;
			print $fh "$text;\n";
			close $fh;
			($out, $err) = run_command([ 'pgbench', '-n', '-t', '1', '-M', 'extended', @defs, '-f', $script,
				$node->connstr('postgres') ]);
			$ok = $err !~ /aborted|ERROR/;
		}
		my $want = $expect_ok eq 'extended' ? $proto eq 'extended' : $expect_ok;
		is($ok ? 1 : 0, $want ? 1 : 0, "$label ($proto protocol) " . ($want ? 'succeeds' : 'fails'));
		is($found->("$out\n$err"), "", "$label ($proto protocol): no secret in what the client got back") or diag("$out\n$err");
		$clients .= "$out\n$err\n";
	}
}
like($clients, qr/must not be written in the text of the DO statement/, 'a key written in a DO is refused with a reason');
like($clients, qr/must not be written in the text of the EXPLAIN statement/, 'a key written in an EXPLAIN is refused with a reason');

# Canaries: the same settings do log parameters, CONTEXT, plans and parse trees of other statements.
open(my $fh, '>', $script) or die;
print $fh "SELECT :c::text AS canary;\nSELECT 1 / (:z::int - 1);\n";
close $fh;
run_command([ 'pgbench', '-n', '-t', '1', '-M', 'extended', '-D', 'c=canary-param-1234', '-D', 'z=1', '-f', $script,
	$node->connstr('postgres') ]);
$node->psql('postgres', "SELECT 'canary-literal-5678' AS canary");

my $pgss = $node->safe_psql('postgres', "SELECT string_agg(query, E'\\n') FROM pg_stat_statements");
like($pgss, qr/rotate_credential/, 'pg_stat_statements recorded the calls');
$node->stop;

my $log = slurp_file($node->logfile);
like($log, qr/parameters: \$1 = 'canary-param-1234'/, 'canary: bind parameters are logged');
like($log, qr/CONTEXT:  unnamed portal with parameters: \$1 = '1'/, 'canary: parameters of a failing statement are logged in CONTEXT');
like($log, qr/Query Text: SELECT 'canary-literal-5678'/, 'canary: auto_explain logs query texts');
like($log, qr/:constvalue/, 'canary: debug_print_* logs parse trees');
like($log, qr/statement hidden by aos_cus: it carries a credential/, 'lines of secret-carrying statements are replaced');

is($found->($log), '', 'no secret in the server log');
is($found->($pgss), '', 'no secret in pg_stat_statements');

done_testing();
