# Keyring loading: a keyring that is configured but unusable stops the server from starting with a key-free
# FATAL naming the file and the fix (issue 21: it must not half-work); with no keyring configured the server
# starts, encryption is a clear 55000 and keyring-free functions keep working; the README's command makes a
# keyring the server loads; aos_cus.active_key_version follows a reload; the keyring GUC is superuser-only.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

# The server inherits this variable: env:// references under the prefix resolve to it.
$ENV{AOS_CUS_TEST_ENV_KEY} = 'sk-proj-from-the-environment-0000';
$ENV{OTHER_TEST_ENV_KEY} = 'sk-proj-outside-the-prefix-00000';
my $node = aos_cus_node('keyring');
my $keyring = $node->basedir . '/keyring';
my $k1 = 'a1' x 32;
my $k2 = 'b2' x 32;
my $t = '00000000-0000-4000-8000-0000000000c1';
my $i = '00000000-0000-4000-8000-0000000000d1';

# Write the keyring with a mode (undef: remove it).
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

# Write the keyring, restart, and return the log written since.
sub with_keyring
{
	my ($content, $mode) = @_;
	write_keyring($content, $mode);
	my $offset = -s $node->logfile;
	$node->restart;
	return substr(slurp_file($node->logfile), $offset);
}

# A configured keyring that cannot be used: the server does not start, and the log names the file, why and the fix.
sub start_refused
{
	my ($label, $content, $mode, $why) = @_;
	$node->stop;
	write_keyring($content, $mode);
	my $offset = -s $node->logfile;
	ok(!$node->start(fail_ok => 1), "$label: the server does not start");
	my $log = substr(slurp_file($node->logfile), $offset);
	like($log, qr/FATAL:  aos_cus: keyring not loaded: (?=.*\Q$keyring\E).*$why/, "$label: FATAL names the file and says why");
	like($log, qr/HINT:  Make ".*keyring" a file owned by the server's user, mode 0600/, "$label: the hint says how to fix it");
	unlike($log, qr/a1a1a1a1|b2b2b2b2/, "$label: no key material in the log");
}

# Encrypting fails with 55000 and a detail matching $why; keyring-free functions still work.
sub keyring_refused
{
	my ($label, $log, $why) = @_;
	like($log, qr/WARNING:  aos_cus: keyring not loaded: .*$why/, "$label: the log says why");
	my ($ret, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT aos_cus.encrypt_credential('$t', '$i', 'sk-proj-keyring-test-000000')");
	like($err, qr/55000: the aos_cus keyring is not available/, "$label: encrypting is 55000");
	like($err, qr/DETAIL:  .*$why/, "$label: the error detail says why");
	is($node->safe_psql('postgres', q{SELECT aos_cus.validate_credential_format('vault://x')}), 'vault',
		"$label: validate_credential_format still works");
	is($node->safe_psql('postgres', qq{SET aos_cus.tenant_id = '$t'; SELECT aos_cus.current_tenant()}), $t,
		"$label: tenancy still works");
	unlike($log . $err, qr/a1a1a1a1|b2b2b2b2/, "$label: no key material in the log or the error");
}

my $log = with_keyring("1:$k1\n", 0600);
like($log, qr/keyring ".*keyring" loaded with 1 key version\(s\), highest 1/, 'a good keyring loads');
my $ref = $node->safe_psql('postgres', "SELECT aos_cus.encrypt_credential('$t', '$i', 'sk-proj-keyring-test-000000')");
like($ref, qr{^encrypted://v1/1/}, 'encryption uses version 1');

start_refused('missing file', undef, 0600, 'could not open keyring file .*No such file');
start_refused('unreadable file', "1:$k1\n", 0200, 'could not open keyring file .*Permission denied');
start_refused('group-readable', "1:$k1\n", 0640, 'has group or world access \(mode 0640\)');
start_refused('world-readable', "1:$k1\n", 0604, 'has group or world access \(mode 0604\)');
start_refused('malformed line', "1:$k1\n2:$k2" . "zz\n", 0600, 'line 2 is not');
start_refused('short key', "1:" . ('ab' x 31) . "\n", 0600, 'line 1 is not');
start_refused('version 0', "0:$k1\n", 0600, 'line 1 is not');
start_refused('duplicate version', "1:$k1\n# rotated\n1:$k2\n", 0600, 'line 3 repeats key version 1');
start_refused('empty file', "", 0600, 'it holds no key');
# Not configured: the server starts, without credential encryption.
$node->append_conf('postgresql.conf', "aos_cus.keyring_file = ''");
write_keyring("1:$k1\n", 0600);
$node->start;
keyring_refused('no setting', with_keyring("1:$k1\n", 0600), 'aos_cus.keyring_file is not set');
$node->append_conf('postgresql.conf', "aos_cus.keyring_file = '$keyring'");

# The README's command (Install) makes a keyring the server loads: it runs as the server's user (runuser), so the
# file is that user's, mode 0600. Here the test already runs as that user: its inner command, on a throwaway path.
my ($readme_cmd) = slurp_file("$ENV{REPO}/README.md") =~ /^runuser -u postgres -- sh -c '(.*)'$/m;
ok(defined $readme_cmd, 'the README documents the keyring command');
$readme_cmd =~ s{/etc/postgresql/aos_cus\.keyring}{$keyring}g;
unlink $keyring;
system('sh', '-c', $readme_cmd) == 0 or die "the README keyring command failed";
is(sprintf('%04o', (stat $keyring)[2] & 07777), '0600', "the README's command makes a 0600 file");
like(with_keyring(slurp_file($keyring), 0600), qr/keyring ".*keyring" loaded with 1 key version\(s\), highest 1/,
	"the server loads the README's keyring");

# Two versions: the highest is active by default; aos_cus.active_key_version picks another on reload.
$log = with_keyring("1:$k1\n2:$k2\n", 0600);
like($log, qr/loaded with 2 key version\(s\), highest 2/, 'a two-version keyring loads');
is($node->safe_psql('postgres', "SELECT aos_cus.decrypt_credential('$t', '$i', '$ref')"), 'sk-proj-keyring-test-000000',
	'a version-1 reference still decrypts');
like($node->safe_psql('postgres', "SELECT aos_cus.encrypt_credential('$t', '$i', 'sk-proj-keyring-test-000000')"),
	qr{^encrypted://v1/2/}, 'new encryptions use the highest version');
$node->safe_psql('postgres', 'ALTER SYSTEM SET aos_cus.active_key_version = 1');
$node->reload;
like($node->safe_psql('postgres', "SELECT aos_cus.encrypt_credential('$t', '$i', 'sk-proj-keyring-test-000000')"),
	qr{^encrypted://v1/1/}, 'after a reload, aos_cus.active_key_version = 1 is used');
$node->safe_psql('postgres', 'ALTER SYSTEM SET aos_cus.active_key_version = 3');
$node->reload;
my ($ret, $out, $err) = $node->psql('postgres', "SELECT aos_cus.encrypt_credential('$t', '$i', 'sk-proj-keyring-test-000000')");
like($err, qr/aos_cus.active_key_version 3 is not in the keyring/, 'an active version outside the keyring is a clear error');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET aos_cus.active_key_version');
$node->reload;
is($node->safe_psql('postgres', q{SELECT string_agg(version || ':' || active, ',' ORDER BY version) FROM aos_cus.keyring_status()}),
	'1:false,2:true', 'keyring_status lists both versions, 2 active');
my $fps = $node->safe_psql('postgres', q{SELECT string_agg(fingerprint, ',' ORDER BY version) FROM aos_cus.keyring_status()});
unlike($fps, qr/a1a1|b2b2/, 'fingerprints reveal no key bytes');

# A reference to a version that left the keyring is a clear error.
with_keyring("2:$k2\n", 0600);
($ret, $out, $err) = $node->psql('postgres', "SELECT aos_cus.decrypt_credential('$t', '$i', '$ref')");
like($err, qr/ref of integration $i uses key version 1, which is not in the keyring/, 'an unknown version is named');

# Only superusers read the keyring setting.
$node->safe_psql('postgres', 'CREATE ROLE plain_login LOGIN');
($ret, $out, $err) = $node->psql('postgres', 'SET ROLE plain_login; SHOW aos_cus.keyring_file');
like($err, qr/must be superuser|permission denied/, 'aos_cus.keyring_file is hidden from non-superusers');
unlike(slurp_file($node->logfile), qr/a1a1a1a1|b2b2b2b2/, 'the whole server log holds no key material');

# env:// resolves server environment variables the operator allowed the tenant, under aos_cus.env_credential_prefix only.
$node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, credential_ref)
VALUES ('$t', '$i', 'from-env', 'openai', 'env://AOS_CUS_TEST_ENV_KEY'),
       ('$t', '00000000-0000-4000-8000-0000000000d2', 'outside', 'openai', 'env://OTHER_TEST_ENV_KEY')});
($ret, $out, $err) = $node->psql('postgres', "SELECT aos_cus.resolve_credential('$t', '$i')");
like($err, qr/tenant $t may not use the credential source "env:\/\/AOS_CUS_TEST_ENV_KEY"/,
	'env:// the operator did not allow the tenant is refused, even under the prefix');
$node->safe_psql('postgres', qq{SELECT aos_cus.allow_credential_source('$t', 'env://AOS_CUS_TEST_ENV_KEY'),
	aos_cus.allow_credential_source('$t', 'env://OTHER_TEST_ENV_KEY')});
is($node->safe_psql('postgres', "SELECT aos_cus.resolve_credential('$t', '$i')"), 'sk-proj-from-the-environment-0000',
	'env:// under the prefix resolves from the server environment');
($ret, $out, $err) = $node->psql('postgres', "SELECT aos_cus.resolve_credential('$t', '00000000-0000-4000-8000-0000000000d2')");
like($err, qr/names environment variable "OTHER_TEST_ENV_KEY", outside aos_cus.env_credential_prefix "AOS_CUS_"/,
	'env:// outside the prefix is refused');
$node->append_conf('postgresql.conf', "aos_cus.env_credential_prefix = 'OTHER_'");
$node->reload;
is($node->safe_psql('postgres', "SELECT aos_cus.resolve_credential('$t', '00000000-0000-4000-8000-0000000000d2')"),
	'sk-proj-outside-the-prefix-00000', 'aos_cus.env_credential_prefix changes on reload');
unlike(slurp_file($node->logfile), qr/from-the-environment|outside-the-prefix/, 'resolved values never reach the log');

# Without shared_preload_libraries there is no keyring: a clear error, keyring-free functions work.
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
($ret, $out, $err) = $node->psql('postgres', "SELECT aos_cus.encrypt_credential('$t', '$i', 'sk-proj-keyring-test-000000')");
like($err, qr/aos_cus must be loaded via shared_preload_libraries/, 'without preload, encryption names the setting');
is($node->safe_psql('postgres', q{SELECT aos_cus.validate_credential_format('env://AOS_CUS_X')}), 'env',
	'without preload, validate_credential_format works');

$node->stop;
done_testing();
