# common.sh: paths and helpers shared by the scripts; sourced, never run.
# AOS_CUS_INSTANCE picks a throwaway cluster (demo, test, bench), each with its own port.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG
BINDIR=$("$PG_CONFIG" --bindir)
PGXS_DIR=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")")
# AOS_CUS_PORT_BASE moves all three ports at once (demo = base, test = base + 1, bench = base + 2).
INSTANCE=${AOS_CUS_INSTANCE:-demo}
port_base=${AOS_CUS_PORT_BASE:-54329}
case "$INSTANCE" in
demo) default_port=$port_base ;;
test) default_port=$((port_base + 1)) ;;
bench) default_port=$((port_base + 2)) ;;
*) default_port=$((port_base + 9)) ;;
esac
PORT=${AOS_CUS_PORT:-$default_port}
STATE=$REPO/.aos_cus/$INSTANCE
PGDATA_DIR=$STATE/data
SOCK=/tmp/aos_cus.$PORT
KEYRING=$STATE/keyring
SERVER_LOG=$STATE/server.log
export PGHOST=$SOCK PGPORT=$PORT PGUSER=postgres

# Run a command as the postgres user when we are root (initdb and postgres refuse root).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- env PATH="$BINDIR:$PATH" "$@"
	else
		env PATH="$BINDIR:$PATH" "$@"
	fi
}

# Make every folder above the repository traversable by postgres (o+x), as the server reads files there.
open_path_for_postgres() {
	[ "$(id -u)" -eq 0 ] || return 0
	local d=$REPO
	while [ "$d" != "/" ]; do
		if ! runuser -u postgres -- test -x "$d"; then
			echo "note: chmod o+x $d so the postgres user can reach the repository"
			chmod o+x "$d"
		fi
		d=$(dirname "$d")
	done
	mkdir -p "$REPO/.aos_cus"
	chown postgres: "$REPO/.aos_cus"
}

# psql against the instance's cluster, quiet and failing on the first error.
pg_sql() {
	"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

# Time is an input: with AOS_CUS_AT set (scripts' --at '<ISO 8601 instant>'), the servers and their clients
# run under libfaketime with a clock that starts at that instant when fake_clock_start is called and runs on.
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1

# Export the fake clock (if AOS_CUS_AT is set) so every process started from now on sees AOS_CUS_AT as "now".
# libfaketime attaches each process to the shared memory of the first faked process of its chain and that
# memory goes when its creator exits: a process started later would silently see the real time. So a holder
# process that lives until this script exits owns the shared memory every other process attaches to.
fake_clock_start() {
	[ -n "${AOS_CUS_AT:-}" ] || return 0
	local target holder
	target=$(date -u -d "$AOS_CUS_AT" +%s) || { echo "--at: '$AOS_CUS_AT' is not an ISO 8601 instant" >&2; return 1; }
	[ -r "$FAKETIME_LIB" ] || { echo "--at needs libfaketime ($FAKETIME_LIB)" >&2; return 1; }
	export AOS_CUS_AT FAKETIME="+$((target - $(date -u +%s)))s" FAKETIME_DONT_FAKE_MONOTONIC=1
	LD_PRELOAD=$FAKETIME_LIB sleep infinity &
	holder=$!
	trap "kill $holder 2>/dev/null; rm -f /dev/shm/faketime_shm_$holder /dev/shm/sem.faketime_sem_$holder" EXIT
	# Wait for the holder to create its semaphore and memory (a process started before would make its own),
	# and let the servers' user attach to them too.
	for _ in $(seq 100); do
		[ -e "/dev/shm/sem.faketime_sem_$holder" ] && [ -e "/dev/shm/faketime_shm_$holder" ] && break
		sleep 0.1
	done
	chmod 0666 "/dev/shm/sem.faketime_sem_$holder" "/dev/shm/faketime_shm_$holder" ||
		{ echo "--at: libfaketime's shared memory did not appear" >&2; return 1; }
	export LD_PRELOAD=$FAKETIME_LIB FAKETIME_SHARED="/faketime_sem_$holder /faketime_shm_$holder"
	echo "fake clock: $(date -u +%Y-%m-%dT%H:%M:%SZ) (FAKETIME=$FAKETIME)"
}
