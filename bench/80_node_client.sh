#!/usr/bin/env bash
# The Node.js client (clients/node) against the raw SDK and per-call ingest:
#  1. overhead of a wrapped OpenAI chat.completions.create in visibility mode vs the same call on the raw `openai`
#     SDK, against the mock provider in its own process (p50 and p99 of BENCH_ROUNDS x 1,000 calls a side, A B A B);
#  2. records per second of the batched reporter (ingest_usage_batch, 100 a batch) vs one ingest_usage per call,
#     one connection as an aos_cus_app login, synchronous_commit off and durable.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
T=00000000-0000-4000-8000-0000000e0001
I=00000000-0000-4000-8000-0000000e00a1
pg_sql -d "$BENCH_DB" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_node_app') THEN CREATE ROLE bench_node_app LOGIN IN ROLE aos_cus_app; END IF;
END \$\$;
INSERT INTO aos_cus.cus_integrations (tenant_id, id, name, provider) VALUES ('$T', '$I', 'bench-node', 'openai')
  ON CONFLICT DO NOTHING;
SQL
(cd "$REPO/clients/node" && npm ci --no-audit --no-fund --loglevel=error && npx tsc -p .) >/dev/null
node "$REPO/clients/node/build/bench/bench.js" \
	"{\"host\": \"$SOCK\", \"port\": $PORT, \"user\": \"bench_node_app\", \"database\": \"$BENCH_DB\", \"tenant\": \"$T\", \"integration\": \"$I\", \"rounds\": $BENCH_ROUNDS}" |
	tee -a "$RESULTS"
