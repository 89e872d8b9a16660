#!/usr/bin/env bash
# Builds the Debian package postgresql-15-aos-cus (debian/, pg_buildext) and tests it as installed: metadata
# (scripts/check_meta.py), the package's contents, lintian (errors fail; every warning must be listed in
# debian/README.source), then it removes the make-installed aos_cus from the system PostgreSQL 15, installs the .deb
# with dpkg -i, runs the pg_regress suite, an update from the oldest released version and the CLI against a
# throwaway cluster (instance "package", port AOS_CUS_PORT_BASE + 9), purges the package and restores the make
# install (scripts/build.sh). Run as root. Ends with one line "package: N passed, N failed".
# Usage: scripts/test_package.sh [--no-install]   (build, metadata, contents and lintian only; touches no install)
set -uo pipefail
export AOS_CUS_INSTANCE=package
# The package installs into Debian's PostgreSQL 15: that installation is the one under test, and restored.
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
. "$(dirname "$0")/common.sh"
cd "$REPO"

INSTALL=1
case "${1:-}" in
--no-install) INSTALL=0 ;;
"") ;;
*) echo "test_package.sh: unknown argument '$1'" >&2; exit 2 ;;
esac

passed=0 failed=0
# Record one check: its name and the status of the command that decided it.
result() {
	if [ "$2" -eq 0 ]; then
		echo "ok: $1"; passed=$((passed + 1))
	else
		echo "FAILED: $1"; failed=$((failed + 1))
	fi
}
finish() {
	echo "package: $passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit
}

if [ "$(id -u)" -ne 0 ]; then
	echo "test_package.sh: run as root (it installs packages and the .deb)" >&2
	result "running as root" 1; finish
fi

# Build tools of the package, on top of what scripts/deps.sh installs for the build itself.
bash scripts/deps.sh || { result "build dependencies" 1; finish; }
missing=()
for p in debhelper dpkg-dev lintian postgresql-server-dev-all; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		{ result "package build tools (${missing[*]})" 1; finish; }
fi

# 1. Metadata: META.json's required fields, one version everywhere.
python3 scripts/check_meta.py
result "metadata (META.json, versions)" $?

# 2. Build from a copy of the working tree (tracked and untracked, not ignored files) under .aos_cus/deb/.
version=$(sed -nE "s/^default_version = '(.*)'/\1/p" aos_cus.control)
pkg=postgresql-15-aos-cus
WORK=$REPO/.aos_cus/deb
deb=$WORK/${pkg}_${version}_$(dpkg --print-architecture).deb
rm -rf "$WORK" && mkdir -p "$WORK/aos-cus-$version"
git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$WORK/aos-cus-$version"
(cd "$WORK/aos-cus-$version" && dpkg-checkbuilddeps && dpkg-buildpackage -us -uc -b) > "$WORK/build.log" 2>&1
status=$?
[ $status -eq 0 ] && [ -f "$deb" ] || { tail -n 40 "$WORK/build.log"; status=1; }
result "dpkg-buildpackage -us -uc -b builds $(basename "$deb")" $status
[ $status -eq 0 ] || finish

# 3. Contents: every file the package must carry, the released scripts and monitoring files byte for byte.
X=$WORK/extracted
dpkg -x "$deb" "$X"
dpkg -c "$deb" | awk '{print $6}' | grep -v '/$'
PKGLIB=$("$PG_CONFIG" --pkglibdir) SHARE=$("$PG_CONFIG" --sharedir) BIN=$("$PG_CONFIG" --bindir)
DOC=/usr/share/doc/$pkg
status=0
for f in "$PKGLIB/aos_cus.so" "$BIN/aos_cus_health" "$SHARE/extension/aos_cus--$version.sql" "$DOC/copyright"; do
	[ -s "$X$f" ] || { echo "missing in the package: $f"; status=1; }
done
for f in aos_cus.control aos_cus--0.1.0.control src/sql/aos_cus--*.sql data/aos_cus_*.bpe; do
	cmp "$f" "$X$SHARE/extension/$(basename "$f")" || status=1
done
for f in $(git ls-files monitoring); do
	cmp "$f" "$X$DOC/$f" || status=1
done
ls "$X$DOC"/README.md* "$X$DOC"/CHANGELOG.md* >/dev/null || status=1
[ ! -e "$X$PKGLIB/bitcode" ] || { echo "the package ships LLVM bitcode"; status=1; }
"$X$BIN/aos_cus_health" --help 2>&1 | grep -q -- '--summary' || { echo "the packaged CLI does not run"; status=1; }
result "package contents (library, control files, install and upgrade scripts incl. the frozen 0.1.0, token ranks, CLI, docs, monitoring)" $status

# 4. lintian: no error; each warning kept (pedantic and experimental ones too) is listed in debian/README.source.
lintian --info --display-info --pedantic --display-experimental "$WORK"/aos-cus_"${version}"_*.changes \
	> "$WORK/lintian.log" 2>&1
status=$?
cat "$WORK/lintian.log"
grep -q '^E: ' "$WORK/lintian.log" && status=1
for tag in $(sed -nE 's/^[WPX]: [^:]+: ([a-z0-9-]+).*/\1/p' "$WORK/lintian.log" | sort -u); do
	grep -qw -- "$tag" debian/README.source || { echo "lintian warning $tag is not listed in debian/README.source"; status=1; }
done
result "lintian: no errors, every warning kept listed in debian/README.source" $status

[ "$INSTALL" -eq 1 ] || finish

# The make-installed files of aos_cus in the system PostgreSQL 15 (bitcode from older builds included).
installed_files() {
	ls -d "$PKGLIB/aos_cus.so" "$PKGLIB/bitcode/aos_cus" "$PKGLIB/bitcode/aos_cus.index.bc" \
		"$SHARE/extension/aos_cus.control" "$SHARE/extension"/aos_cus--*.sql "$SHARE/extension"/aos_cus_*.bpe \
		"$BIN/aos_cus_health" 2>/dev/null
}
# Whatever happens from here on, leave no package behind and the make install restored for the other layers.
restored=0
restore() {
	[ "$restored" -eq 1 ] && return
	restored=1
	bash scripts/cluster.sh destroy
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q installed && dpkg --purge "$pkg" >/dev/null
	bash scripts/build.sh
}
trap 'restore; finish' INT TERM
trap restore EXIT

# 5. Replace the make install by the package.
dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q installed && dpkg --purge "$pkg"
installed_files | xargs -r rm -rf
status=0
[ -z "$(installed_files)" ] || status=1
dpkg -i "$deb" || status=1
dpkg -S "$PKGLIB/aos_cus.so" "$SHARE/extension/aos_cus.control" "$BIN/aos_cus_health" || status=1
result "make install removed, dpkg -i installs $pkg" $status
[ $status -eq 0 ] || finish

# 6. The regression suite on a throwaway cluster preloading the packaged library.
bash scripts/cluster.sh destroy
bash scripts/cluster.sh start
result "cluster starts with shared_preload_libraries = 'aos_cus, pg_cron' from the package" $?
OUT=$STATE/out
as_pg mkdir -p "$OUT"
chmod -R o+rX sql expected
as_pg make -s --no-print-directory installcheck ISOLATION= TAP_TESTS= \
	EXTRA_REGRESS_OPTS="--host=$SOCK --port=$PORT --user=postgres --outputdir=$OUT/regress" > "$OUT/regress.log" 2>&1
cat "$OUT/regress.log"
[ -f "$OUT/regress/regression.diffs" ] && head -n 200 "$OUT/regress/regression.diffs"
if n=$(grep -oE 'All [0-9]+ tests passed' "$OUT/regress.log" | grep -oE '[0-9]+'); then
	passed=$((passed + n))
else
	f=$(grep -oE '[0-9]+ of [0-9]+ tests failed' "$OUT/regress.log")
	if [ -n "$f" ]; then
		set -- $f
		failed=$((failed + $1)) passed=$((passed + $3 - $1))
	else
		result "pg_regress ran" 1
	fi
fi

# 7. The packaged update path: the oldest released version, updated to the current one.
oldest=$(ls src/sql/aos_cus--*--*.sql | sed -E 's|.*aos_cus--([^-]+)--.*|\1|' | sort -V | head -n 1)
got=$(pg_sql -d postgres -c "DROP DATABASE IF EXISTS aos_cus_update" -c "CREATE DATABASE aos_cus_update" &&
	pg_sql -d aos_cus_update -c "CREATE EXTENSION aos_cus VERSION '$oldest'" -c "ALTER EXTENSION aos_cus UPDATE" &&
	pg_sql -d aos_cus_update -Atc "SELECT extversion FROM pg_extension WHERE extname = 'aos_cus'")
echo "CREATE EXTENSION aos_cus VERSION '$oldest'; ALTER EXTENSION aos_cus UPDATE -> ${got:-error}"
[ "$got" = "$version" ]
result "update from $oldest to $version with the packaged scripts" $?

# 8. The packaged CLI against the cluster.
out=$(as_pg env PGHOST="$SOCK" PGPORT="$PORT" "$BIN/aos_cus_health" -d aos_cus_update --summary --all-tenants)
status=$?
echo "aos_cus_health --summary --all-tenants -> $out"
[ $status -eq 0 ] && echo "$out" | grep -q '"total": 0'
result "packaged aos_cus_health runs against the cluster" $?

# 9. Purge removes every file; scripts/build.sh puts the make install back.
bash scripts/cluster.sh destroy
dpkg --purge "$pkg"
status=$?
left=$(installed_files)
[ -z "$left" ] || { echo "left after purge: $left"; status=1; }
result "dpkg --purge $pkg removes its files" $status
restored=1
bash scripts/build.sh
status=$?
[ -f "$PKGLIB/aos_cus.so" ] && [ -f "$SHARE/extension/aos_cus.control" ] || status=1
result "make install restored (scripts/build.sh)" $status
finish
