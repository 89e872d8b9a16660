#!/usr/bin/env bash
# cost_microcents() over a million rows against (1) a PL/pgSQL peer that reads the same price table and
# computes with numeric (goal: ours at least 20x faster) and (2) the floor: the same arithmetic as plain
# builtin bigint expressions on constant prices (goal: ours no more than 3x slower). The three sums are
# checked equal first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pg_sql -d "$BENCH_DB" <<'SQL'
CREATE OR REPLACE FUNCTION public.bench_cost_plpgsql(provider text, model text, input_tokens bigint, output_tokens bigint,
    cache_read_tokens bigint DEFAULT 0, cache_write_tokens bigint DEFAULT 0, cache_write_1h_tokens bigint DEFAULT 0,
    reasoning_tokens bigint DEFAULT 0, service_tier text DEFAULT 'standard', at timestamptz DEFAULT now())
    RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    p aos_cus.cus_model_prices;
    total numeric;
BEGIN
    SELECT * INTO p FROM aos_cus.cus_model_prices m
     WHERE m.provider = bench_cost_plpgsql.provider AND m.model = bench_cost_plpgsql.model
       AND m.service_tier = bench_cost_plpgsql.service_tier AND m.min_prompt_tokens = 0 AND m.effective_from <= at
     ORDER BY m.effective_from DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    total := input_tokens::numeric * p.input_price
           + cache_read_tokens::numeric * coalesce(p.cache_read_price, p.input_price)
           + cache_write_tokens::numeric * coalesce(p.cache_write_price, p.input_price)
           + cache_write_1h_tokens::numeric * coalesce(p.cache_write_1h_price, p.cache_write_price, p.input_price)
           + (output_tokens - reasoning_tokens)::numeric * p.output_price
           + reasoning_tokens::numeric * coalesce(p.reasoning_price, p.output_price);
    RETURN round(total / 1000000);
END
$$;
SQL
ours="SELECT sum(aos_cus.cost_microcents('openai', 'gpt-4o', i, i, i / 2, 0, 0, 0)) FROM generate_series(1, 1000000) i"
peer="SELECT sum(public.bench_cost_plpgsql('openai', 'gpt-4o', i, i, i / 2, 0, 0, 0)) FROM generate_series(1, 1000000) i"
floor="SELECT sum(i::bigint * 250 + i::bigint * 1000 + (i / 2)::bigint * 125) FROM generate_series(1, 1000000) i"
sums=$(for q in "$ours" "$peer" "$floor"; do pg_sql -d "$BENCH_DB" -Atc "$q"; done | sort -u)
[ "$(echo "$sums" | wc -l)" -eq 1 ] || { echo "the three queries disagree: $sums" >&2; exit 1; }
echo "all three sum to $sums micro-cents"
compare_sql "cost_microcents x 1M vs PL/pgSQL numeric peer (speed-up, goal >= 20)" "$ours" "$peer"
compare_sql "cost_microcents x 1M vs builtin bigint floor (floor/ours, goal >= 0.33)" "$ours" "$floor"
slowdown=$(tail -n 1 "$RESULTS" | awk -F'\t' '{print 1 / $4}')
printf 'cost_microcents is %.2fx slower than the builtin integer floor (goal <= 3)\n' "$slowdown"
