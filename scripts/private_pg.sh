#!/usr/bin/env bash
# Copies Debian's PostgreSQL 15 installation (binaries, libraries, PGXS, headers, share) under DIR,
# so that a second work tree can `make install` and run its clusters without touching the system
# installation. Debian's PostgreSQL is relocatable: the copy finds its own share and lib folders.
# Usage: scripts/private_pg.sh DIR   then   export PG_CONFIG=DIR/usr/lib/postgresql/15/bin/pg_config
set -euo pipefail
dir=${1:?usage: $0 DIR}
mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql" "$dir/usr/include"
cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/"
cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
cp -a /usr/include/postgresql "$dir/usr/include/"
chmod -R o+rX "$dir"
echo "export PG_CONFIG=$dir/usr/lib/postgresql/15/bin/pg_config"
