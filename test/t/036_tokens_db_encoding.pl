# count_tokens in databases whose encoding is not UTF-8: LATIN1 text is converted and counts as in UTF-8;
# SQL_ASCII bytes that are not UTF-8 are refused with 22021 naming the argument, valid UTF-8 bytes count.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use AosCusTest;

my $node = aos_cus_node('tokens_encoding');
my $text = q{'Ça coûte 12 345,67 € ? Non : déjà payé, l''été dernier.'};
my $utf8 = $node->safe_psql('postgres', "SELECT aos_cus.count_tokens($text, 'gpt-4o')");
like($utf8, qr/^\d+$/, 'UTF8 database: a count');

for my $enc ('LATIN9', 'SQL_ASCII')
{
	my $db = lc $enc;
	$node->safe_psql('postgres', "CREATE DATABASE $db ENCODING '$enc' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
	$node->safe_psql($db, 'CREATE EXTENSION aos_cus');
	is($node->safe_psql($db, "SET client_encoding = 'UTF8'; SELECT aos_cus.count_tokens($text, 'gpt-4o')"),
		$utf8, "$enc database: the same count as in UTF-8");
}

# In SQL_ASCII the server takes any bytes: a lone 0xff is not UTF-8.
my ($rc, $out, $err) = $node->psql('sql_ascii',
	q{\set VERBOSITY verbose
SELECT aos_cus.count_tokens('ok ' || convert_from('\xff'::bytea, 'SQL_ASCII'), 'gpt-4o')});
like($err, qr/22021: input is not valid UTF-8/, 'SQL_ASCII database: bytes that are not UTF-8 give 22021 naming input');
($rc, $out, $err) = $node->psql('sql_ascii',
	q{\set VERBOSITY verbose
SELECT aos_cus.count_message_tokens(('[{"role": "user", "content": "ok ' || convert_from('\xff'::bytea, 'SQL_ASCII') || '"}]')::jsonb, 'gpt-4o')});
like($err, qr/22021: messages\[0\]\.content is not valid UTF-8/, 'SQL_ASCII database: a message likewise, naming the element');

$node->stop;
done_testing();
