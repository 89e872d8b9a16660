#!/usr/bin/env python3
"""Generate test/pgtap/30_cost_models.sql: cost_microcents() of every seeded model and tier
checked against costs computed here, from the JSON's decimal USD prices, independently of the C code:
the Langfuse list (USD per token, at its own date) and every genai-prices model and later price change
the seed takes from it (USD per 1M tokens; each dated price at its start date, each prompt-size tier one
token over its start).

Expected cost = round_half_up(sum over buckets of tokens * USD-per-token * 10^8) micro-cents, in
Python's decimal arithmetic. Bucket fallbacks (README: Pricing, cost and tokens): reasoning and output audio use
the output price, cache reads/writes and input audio the input price, 1-hour writes the 5-minute price.

Also generates test/pgtap/32_match_rules.sql: every genai-prices match rule kind (equals, starts_with,
ends_with, contains, regex, or, and) checked rule by rule, through resolve_model() on synthetic models
and through the match_pattern of every seeded genai-prices model, against price_seed.rule_matches(),
the rule semantics evaluated here on probe names built from each rule's own strings; and resolve_model()
on those names against genai-prices' own choice (the provider's first matching model in file order),
except names a Langfuse model matches (Langfuse wins).

Usage: scripts/gen_cost_test.py [--check]
"""
import json
import re
import sys
from decimal import Decimal, ROUND_HALF_UP
from pathlib import Path

import price_seed

REPO = price_seed.REPO
OUT = REPO / "test" / "pgtap" / "30_cost_models.sql"
RULES_OUT = REPO / "test" / "pgtap" / "32_match_rules.sql"
# One synthetic rule of each kind, resolved as a custom model, with the probe names tried on each.
SYNTHETIC_RULES = {
    "equals": ({"equals": "acme-eq-1"}, ["acme-eq-1", "acme-eq-10", "xacme-eq-1"]),
    "starts_with": ({"starts_with": "acme-sw-"}, ["acme-sw-7", "acme-sw-", "x-acme-sw-7"]),
    "ends_with": ({"ends_with": "-acme-ew"}, ["v2-acme-ew", "v2-acme-ew-x", "-acme-ew"]),
    "contains": ({"contains": "acme.ct"}, ["x-acme.ct-y", "acme.ct", "x-acmexct-y"]),
    "regex": ({"regex": "^acme-rx-\\d+$"}, ["acme-rx-42", "acme-rx-4x", "xacme-rx-42"]),
    "or": ({"or": [{"equals": "acme-or-a"}, {"starts_with": "acme-or-b"}]}, ["acme-or-a", "acme-or-b9", "acme-or-ab", "acme-or-c"]),
    "and": ({"and": [{"starts_with": "acme-and-"}, {"contains": "-big-"},
                     {"or": [{"ends_with": "-v1"}, {"ends_with": "-v2"}]}]},
            ["acme-and-big-v1", "acme-and-x-big-y-v2", "acme-and-big-v3", "acme-and-small-v1", "x-acme-and-big-v1"]),
}
USD = Decimal(10) ** 8

# Token vectors: odd counts so rounding matters; reasoning <= output.
VECTORS = [
    dict(input=123457, output=6789, cache_read=0, cache_write=0, cache_write_1h=0, reasoning=0, input_audio=0, output_audio=0),
    dict(input=1001, output=7777, cache_read=33333, cache_write=2222, cache_write_1h=1111, reasoning=4321, input_audio=0, output_audio=0),
    dict(input=17, output=901, cache_read=5, cache_write=0, cache_write_1h=0, reasoning=0, input_audio=4099, output_audio=803),
]
LONG_CONTEXT_EXTRA = 1  # one token over the threshold


def usd_prices(tier):
    """USD-per-token Decimal per bucket of one Langfuse tier (None where absent)."""
    out = {}
    for column, keys in price_seed.BUCKET_KEYS.items():
        found = [tier["prices"][k] for k in keys if k in tier["prices"]]
        out[column.replace("_price", "")] = Decimal(found[0]) if found else None
    return out


def effective(p, bucket):
    """USD price applied to a bucket after the documented fallbacks."""
    if p[bucket] is not None:
        return p[bucket]
    if bucket == "cache_write_1h":
        return effective(p, "cache_write")
    if bucket in ("reasoning", "output_audio"):
        return p["output"]
    return p["input"]


def expected(p, t):
    """Expected micro-cents for tokens t at USD prices p."""
    usd = Decimal(0)
    for bucket, n in t.items():
        if bucket == "output":
            n -= t["reasoning"]
        usd += n * effective(p, bucket)
    return int((usd * USD).to_integral_value(rounding=ROUND_HALF_UP))


def cases():
    """(provider, model, tier, tokens, expected, label) for every model, tier and vector."""
    models = json.loads(price_seed.SOURCE.read_text(), parse_float=Decimal, parse_int=Decimal)
    for m in models:
        provider = price_seed.provider_of(m)
        for tier in m["pricingTiers"]:
            where = f"{m['modelName']} / {tier['name']}"
            service_tier, min_prompt = price_seed.tier_of(tier["conditions"], where)
            p = usd_prices(tier)
            for i, v in enumerate(VECTORS):
                t = dict(v)
                if min_prompt:
                    t["input"] = min_prompt + LONG_CONTEXT_EXTRA - t["cache_read"] - t["cache_write"] - t["cache_write_1h"]
                yield provider, m["modelName"], service_tier, t, expected(p, t), f"{where} vector {i + 1}"


def genai_usd(value, prompt):
    """USD per 1M tokens of a plain or tiered genai-prices price for a prompt of that many tokens."""
    if not isinstance(value, dict):
        return Decimal(value)
    crossed = [t for t in value["tiers"] if prompt > t["start"]]
    return Decimal(max(crossed, key=lambda t: t["start"])["price"] if crossed else value["base"])


def genai_expected(prices, t):
    """Expected micro-cents for tokens t at a genai-prices price set (absent input or output: 0)."""
    prompt = t["input"] + t["cache_read"] + t["cache_write"] + t["cache_write_1h"]
    mtok = {"input": "input_mtok", "output": "output_mtok", "cache_read": "cache_read_mtok",
            "cache_write": "cache_write_mtok", "input_audio": "input_audio_mtok", "output_audio": "output_audio_mtok"}
    p = {b: genai_usd(prices[k], prompt) / 10 ** 6 if k in prices else None for b, k in mtok.items()}
    p.update(cache_write_1h=None, reasoning=None)
    p["input"] = p["input"] if p["input"] is not None else Decimal(0)
    p["output"] = p["output"] if p["output"] is not None else Decimal(0)
    return expected(p, t)


def genai_cases():
    """(provider, model, tier, tokens, expected, label, at) for every genai-prices model, dated price and tier."""
    lf_rows = price_seed.load_rows()
    for provider, pid, m in price_seed.load_genai():
        periods = m["prices"] if isinstance(m["prices"], list) else [{"prices": m["prices"]}]
        if price_seed.langfuse_model_of(provider, m["id"], lf_rows) is not None:
            # Langfuse prices the model; only changes dated after its list are seeded from genai-prices.
            periods = [c for c in periods if c.get("constraint", {}).get("start_date", "") > price_seed.LANGFUSE_AS_OF
                       and price_seed.langfuse_model_of(provider, m["id"], lf_rows) == m["id"].lower()]
        starts = sorted({0} | {t["start"] for c in periods for v in c["prices"].values() if isinstance(v, dict)
                               for t in v["tiers"]})
        for c in periods:
            date = c.get("constraint", {}).get("start_date")
            at = f"{date} 00:00:00+00" if date else "1970-01-01 00:00:00+00"
            for start in starts:
                for i, v in enumerate(VECTORS):
                    t = dict(v)
                    if start:
                        t["input"] = start + LONG_CONTEXT_EXTRA - t["cache_read"] - t["cache_write"] - t["cache_write_1h"]
                    label = f"{pid}/{m['id']} from {date or 'the start'} above {start} vector {i + 1}"
                    yield provider, m["id"], "standard", t, genai_expected(c["prices"], t), label, at


def rule_strings(clause):
    """The plain strings of a match clause (regular expressions left out)."""
    (kind, arg), = clause.items()
    if kind in ("or", "and"):
        return [s for c in arg for s in rule_strings(c)]
    return [] if kind == "regex" else [arg]


def probes(model_id, clause):
    """Names near a rule's edges: each string as is, prefixed, suffixed, shortened; and the model id."""
    out = {model_id.lower()}
    for s in rule_strings(clause):
        out.update({s, "x" + s, s + "x", "x" + s + "x", s[:-1]})
    return sorted(out)


def first_match(genai, pid, name):
    """genai-prices' model for a name: the first model of the provider, in file order, whose rule matches."""
    return next((m["id"] for _, p, m in genai if p == pid and price_seed.rule_matches(m["match"], name)), None)


def langfuse_matches(lf_rows, provider, name):
    """True when a Langfuse model of the provider has the name or a pattern matching it (Langfuse wins then)."""
    return any(r["provider"] == provider and (r["model"] == name or re.search(r["match_pattern"], name, re.I))
               for r in lf_rows)


def sql_array(items, cast):
    """A SQL array literal."""
    return "ARRAY[" + ", ".join(items) + "]::" + cast


def render_rules():
    """The generated match rule test's text."""
    lines = ["-- GENERATED by scripts/gen_cost_test.py from data/genai-prices/data.json: do not edit.",
             "-- Every genai-prices match rule kind honored by the model lookup, rule by rule (see the generator).",
             "BEGIN;"]
    tests = []
    for kind, (rule, names) in SYNTHETIC_RULES.items():
        model = "rule-" + kind.replace("_", "-")
        lines.append(f"SELECT aos_cus.set_price('custom', {sql_literal(model)}, 1, 1, effective_from => '2000-01-01+00', "
                     f"match_pattern => {sql_literal(price_seed.match_regex(rule))});")
        for name in names:
            want = sql_literal(model) if price_seed.rule_matches(rule, name) else "NULL"
            tests.append(f"SELECT is((SELECT canonical_model FROM aos_cus.resolve_model('custom', {sql_literal(name)})), "
                         f"{want}, {sql_literal(f'{kind}: {name}')});")
    lf_rows = price_seed.load_rows()
    genai = price_seed.load_genai()
    for provider, pid, m in genai:
        if price_seed.langfuse_model_of(provider, m["id"], lf_rows) is not None:
            continue
        names = probes(m["id"], m["match"])
        resolved = [(n, first_match(genai, pid, n)) for n in names if not langfuse_matches(lf_rows, provider, n)]
        resolved = [(n, w) for n, w in resolved if w is not None and price_seed.langfuse_model_of(provider, w, lf_rows) is None]
        if resolved:
            got = (f"ARRAY(SELECT r.canonical_model FROM unnest({sql_array([sql_literal(n) for n, _ in resolved], 'text[]')}) "
                   f"WITH ORDINALITY AS u(n, i) LEFT JOIN LATERAL aos_cus.resolve_model({sql_literal(provider)}, u.n) r ON true ORDER BY i)")
            want = sql_array([sql_literal(w.lower()) for _, w in resolved], "text[]")
            label = f"{pid}/{m['id']}: resolve_model picks genai-prices' first match on {len(resolved)} names"
            tests.append(f"SELECT is({got}, {want}, {sql_literal(label)});")
        got = (f"ARRAY(SELECT n ~* p.match_pattern FROM unnest({sql_array([sql_literal(n) for n in names], 'text[]')}) "
               f"WITH ORDINALITY AS u(n, i) ORDER BY i)")
        want = sql_array(["true" if price_seed.rule_matches(m["match"], n) else "false" for n in names], "boolean[]")
        label = f"{pid}/{m['id']} rule {next(iter(m['match']))} on {len(names)} names"
        tests.append(f"SELECT is((SELECT {got} FROM aos_cus.cus_model_prices p WHERE p.provider = {sql_literal(provider)} "
                     f"AND p.model = {sql_literal(m['id'].lower())} LIMIT 1), {want}, {sql_literal(label)});")
    lines.insert(3, f"SELECT plan({len(tests)});")
    lines += tests + ["SELECT * FROM finish();", "ROLLBACK;"]
    return "\n".join(lines) + "\n"


def sql_literal(s):
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def render():
    """The generated pgTAP file's text."""
    rows = [(*c, f"'{price_seed.LANGFUSE_AS_OF} 00:00:00+00'::timestamptz") for c in cases()] + [(*c[:6], sql_literal(c[6]) + "::timestamptz") for c in genai_cases()]
    lines = [
        "-- GENERATED by scripts/gen_cost_test.py from data/langfuse-default-model-prices.json and",
        "-- data/genai-prices/data.json: do not edit.",
        "-- cost_microcents() of every seeded model, service tier and long-context tier against decimal arithmetic.",
        "BEGIN;",
        f"SELECT plan({len(rows)});",
    ]
    for provider, model, tier, t, cost, label, at in rows:
        call = (f"aos_cus.cost_microcents({sql_literal(provider)}, {sql_literal(model)}, {t['input']}, {t['output']}, "
                f"{t['cache_read']}, {t['cache_write']}, {t['cache_write_1h']}, {t['reasoning']}, {sql_literal(tier)}, "
                f"{at}, {t['input_audio']}, {t['output_audio']})")
        lines.append(f"SELECT is({call}, {cost}::bigint, {sql_literal(provider + ' ' + label)});")
    lines += ["SELECT * FROM finish();", "ROLLBACK;"]
    return "\n".join(lines) + "\n"


def main():
    """Write the tests, or with --check compare them with the committed files."""
    files = {OUT: render(), RULES_OUT: render_rules()}
    if sys.argv[1:] == ["--check"]:
        stale = [path for path, text in files.items() if path.read_text() != text]
        for path in stale:
            print(f"{path.relative_to(REPO)} differs from what scripts/gen_cost_test.py generates", file=sys.stderr)
        if stale:
            sys.exit(1)
        print("generated tests match their generator")
        return
    for path, text in files.items():
        path.write_text(text)


if __name__ == "__main__":
    main()
