#!/usr/bin/env bash
# count_tokens (exact OpenAI token counts in C) vs npm tiktoken in Node on the same corpus, one run:
# tokens per second of each side per encoding (median of BENCH_ROUNDS alternating rounds), their ratio, and
# the memory a backend gains by counting (private, and the rank files it maps, shared through the page cache).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
(cd "$REPO/clients/node" && npm ci --no-audit --no-fund --loglevel=error && npx tsc -p .) >/dev/null
node "$REPO/clients/node/build/bench/tokens.js" \
	"{\"host\": \"$SOCK\", \"port\": $PORT, \"user\": \"$PGUSER\", \"database\": \"$BENCH_DB\", \"rounds\": $BENCH_ROUNDS}" |
	tee >(grep -v '^#' >> "$RESULTS")
