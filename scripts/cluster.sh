#!/usr/bin/env bash
# Throwaway PostgreSQL cluster under .aos_cus/<instance>/, run as postgres on its own port and socket.
# Usage: scripts/cluster.sh start|stop|restart|destroy|status|env   (AOS_CUS_INSTANCE=demo|test|bench)
set -euo pipefail
. "$(dirname "$0")/common.sh"

# Create the data directory, its configuration and a fresh 0600 keyring.
init_cluster() {
	open_path_for_postgres
	as_pg mkdir -p "$STATE"
	as_pg "$BINDIR/initdb" -D "$PGDATA_DIR" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
	as_pg sh -c "umask 077 && printf '1:%s\n' \"\$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')\" > '$KEYRING'"
	as_pg tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null <<CONF

# aos_cus throwaway cluster ($INSTANCE)
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
shared_preload_libraries = 'aos_cus, pg_cron'
cron.database_name = 'aos_cus'
aos_cus.keyring_file = '$KEYRING'
shared_buffers = 256MB
max_connections = 60
max_wal_size = 2GB
log_line_prefix = '%m [%p] %q%u@%d '
CONF
}

cmd=${1:-status}
case "$cmd" in
start)
	[ -f "$PGDATA_DIR/PG_VERSION" ] || init_cluster
	as_pg mkdir -p "$SOCK" 2>/dev/null || { mkdir -p "$SOCK" && chown postgres: "$SOCK"; }
	if ! as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
		as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$SERVER_LOG" -w -t 60 start >/dev/null
	fi
	for db in aos_cus; do
		pg_sql -d postgres -tc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
			pg_sql -d postgres -c "CREATE DATABASE $db"
	done
	;;
stop)
	[ -f "$PGDATA_DIR/PG_VERSION" ] && as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
	;;
restart)
	"$0" stop
	"$0" start
	;;
destroy)
	"$0" stop
	rm -rf "$STATE" "$SOCK"
	;;
status)
	as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" status
	;;
env)
	echo "export PGHOST=$SOCK PGPORT=$PORT PGUSER=postgres PGDATABASE=aos_cus"
	;;
*)
	echo "usage: $0 start|stop|restart|destroy|status|env" >&2
	exit 2
	;;
esac
