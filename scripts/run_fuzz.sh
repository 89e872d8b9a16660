#!/usr/bin/env bash
# Builds each libFuzzer target test/fuzz/fuzz_*.c with clang (ASan + UBSan) and runs it for
# FUZZ_SECONDS (default 20) on a scratch copy of its corpus test/fuzz/corpus/<name>/.
# Prints one tally "fuzz: N passed, N failed" (a target passes when it finds nothing).
set -u
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
core=$(ls src/core/*.c)
for src in test/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c); name=${name#fuzz_}
	bin=$work/fuzz_$name
	if ! clang -g -O1 -Isrc/core -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-o "$bin" "$src" $core -lcrypto -lpcre2-8; then
		echo "fuzz $name: build failed"; failed=$((failed + 1)); continue
	fi
	mkdir -p "$work/corpus_$name"
	cp test/fuzz/corpus/"$name"/* "$work/corpus_$name/" 2>/dev/null
	if "$bin" -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 "$work/corpus_$name" \
		> "$work/$name.log" 2>&1; then
		echo "fuzz $name: ok, $(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/$name.log" | grep -oE '[0-9]+$') runs in ${seconds}s"
		passed=$((passed + 1))
	else
		echo "fuzz $name: FAILED"; tail -n 40 "$work/$name.log"
		mkdir -p .aos_cus/fuzz && cp "$work"/crash-* "$work"/*/crash-* .aos_cus/fuzz/ 2>/dev/null
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
