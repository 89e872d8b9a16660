# Issue 22 finding 4: a wrong key under an existing keyring version. Each version's fingerprint is recorded in
# aos_cus.cus_keyring_versions at its first encryption; with another key under version 1 nothing encrypts
# (55000 naming the version), decryption says "wrong key for version 1", and once the right key is back every
# credential decrypts: none was written under the wrong key. Rotation skips undecryptable rows and goes on.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('wrong_key');
my $keyring = $node->basedir . '/keyring';
my $right = 'a1' x 32;
my $wrong = 'c3' x 32;
my $t = '00000000-0000-4000-8000-0000000000e1';
my $n = 19;

# Replace the keyring (mode 0600), restart, and return the log written since.
sub set_keyring
{
	my ($content) = @_;
	open(my $fh, '>', $keyring) or die "keyring: $!";
	print $fh $content;
	close $fh;
	chmod 0600, $keyring;
	my $offset = -s $node->logfile;
	$node->restart;
	return substr(slurp_file($node->logfile), $offset);
}

# How many integrations resolve to their expected plaintext.
sub decryptable
{
	return $node->safe_psql('postgres', q{
		SELECT count(*) FROM expected_secret e WHERE aos_cus.resolve_credential(e.tenant_id, e.id) = e.secret});
}

set_keyring("1:$right\n");
$node->safe_psql('postgres', qq{
CREATE TABLE expected_secret (tenant_id uuid, id uuid, secret text);
DO \$\$ DECLARE id uuid; BEGIN
  FOR g IN 1..$n LOOP
    id := aos_cus.create_integration('$t', 'wk-' || g, 'openai', 'sk-proj-wrong-key-test-' || md5(g::text));
    INSERT INTO expected_secret VALUES ('$t', id, 'sk-proj-wrong-key-test-' || md5(g::text));
  END LOOP;
END \$\$;
});
is(decryptable(), $n, "$n credentials stored under version 1");

# Another key under version 1: the server starts, nothing encrypts, decryption names the version.
my $log = set_keyring("1:$wrong\n");
like($log, qr/keyring ".*" loaded with 1 key version/, 'the server starts with the swapped key');
my $id1 = $node->safe_psql('postgres', 'SELECT id FROM expected_secret ORDER BY id LIMIT 1');
my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT aos_cus.create_integration('$t', 'wk-new', 'openai', 'sk-proj-wrong-key-test-new00000')");
like($err, qr/WARNING:  01000: aos_cus: wrong key for version 1 in the keyring/, 'the first use in a backend warns about version 1');
like($err, qr/ERROR:  55000: wrong key for version 1 in the aos_cus keyring: nothing is encrypted with it/,
	'create_integration is refused with 55000 naming version 1');
($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT aos_cus.rotate_credential('$t', '$id1', 'sk-proj-wrong-key-test-rotated00')");
like($err, qr/ERROR:  55000: wrong key for version 1 in the aos_cus keyring/, 'rotate_credential is refused with 55000 naming version 1');
($ret, $out, $err) = $node->psql('postgres', "SELECT aos_cus.encrypt_credential('$t', '$id1', 'sk-proj-wrong-key-test-direct000')");
like($err, qr/wrong key for version 1 in the aos_cus keyring/, 'encrypt_credential is refused');
($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT aos_cus.resolve_credential('$t', '$id1')");
like($err, qr/ERROR:  55000: the stored credential of integration $id1 cannot be decrypted: wrong key for version 1/,
	'decryption says wrong key for version 1 (55000)');
($ret, $out, $err) = $node->psql('postgres', q{SELECT aos_cus.rotate_encryption_key()});
like($err, qr/wrong key for version 1/, 'key rotation under the wrong key is refused too');
is($node->safe_psql('postgres', q{SELECT count(*) FROM aos_cus.cus_integrations}), $n, 'no integration was added');
unlike(slurp_file($node->logfile), qr/a1a1a1a1|c3c3c3c3|wrong-key-test/, 'no key material or secret in the server log');

# The right key is back: every credential decrypts, none was lost.
set_keyring("1:$right\n");
is(decryptable(), $n, 'with the right key restored every credential decrypts: none lost');
is($node->safe_psql('postgres', q{SELECT version || ':' || fingerprint FROM aos_cus.cus_keyring_versions}),
	'1:' . $node->safe_psql('postgres', 'SELECT fingerprint FROM aos_cus.keyring_status() WHERE version = 1'),
	'the first encryption recorded the fingerprint keyring_status shows');
unlike($node->safe_psql('postgres', 'SELECT fingerprint FROM aos_cus.cus_keyring_versions'), qr/a1a1/, 'the fingerprint reveals no key bytes');
$node->safe_psql('postgres', "SELECT aos_cus.rotate_credential('$t', '$id1', 'sk-proj-wrong-key-test-rotated00');
	UPDATE expected_secret SET secret = 'sk-proj-wrong-key-test-rotated00' WHERE id = '$id1'");
is(decryptable(), $n, 'encryption works again with the right key');

# A garbled reference under a version whose key is right is still "tampered", not "wrong key".
my $other = $node->safe_psql('postgres', "SELECT id FROM expected_secret ORDER BY id OFFSET 1 LIMIT 1");
($ret, $out, $err) = $node->psql('postgres', qq{SELECT aos_cus.decrypt_credential('$t', '$other',
	(SELECT credential_ref FROM aos_cus.cus_integrations WHERE id = '$id1'))});
like($err, qr/22023.*tampered, truncated or moved|tampered, truncated or moved/, 'a moved reference under the right key is not called a wrong key');

# Rotation with one undecryptable row: the others are re-encrypted, the row is skipped and reported.
set_keyring("1:$right\n2:" . ('d4' x 32) . "\n");
my $planted = $node->safe_psql('postgres', qq{
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, credential_ref)
SELECT '$t', '00000000-0000-4000-8000-000000000000', 'planted', 'openai', credential_ref
  FROM aos_cus.cus_integrations WHERE id = '$id1' RETURNING id});
($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT aos_cus.rotate_encryption_key_batch(5)");
is($out, '5', 'a batch of 5 re-encrypts 5 credentials, scanning past the undecryptable one');
like($err, qr/WARNING:  01000: rotate_encryption_key_batch: 1 credential\(s\) could not be decrypted and keep their key version\nDETAIL:  integration $planted \(version 1: it does not authenticate/,
	'the batch reports the skipped integration by id');
($ret, $out, $err) = $node->psql('postgres', q{SELECT aos_cus.rotate_encryption_key()});
is($out, $n - 5, 'rotate_encryption_key re-encrypts every other credential');
like($err, qr/rotate_encryption_key: 1 credential\(s\) could not be decrypted.*\n.*integration $planted/, 'and reports the skipped one');
is($node->safe_psql('postgres', q{SELECT string_agg(v || '=' || c, ' ' ORDER BY v) FROM (
	SELECT split_part(credential_ref, '/', 4) AS v, count(*) AS c FROM aos_cus.cus_integrations GROUP BY 1) s}),
	"1=1 2=$n", 'only the planted row keeps version 1');
is($node->safe_psql('postgres', 'SELECT aos_cus.rotate_encryption_key_batch(5)'), '0', 'a further batch has nothing it can do');
is(decryptable(), $n, 'every real credential decrypts after the rotation');
unlike(slurp_file($node->logfile), qr/wrong-key-test|a1a1a1a1|d4d4d4d4/, 'no secret in the server log');

# The fingerprints survive pg_dump: only the extension writes the table.
is($node->safe_psql('postgres', q{SELECT string_agg(version::text, ',' ORDER BY version) FROM aos_cus.cus_keyring_versions}), '1,2',
	'both versions are recorded');
my $dump = $node->basedir . '/dump.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump runs');
like(slurp_file($dump), qr/COPY aos_cus\.cus_keyring_versions/, 'the dump holds the fingerprints');
$node->safe_psql('postgres', 'CREATE ROLE kr_admin LOGIN IN ROLE aos_cus_admin; CREATE ROLE kr_operator LOGIN IN ROLE aos_cus_operator');
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE kr_admin; SELECT count(*) FROM aos_cus.cus_keyring_versions});
like($err, qr/permission denied/, 'aos_cus_admin does not read the fingerprints');
is($node->safe_psql('postgres', q{SET ROLE kr_operator; SELECT count(*) FROM aos_cus.cus_keyring_versions}), '2', 'aos_cus_operator reads them');
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE kr_operator; UPDATE aos_cus.cus_keyring_versions SET fingerprint = '0000000000000000'});
like($err, qr/permission denied/, 'aos_cus_operator cannot change them');

$node->stop;
done_testing();
