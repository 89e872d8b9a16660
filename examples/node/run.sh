#!/usr/bin/env bash
# Runs quickstart.js against the demo cluster (start it with scripts/demo.sh). Without OPENAI_API_KEY the calls go
# to the client's mock provider (clients/node/test/mock_provider.ts) on loopback.
set -euo pipefail
export AOS_CUS_INSTANCE=demo
. "$(dirname "$0")/../../scripts/common.sh"
(cd "$REPO/clients/node" && npm ci --no-audit --no-fund --loglevel=error && npx tsc -p .) >/dev/null
(cd "$REPO/examples/node" && npm install --no-audit --no-fund --loglevel=error) >/dev/null
export PGHOST=$SOCK PGPORT=$PORT PGUSER=${PGUSER:-postgres} PGDATABASE=aos_cus
if [ -z "${OPENAI_API_KEY:-}" ]; then
	coproc MOCK { exec node "$REPO/clients/node/build/bench/mock_main.js"; }
	trap 'kill $MOCK_PID' EXIT
	read -r url <&"${MOCK[0]}"
	export OPENAI_BASE_URL=$url/v1 OPENAI_API_KEY=sk-mock
fi
cd "$REPO/examples/node" && node quickstart.js
