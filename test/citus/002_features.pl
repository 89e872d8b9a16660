# The README's features through the Citus coordinator (issue 20, requirement 2), for a tenant on each worker:
# layered budgets and scopes, policies and request quotas, estimate_call() feeding check(), hourly rollups, webhook
# delivery and redeliver(), and ingest dedupe per tenant on both ingest paths.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IO::Socket::INET;
use JSON::PP;
use FindBin;
use lib $FindBin::RealBin;
use AosCusCitus;

my ($coord, $w1, $w2) = citus_cluster(extra_conf => q{
aos_cus.webhook_worker = on
aos_cus.webhook_retry_base = '200ms'
aos_cus.webhook_retry_max = '1s'
aos_cus.webhook_projection_interval = 0
});
my @nodes = ($coord, $w1, $w2);
$coord->safe_psql('postgres', 'SELECT aos_cus.citus_distribute()');
my ($T1, $T2, $worker_of) = tenants_on_workers($coord, $w1, $w2, 'b0000000');
my %other = ($T1 => $worker_of->{$T2}, $T2 => $worker_of->{$T1});

sub cq { return $coord->safe_psql('postgres', $_[0]); }
# Where the coordinator decided nothing itself: every check() below is delegated to the tenant's worker.
my $coord_decisions = q{SELECT coalesce(sum(count), 0) FROM aos_cus.stat_decisions()};

my (%integ, %quota, %policy);
my $now = cq('SELECT now()');
for my $t ($T1, $T2)
{
	$policy{$t} = cq(qq{SELECT aos_cus.create_integration('$t', 'policy', 'openai', 'sk-proj-abcdefghijklmnop3456', '{"enabled": true}')});
	$integ{$t} = cq(qq{SELECT aos_cus.create_integration('$t', 'main', 'openai', 'sk-proj-abcdefghijklmnop1234', '{"enabled": true}')});
	$quota{$t} = cq(qq{SELECT aos_cus.create_integration('$t', 'quota', 'openai', 'sk-proj-abcdefghijklmnop5678',
		'{"enabled": true, "limits": {"rph": 3}}')});
}

# 1. Layered budgets and scopes.
for my $t ($T1, $T2)
{
	my $w = $worker_of->{$t}->port;
	my $i = $integ{$t};
	is(cq(qq{SELECT aos_cus.set_scope_limits('$t', 'subject:*', '{"budget_microcents": 1000, "budget_period": "total"}') ->> 'budget_microcents'}),
		'1000', "set_scope_limits() through the coordinator ($w)");
	cq(qq{SELECT aos_cus.set_scope_limits('$t', 'tenant', '{"budget_microcents": 100000000, "budget_period": "total"}')});
	is(join(',', split /\n/, cq(qq{SELECT scope FROM aos_cus.scope_limits('$t')})),
		join(',', sort(map { "integration:$_" } ($i, $quota{$t}, $policy{$t})), 'subject:*', 'tenant'),
		'scope_limits() lists every scope');
	is(cq(qq{SELECT decision || '/' || reason FROM aos_cus.check('$t', '$i', 600, 10, 's-a1', 'user-a', '{"team": "x"}', 'gpt-4o')}),
		'allowed/ok', 'check() with subject, tags and model (8 arguments) admits within the subject budget');
	is(cq(qq{SELECT decision || '/' || reason || '/' || scope || '/' || dimension
		FROM aos_cus.check('$t', '$i', 600, 10, 's-a2', 'user-a', '{"team": "x"}', 'gpt-4o')}),
		'blocked/budget_exceeded/subject:user-a/budget', 'the subject:* budget blocks that subject, naming the scope and dimension');
	is(cq(qq{SELECT decision FROM aos_cus.check('$t', '$i', 600, 10, 's-b1', 'user-b', '{"team": "x"}', 'gpt-4o')}),
		'allowed', 'another subject is not blocked by it');
	my %explain = map { my @c = split /\|/; ("$c[0]/$c[1]" => "$c[2]/$c[3]/$c[4]/$c[10]") } split /\n/,
		cq(qq{SELECT * FROM aos_cus.explain_check('$t', '$i', 600, 10, 's-a3', 'user-a', '{"team": "x"}', 'gpt-4o')});
	is($explain{'subject:user-a/budget'}, '1000/0/600/exceeded', 'explain_check() shows the subject budget: limit, used, reserved, verdict');
	is($explain{'tenant/budget'}, '100000000/0/1200/ok', 'and the tenant budget holding both reservations');
	is(cq(qq{SELECT aos_cus.delete_scope_limits('$t', 'subject:*')}), 't', 'delete_scope_limits() through the coordinator');
	is(cq(qq{SELECT aos_cus.delete_scope_limits('$t', 'subject:*')}), 'f', 'a second delete finds nothing');
	is(cq(qq{SELECT decision FROM aos_cus.check('$t', '$i', 600, 10, 's-a4', 'user-a', '{"team": "x"}', 'gpt-4o')}),
		'allowed', 'without the subject budget the subject is admitted again');
	# A subject's reservation settles to the ingested cost on the tenant's worker.
	cq(qq{SELECT aos_cus.set_scope_limits('$t', 'subject:user-s', '{"budget_microcents": 100000000, "budget_period": "total"}')});
	my $subject_row = sub {
		my ($row) = grep { /^subject:user-s\|budget\|/ } split /\n/,
			cq(qq{SELECT * FROM aos_cus.explain_check('$t', '$i', 0, 0, NULL, 'user-s')});
		return join('/', (split /\|/, $row)[3, 4]);
	};
	is(cq(qq{SELECT decision FROM aos_cus.check('$t', '$i', 5000, 0, 'ss-1', 'user-s', NULL, 'gpt-4o')}), 'allowed',
		'a check() of subject user-s');
	is($subject_row->(), '0/5000', 'reserves its estimate on the subject scope');
	my $cost = cq(qq{SELECT cost_microcents FROM aos_cus.ingest_usage('$t', '{"integration_id": "$i", "call_id": "ss-1",
		"model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100, "subject": "user-s", "started_at": "$now"}')});
	is($subject_row->(), "$cost/0", 'its ingest settles the subject scope to the real cost');
	is(cq(qq{SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n ON n.groupid = p.groupid
		WHERE p.shardid = get_shard_id_for_distribution_column('aos_cus.cus_scope_limits', '$t')}), $w,
		'the tenant\'s scopes are stored on its worker');
}

# Reservation exactness of a scope: 8 clients through the coordinator against T1's subject:user-p budget.
cq(qq{SELECT aos_cus.set_scope_limits('$T1', 'subject:user-p', '{"budget_microcents": 1000000, "budget_period": "total"}')});
my $script = PostgreSQL::Test::Utils::tempdir . '/scope.sql';
open(my $fh, '>', $script) or die "$script: $!";
print $fh qq{\\set est random(1, 1000)
\\set cid random(1, 1000000000000)
SELECT decision FROM aos_cus.check('$T1', '$integ{$T1}', :est, 0, 'p:cid', 'user-p', NULL, 'gpt-4o');
};
close $fh;
my $bench_out = '';
my $bench = IPC::Run::start([ 'pgbench', '-n', '-h', $coord->host, '-p', $coord->port, '-c', 8, '-j', 2, '-t', 300,
	'-f', $script, 'postgres' ], '>', \$bench_out, '2>', \$bench_out);
$bench->finish;
is($?, 0, 'pgbench: 8 clients x 300 checks of one subject through the coordinator') or diag $bench_out;
# Delegated reads are plain calls (no WHERE around them): the rows are filtered here.
my ($row) = grep { /^subject:user-p\|budget\|/ } split /\n/,
	cq(qq{SELECT * FROM aos_cus.explain_check('$T1', '$integ{$T1}', 0, 0, NULL, 'user-p')});
my ($used, $reserved) = (split /\|/, $row)[3, 4];
note "subject:user-p: $used used, $reserved reserved of 1000000";
cmp_ok($used + $reserved, '<=', 1000000, 'admitted reservations of the subject never exceed its budget');
cmp_ok(1000000 - $used - $reserved, '<', 1000, 'the last admissions fill it to within one estimate');
is($coord->safe_psql('postgres', $coord_decisions), '0', 'the coordinator decided nothing: every check() ran on the tenant\'s worker');

# 2. Policies and request quotas. rph and rpd count per calendar hour and day: start at least a minute before the
# next hour (time is an input: the suite also runs under a fake clock just before midnight).
my $to_hour = cq(q{SELECT extract(epoch FROM date_trunc('hour', now()) + interval '1 hour' - now())});
sleep(int($to_hour) + 2) if $to_hour < 60;
for my $t ($T1, $T2)
{
	my $i = $policy{$t};
	my $decide = sub {
		my ($model, $cost, $tokens, $call) = @_;
		$call = defined $call ? "'$call'" : 'NULL';
		return cq(qq{SELECT decision || '/' || reason || '/' || coalesce(dimension, '-')
			FROM aos_cus.check('$t', '$i', $cost, $tokens, $call, NULL, NULL, '$model')});
	};
	ok(cq(qq{SELECT aos_cus.set_policy('$t', '$i', '{"models_allow": ["gpt-4o*"], "models_deny": ["gpt-4o-mini"],
		"max_cost_microcents_per_request": 5000, "max_tokens_per_request": 1000, "max_concurrent": 2}') IS NOT NULL}) eq 't',
		'set_policy() through the coordinator');
	is($decide->('claude-3-5-sonnet', 10, 10), 'blocked/model_not_allowed/model', 'a model outside the allow list');
	is($decide->('gpt-4o-mini', 10, 10), 'blocked/model_not_allowed/model', 'a denied model');
	is($decide->('gpt-4o', 6000, 10), 'blocked/request_cost_cap/request_cost', 'an estimate over the cost cap');
	is($decide->('gpt-4o', 10, 2000), 'blocked/request_token_cap/request_tokens', 'an estimate over the token cap');
	is($decide->('gpt-4o', 10, 10, 'lease-1') . ',' . $decide->('gpt-4o', 10, 10, 'lease-2'), 'allowed/ok/-,allowed/ok/-',
		'two calls in flight');
	is($decide->('gpt-4o', 10, 10, 'lease-3'), 'blocked/concurrency_limit/concurrency', 'a third is over max_concurrent');
	is(cq(qq{SELECT status FROM aos_cus.ingest_usage('$t', '{"integration_id": "$i", "call_id": "lease-1", "model": "gpt-4o",
		"input_tokens": 10, "output_tokens": 1, "started_at": "$now"}')}), 'inserted', 'the first call is ingested: its lease ends');
	is($decide->('gpt-4o', 10, 10, 'lease-3'), 'allowed/ok/-', 'so a third call is admitted');
	# The unpriced rule: block by default, then a tenant default of allow, then the integration's fallback price.
	is(cq(qq{SELECT aos_cus.set_policy('$t', '$i', NULL) IS NULL}), 't', 'set_policy(NULL) removes the policy');
	is($decide->('aos-unpriced-model', 10, 10), 'blocked/unpriced_model/model', 'an unpriced model is blocked by default');
	cq(qq{SELECT aos_cus.set_policy('$t', NULL, '{"unpriced": "allow"}')});
	is($decide->('aos-unpriced-model', 10, 10), 'allowed/ok/-', 'the tenant default allows it');
	cq(qq{SELECT aos_cus.set_policy('$t', '$i', '{"unpriced": "fallback_price", "fallback_input_price": 1000000, "fallback_output_price": 4000000}')});
	my $spent = cq(qq{SELECT spent_microcents FROM aos_cus.current_usage('$t', '$i')});
	is(cq(qq{SELECT status || ':' || cost_microcents FROM aos_cus.ingest_usage('$t', '{"integration_id": "$i", "call_id": "fb-1",
		"model": "aos-unpriced-model", "input_tokens": 1000000, "output_tokens": 500000, "started_at": "$now"}')}), 'inserted:3000000',
		'the integration\'s fallback price charges the unpriced call');
	is(cq(qq{SELECT spent_microcents - $spent FROM aos_cus.current_usage('$t', '$i')}), '3000000',
		'the tenant\'s worker settled the fallback charge');
	# rph 3 on the quota integration: three requests this hour, the fourth refused.
	is(join(',', map { cq(qq{SELECT decision FROM aos_cus.check('$t', '$quota{$t}', 0, 0, NULL, NULL, NULL, 'gpt-4o')}) } 1 .. 4),
		'allowed,allowed,allowed,blocked', 'rph 3: the fourth request this hour is blocked');
	is(cq(qq{SELECT reason || '/' || dimension || '/' || (retry_after_ms > 0) FROM aos_cus.check('$t', '$quota{$t}', 0, 0, NULL, NULL, NULL, 'gpt-4o')}),
		'request_quota/rph/true', 'reason request_quota, dimension rph, retry after the hour');
	my ($rph) = grep { /^integration:$quota{$t}\|rph\|/ } split /\n/, cq(qq{SELECT * FROM aos_cus.explain_check('$t', '$quota{$t}')});
	is(join('/', (split /\|/, $rph)[3, 2]), '3/3',
		'explain_check() counts the hour\'s requests on the tenant\'s worker');
	# rpd 2 on one subject's scope.
	cq(qq{SELECT aos_cus.set_scope_limits('$t', 'subject:daily', '{"rpd": 2}')});
	is(join(',', map { cq(qq{SELECT decision || '/' || reason || '/' || coalesce(dimension, '-')
		FROM aos_cus.check('$t', '$i', 0, 0, NULL, 'daily', NULL, NULL)}) } 1 .. 3),
		'allowed/ok/-,allowed/ok/-,blocked/request_quota/rpd', 'rpd 2 on subject:daily: the third request today is blocked');
}

# 3. estimate_call() (6 arguments) and its worst case reserved by check().
my $messages = '[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]';
my $estimate = cq(qq{SELECT input_tokens || '|' || worst_case_output_tokens || '|' || worst_case_cost_microcents
	FROM aos_cus.estimate_call('openai', 'gpt-4o', '$messages', 500, 'standard', now())});
like($estimate, qr/^\d+\|500\|\d+$/, 'estimate_call() with 6 arguments through the coordinator');
is($w1->safe_psql('postgres', qq{SELECT input_tokens || '|' || worst_case_output_tokens || '|' || worst_case_cost_microcents
	FROM aos_cus.estimate_call('openai', 'gpt-4o', '$messages', 500, 'standard', now())}), $estimate,
	'the same estimate on a worker (prices are a reference table)');
my ($in, $out, $cost) = split /\|/, $estimate;
for my $t ($T1, $T2)
{
	my $before = cq(qq{SELECT reserved_microcents FROM aos_cus.current_usage('$t', '$integ{$t}')});
	is(cq(qq{SELECT decision FROM aos_cus.check('$t', '$integ{$t}', $cost, @{[$in + $out]}, 'est-1', NULL, NULL, 'gpt-4o')}),
		'allowed', 'check() with the estimate\'s worst case');
	is(cq(qq{SELECT reserved_microcents - $before FROM aos_cus.current_usage('$t', '$integ{$t}')}), $cost,
		'the worst-case cost is reserved on the tenant\'s worker');
}

# 6. Ingest dedupe per tenant: single records claim their key in the insert's statement, a taken key goes
# through the key trigger; batches alike.
my $rec = sub {
	my ($t, $call, $at) = @_;
	$at //= $now;
	return qq{{"integration_id": "$integ{$t}", "call_id": "$call", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 10, "started_at": "$at"}};
};
my $ingest = sub { my ($t, $r) = @_; return cq(qq{SELECT status FROM aos_cus.ingest_usage('$t', '$r')}); };
my $batch = sub { my ($t, @r) = @_; return join(',', split /\n/, cq(qq{SELECT status FROM aos_cus.ingest_usage_batch('$t', '[@{[join(',', @r)]}]')})); };
my $old = cq(q{SELECT now() - interval '50 days'});
for my $t ($T1, $T2)
{
	is($ingest->($t, $rec->($t, 'd-1')), 'inserted', 'single record: inserted');
	is($ingest->($t, $rec->($t, 'd-1')), 'duplicate', 'single record: the same call_id again is a duplicate');
	is($batch->($t, $rec->($t, 'd-2'), $rec->($t, 'd-2'), $rec->($t, 'd-1')), 'inserted,duplicate,duplicate',
		'batch: a duplicate in the same batch and one of an earlier call');
	is($ingest->($t, $rec->($t, 'd-2')), 'duplicate', 'single record: a duplicate of a batch\'s row');
	is($ingest->($t, $rec->($t, 'o-1', $old)) . ',' . $batch->($t, $rec->($t, 'o-2', $old)), 'inserted,inserted',
		'calls started 50 days ago');
	# Their keys past the idempotency window (35 days): the worker holding the tenant keeps them.
	is($worker_of->{$t}->safe_psql('postgres', qq{UPDATE aos_cus.cus_usage_keys SET ingested_at = now() - interval '50 days'
		WHERE tenant_id = '$t' AND call_id IN ('o-1', 'o-2') RETURNING call_id}) =~ tr/\n// + 1, 2,
		'the keys live on the tenant\'s worker');
	is($ingest->($t, $rec->($t, 'o-1')) . ',' . $batch->($t, $rec->($t, 'o-2')), 'inserted,inserted',
		'past the key window the call counts again (single record and batch take the key over)');
	is(cq(qq{SELECT count(*) FROM aos_cus.cus_llm_usage WHERE tenant_id = '$t' AND call_id IN ('d-1', 'd-2')}), '2',
		'one row per call_id');
}
is($ingest->($T2, $rec->($T2, 'x-1')) . ',' . $ingest->($T1, $rec->($T1, 'x-1')), 'inserted,inserted',
	'the same call_id in another tenant is not a duplicate');
# Not delegated (a computed argument): the coordinator runs the function, the rows' key trigger runs on the worker.
for my $t ($T1, $T2)
{
	my $nd = sub { my ($fn, $arg) = @_; return join(',', split /\n/, cq(qq{SELECT status FROM aos_cus.$fn('$t', '$arg'::jsonb || '@{[$fn =~ /batch/ ? '[]' : '{}']}')})); };
	is($nd->('ingest_usage', $rec->($t, 'nd-1')) . ',' . $nd->('ingest_usage', $rec->($t, 'nd-1')), 'inserted,duplicate',
		'not delegated: a single record, then its duplicate');
	is($nd->('ingest_usage_batch', '[' . join(',', $rec->($t, 'nd-2'), $rec->($t, 'nd-2'), $rec->($t, 'nd-1'), $rec->($t, 'd-1')) . ']'),
		'inserted,duplicate,duplicate,duplicate', 'not delegated: a batch with duplicates in it and of earlier calls');
}

# 4. Hourly rollups on every worker equal a recompute of the rows that worker stores.
my $folded = cq(q{SELECT string_agg(coalesce(folded::text, 'failed'), ',' ORDER BY nodeport) FROM aos_cus.citus_rollup()});
like($folded, qr/^[1-9]\d*,[1-9]\d*$/, 'citus_rollup() folds rows on both workers');
my $recompute = sub {
	my ($t) = @_;
	return qq{SELECT integration_id, date_trunc('hour', started_at, 'UTC'), provider, model, count(*), sum(input_tokens),
		sum(output_tokens), sum(cost_microcents) FROM aos_cus.cus_llm_usage WHERE tenant_id = '$t'
		AND started_at >= now() - interval '1 day' GROUP BY 1, 2, 3, 4 ORDER BY 2, 1, 3, 4};
};
for my $t ($T1, $T2)
{
	my $hourly = cq(qq{SELECT integration_id, hour, provider, model, requests, input_tokens, output_tokens, cost_microcents
		FROM aos_cus.hourly_aggregates('$t')});
	isnt($hourly, '', 'hourly_aggregates() through the coordinator');
	is($hourly, cq($recompute->($t)), 'hourly_aggregates() equal a recompute of the tenant\'s rows');
	is($worker_of->{$t}->safe_psql('postgres', qq{SELECT integration_id, hour, provider, model, requests, input_tokens,
		output_tokens, cost_microcents FROM aos_cus.cus_usage_hourly WHERE tenant_id = '$t' AND hour >= now() - interval '1 day'
		ORDER BY 2, 1, 3, 4}), $hourly, 'the tenant\'s worker holds them in its cus_usage_hourly');
	is($other{$t}->safe_psql('postgres', qq{SELECT count(*) FROM aos_cus.cus_usage_hourly WHERE tenant_id = '$t'}), '0',
		'the other worker holds none');
	is(cq(qq{SELECT count(*) FROM aos_cus.hourly_aggregates('$t') WHERE requests > 0}), '0',
		'a WHERE on hourly_aggregates() is not delegated: the coordinator\'s own table is empty (README: Citus limits)');
	is(cq(qq{SELECT sum(requests) FROM aos_cus.hourly_aggregates('$t')}), cq(qq{SELECT count(*) FROM aos_cus.cus_llm_usage
		WHERE tenant_id = '$t' AND started_at >= now() - interval '1 day'}), 'an aggregate over the plain call is pushed down to the worker');
	is(cq(qq{SELECT sum(requests) FROM aos_cus.daily_aggregates('$t', NULL,
		(now() AT TIME ZONE 'UTC')::date - 100, (now() AT TIME ZONE 'UTC')::date + 1)}), cq(qq{SELECT count(*) FROM aos_cus.cus_llm_usage WHERE tenant_id = '$t'}),
		'daily_aggregates() answers around an aggregate too (cus_usage_daily is distributed)');
}

# 5. Webhook delivery from the worker holding the tenant, signature verified, exactly once; redeliver().
my $dir = PostgreSQL::Test::Utils::tempdir();
my $receiver = IPC::Run::start([ '/usr/bin/python3', "$ENV{REPO}/test/webhook_receiver.py", '--port', 0,
		'--port-file', "$dir/port", '--state', "$dir/state.json" ], '>', "$dir/out", '2>', "$dir/err");
for (my $i = 0; $i < 100 && !-s "$dir/port"; $i++) { select(undef, undef, undef, 0.1); }
my $port = PostgreSQL::Test::Utils::slurp_file("$dir/port");
sub http
{
	my ($method, $path, $body) = @_;
	$body //= '';
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die "receiver: $!";
	print $s "$method $path HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
	local $/;
	my $resp = <$s>;
	close $s;
	my ($content) = $resp =~ /\r\n\r\n(.*)\z/s;
	return $content;
}
my %webhook;
for my $t ($T1, $T2)
{
	my ($id, $secret) = split /\|/, cq(qq{SELECT webhook_id, secret FROM aos_cus.create_webhook('$t', 'http://127.0.0.1:$port/ok/$t',
		NULL, ARRAY['budget.exhausted'])});
	http('POST', '/__secret', encode_json({ path => "/ok/$t", secret => $secret }));
	$webhook{$t} = $id;
	my $hook_integ = cq(qq{SELECT aos_cus.create_integration('$t', 'hooked', 'openai', 'sk-proj-abcdefghijklmnop9012',
		'{"enabled": true, "limits": {"budget_microcents": 1000, "budget_period": "total"}}')});
	is(cq(qq{SELECT decision FROM aos_cus.check('$t', '$hook_integ', 5000, 0)}), 'blocked', 'a check() over the budget');
}
my @log;
for (my $i = 0; $i < 300; $i++)
{
	@log = @{ decode_json(http('GET', '/__log')) };
	last if @log >= 2;
	select(undef, undef, undef, 0.1);
}
sleep 2;    # anything sent twice arrives meanwhile
@log = @{ decode_json(http('GET', '/__log')) };
for my $t ($T1, $T2)
{
	my @got = grep { $_->{path} eq "/ok/$t" } @log;
	is(scalar(@got), 1, 'the budget.exhausted event arrived exactly once');
	ok($got[0]->{verified}, 'its signature verifies (the receiver\'s own HMAC)');
	is($got[0]->{type}, 'budget.exhausted', 'the event type');
	is(join(',', map { $_->safe_psql('postgres', qq{SELECT count(*) FROM aos_cus.cus_webhook_deliveries
		WHERE tenant_id = '$t' AND status = 'delivered'}) } ($worker_of->{$t}, $other{$t}, $coord)), '1,0,0',
		'delivered from the worker holding the tenant (no copy elsewhere)');
	my $event = $worker_of->{$t}->safe_psql('postgres', qq{SELECT e.event_id FROM aos_cus.cus_webhook_events e
		JOIN aos_cus.cus_webhook_deliveries d ON d.tenant_id = e.tenant_id AND d.event_seq = e.id WHERE d.webhook_id = '$webhook{$t}'});
	is($got[0]->{id}, $event, 'with the event id as webhook-id');
	is(cq(qq{SELECT aos_cus.redeliver('$t', '$event')}), '1', 'redeliver(tenant_id, event_id) through the coordinator');
	my ($ret, $stdout, $stderr) = $coord->psql('postgres', qq{SELECT aos_cus.redeliver('$event')});
	like($stderr, qr/does not exist for this tenant/, 'redeliver(event_id) on the coordinator does not find it (not delegated)');
	is($worker_of->{$t}->safe_psql('postgres', qq{SELECT aos_cus.redeliver('$event')}), '1', 'redeliver(event_id) on the worker');
}
my $again = 0;
for (my $i = 0; $i < 300; $i++)
{
	@log = @{ decode_json(http('GET', '/__log')) };
	$again = grep { $_->{path} =~ m{^/ok/} } @log;
	last if $again >= 6;
	select(undef, undef, undef, 0.1);
}
sleep 1;
@log = @{ decode_json(http('GET', '/__log')) };
for my $t ($T1, $T2)
{
	my @got = grep { $_->{path} eq "/ok/$t" } @log;
	is(scalar(@got), 3, 'each redelivery sent the event once more');
	is(scalar(grep { $_->{verified} && $_->{id} eq $got[0]->{id} } @got), 3, 'with the same webhook-id, signed');
}
$receiver->kill_kill;

is($coord->safe_psql('postgres', $coord_decisions), '0', 'the coordinator decided nothing itself');

# A limit the README states: PostgREST wraps an RPC call in a CTE, which Citus does not delegate, so check()
# through PostgREST on the coordinator decides there (from the coordinator's own counters).
is($coord->safe_psql('postgres', qq{WITH pgrst_source AS (SELECT pgrst_call.* FROM "aos_cus"."check"("tenant_id" := '$T1',
	"integration_id" := '$integ{$T1}') pgrst_call) SELECT _postgrest_t.decision FROM (SELECT "pgrst_source".* FROM "pgrst_source") _postgrest_t}),
	'allowed', 'check() in PostgREST\'s RPC statement shape');
is($coord->safe_psql('postgres', $coord_decisions), '1', 'was decided on the coordinator, not delegated (README: Citus limits)');
done_testing();
