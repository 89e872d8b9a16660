#!/usr/bin/env bash
# Builds aos_cus with -Werror and installs it into the PostgreSQL that PG_CONFIG names.
set -euo pipefail
. "$(dirname "$0")/common.sh"
cd "$REPO"
make -s PG_CONFIG="$PG_CONFIG" -j2 all
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
