# Key rotation with a two-version keyring: every credential decrypts before, during (the rotation is
# interrupted midway) and after; afterwards no reference uses the old version, and version 1 can go.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use AosCusTest;

my $node = aos_cus_node('rotation');
my $keyring = $node->basedir . '/keyring';
my $n = 300;

# Replace the keyring (mode 0600) and restart.
sub set_keyring
{
	my ($content) = @_;
	open(my $fh, '>', $keyring) or die "keyring: $!";
	print $fh $content;
	close $fh;
	chmod 0600, $keyring;
	$node->restart;
}

# How many integrations resolve to their expected plaintext (the test keeps them in expected_secret).
sub decryptable
{
	return $node->safe_psql('postgres', q{
		SELECT count(*) FROM aos_cus.cus_integrations i JOIN expected_secret e USING (tenant_id, id)
		 WHERE aos_cus.resolve_credential(i.tenant_id, i.id) = e.secret});
}

# References per key version, as "v1=N v2=M".
sub versions
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg('v' || v || '=' || c, ' ' ORDER BY v) FROM (
		  SELECT split_part(credential_ref, '/', 4) AS v, count(*) AS c FROM aos_cus.cus_integrations GROUP BY 1) s});
}

set_keyring("1:" . ('11' x 32) . "\n");
$node->safe_psql('postgres', qq{
CREATE TABLE expected_secret AS
SELECT ('00000000-0000-4000-8000-' || lpad((g % 30)::text, 12, '0'))::uuid AS tenant_id,
       ('22222222-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid AS id,
       'sk-proj-rotation-' || md5(g::text) AS secret
  FROM generate_series(1, $n) g;
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider, credential_ref)
SELECT tenant_id, id, 'rot-' || id, 'openai', aos_cus.encrypt_credential(tenant_id, id, secret) FROM expected_secret;
});
is(versions(), "v1=$n", "before: $n credentials under version 1");
is(decryptable(), $n, 'before: every credential decrypts');

set_keyring("1:" . ('11' x 32) . "\n2:" . ('22' x 32) . "\n");
is(decryptable(), $n, 'with version 2 added: every credential still decrypts');

# Rotate in committed batches of 10 with a pause between them, and cancel it midway.
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
	  q{DO $$ BEGIN LOOP EXIT WHEN aos_cus.rotate_encryption_key_batch(10) = 0; COMMIT; PERFORM pg_sleep(0.1); END LOOP; END $$} ],
	'>', \$out, '2>', \$err);
my $during = '';
for (my $i = 0; $i < 300; $i++)
{
	$during = versions();
	last if $during =~ /v2=(\d+)/ && $1 >= 50;
	select(undef, undef, undef, 0.1);
}
like($during, qr/v1=\d+ v2=\d+/, "during: both versions in use ($during)");
is(decryptable(), $n, 'during: every credential decrypts while the rotation runs');
$node->safe_psql('postgres', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'DO $$ BEGIN LOOP EXIT WHEN aos_cus.rotate%'});
$h->finish;
like($err, qr/canceling statement due to user request/, 'the rotation was interrupted');
my $interrupted = versions();
like($interrupted, qr/v1=\d+ v2=\d+/, "interrupted: committed batches stay rotated ($interrupted)");
is(decryptable(), $n, 'interrupted: every credential decrypts');

# Rerun to completion: rotate_encryption_key() reports progress and the count.
my ($ret, $rotated, $notices) = $node->psql('postgres', 'SELECT aos_cus.rotate_encryption_key()');
my ($left) = $interrupted =~ /v1=(\d+)/;
is($rotated, $left, "the rerun re-encrypts the $left remaining credentials");
like($notices, qr/NOTICE:  rotate_encryption_key: $left credentials re-encrypted under key version 2 so far/, 'progress is reported by NOTICE');
is(versions(), "v2=$n", 'after: no reference uses version 1');
is(decryptable(), $n, 'after: every credential decrypts');
is($node->safe_psql('postgres', q{SELECT string_agg(version || ':' || credentials, ',' ORDER BY version) FROM aos_cus.keyring_status()}),
	"1:0,2:$n", 'keyring_status counts credentials per version');
is($node->safe_psql('postgres', 'SELECT aos_cus.rotate_encryption_key()'), '0', 'a second rerun has nothing to do');

# Version 1 can now leave the keyring.
set_keyring("2:" . ('22' x 32) . "\n");
is(decryptable(), $n, 'with version 1 removed: every credential decrypts');
unlike(slurp_file($node->logfile), qr/1111111111|2222222222222222222222/, 'no key material in the server log');

$node->stop;
done_testing();
