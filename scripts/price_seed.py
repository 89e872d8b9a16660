#!/usr/bin/env python3
"""Convert data/langfuse-default-model-prices.json into src/sql/31_price_seed.sql.

Prices in the JSON are USD per token; aos_cus stores micro-cents per one million
tokens, so each price is multiplied by 10^14. The JSON numbers are parsed as
decimal text (json parse_float=Decimal), never as binary floats, and a price
that is not a whole number of micro-cents per 1M tokens stops the conversion.

Usage: scripts/price_seed.py            write the seed file
       scripts/price_seed.py --check    exit 1 when the committed seed differs
"""
import json
import re
import sys
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "data" / "langfuse-default-model-prices.json"
SEED = REPO / "src" / "sql" / "31_price_seed.sql"
SCALE = Decimal(10) ** 14

# aos_cus price column -> Langfuse usage keys that carry that price (synonyms must agree).
BUCKET_KEYS = {
    "input_price": ["input", "input_tokens", "input_text", "input_text_tokens", "input_modality_1",
                    "prompt_token_count", "promptTokenCount", "total"],
    "output_price": ["output", "output_tokens", "output_text", "output_text_tokens", "output_modality_1",
                     "candidates_token_count", "candidatesTokenCount", "total"],
    "cache_read_price": ["input_cached_tokens", "input_cache_read", "cache_read_input_tokens",
                         "cached_content_token_count", "input_cached_text_tokens"],
    "cache_write_price": ["input_cache_creation_5m", "input_cache_creation", "cache_creation_input_tokens",
                          "cache_write_tokens"],
    "cache_write_1h_price": ["input_cache_creation_1h"],
    "reasoning_price": ["output_reasoning_tokens", "output_reasoning", "reasoning_tokens",
                        "thoughtsTokenCount", "thoughts_token_count"],
    "input_audio_price": ["input_audio_tokens", "input_audio"],
    "output_audio_price": ["output_audio_tokens", "output_audio"],
}
# Langfuse keys with no aos_cus token bucket (per-query or per-image prices, cached audio).
IGNORED_KEYS = {"grounding_queries", "groundingQueries", "web_search_queries", "webSearchQueries",
                "input_image", "input_cached_audio_tokens"}
COLUMNS = list(BUCKET_KEYS)

# Langfuse service_tier / speed condition values -> aos_cus service tier.
TIER_VALUES = {("service_tier", ("fast", "priority")): "priority",
               ("service_tier", ("flex",)): "flex",
               ("speed", ("fast",)): "priority"}


def provider_of(model):
    """The aos_cus provider of a Langfuse model entry, from its name."""
    name = model["modelName"].lower()
    if model.get("tokenizerId") == "claude" or name.startswith("claude"):
        return "anthropic"
    if re.match(r"(gpt-|o\d|ft:|text-(ada|babbage|curie|davinci|embedding)|chatgpt|davinci|babbage)", name):
        return "openai"
    if re.match(r"(gemini|chat-bison|codechat-bison|text-bison|text-unicorn|textembedding|code-gecko|code-bison)", name):
        return "google"
    raise SystemExit(f"no provider known for model {model['modelName']}")


def microcents_per_million(usd_per_token, where):
    """Exact micro-cents per 1M tokens from a decimal USD-per-token price."""
    value = Decimal(usd_per_token) * SCALE
    if value != value.to_integral_value() or value < 0:
        raise SystemExit(f"{where}: {usd_per_token} USD/token is not a whole number of micro-cents per 1M tokens")
    return int(value)


def tier_of(conditions, where):
    """(service_tier, min_prompt_tokens) of a Langfuse pricing tier's conditions."""
    tier, min_prompt = "standard", 0
    for c in conditions:
        if "usageDetailPattern" in c:
            if c["operator"] != "gt":
                raise SystemExit(f"{where}: unsupported operator {c['operator']}")
            min_prompt = int(c["value"])
        elif c.get("source") == "model_parameters" and c["operator"] == "in":
            key = (c["key"], tuple(c["values"]))
            if key not in TIER_VALUES:
                raise SystemExit(f"{where}: unsupported condition {c}")
            tier = TIER_VALUES[key]
        else:
            raise SystemExit(f"{where}: unsupported condition {c}")
    return tier, min_prompt


def prices_of(prices, where):
    """aos_cus price columns (micro-cents per 1M tokens, None when absent) of one tier."""
    unknown = set(prices) - IGNORED_KEYS - {k for keys in BUCKET_KEYS.values() for k in keys}
    if unknown:
        raise SystemExit(f"{where}: unknown price keys {sorted(unknown)}")
    out = {}
    for column, keys in BUCKET_KEYS.items():
        found = {microcents_per_million(prices[k], f"{where} {k}") for k in keys if k in prices}
        if len(found) > 1:
            raise SystemExit(f"{where}: keys for {column} disagree: {sorted(found)}")
        out[column] = found.pop() if found else None
    if out["input_price"] is None or out["output_price"] is None:
        raise SystemExit(f"{where}: no input or output price")
    return out


def load_rows(path=SOURCE):
    """Every seed row: dicts with provider, model, match_pattern, service_tier, min_prompt_tokens, prices."""
    models = json.loads(path.read_text(), parse_float=Decimal, parse_int=Decimal)
    rows = []
    for m in models:
        provider = provider_of(m)
        pattern = m["matchPattern"]
        if not pattern.startswith("(?i)"):
            raise SystemExit(f"{m['modelName']}: match pattern is not case-insensitive")
        seen = set()
        for t in m["pricingTiers"]:
            where = f"{m['modelName']} / {t['name']}"
            tier, min_prompt = tier_of(t["conditions"], where)
            if (tier, min_prompt) in seen:
                raise SystemExit(f"{where}: duplicate tier {tier} > {min_prompt}")
            seen.add((tier, min_prompt))
            rows.append({"provider": provider, "model": m["modelName"].lower(),
                         "match_pattern": pattern[len("(?i)"):], "service_tier": tier,
                         "min_prompt_tokens": min_prompt, "tier_name": t["name"],
                         **prices_of(t["prices"], where)})
    return rows


def sql_text(value):
    """A SQL literal for a string, integer or NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def seed_sql(rows):
    """The seed SQL file's text."""
    lines = [
        "-- GENERATED by scripts/price_seed.py from data/langfuse-default-model-prices.json: do not edit.",
        "-- Langfuse default model prices (MIT, see data/NOTICE.md), micro-cents per 1M tokens.",
        "INSERT INTO aos_cus.cus_model_prices (provider, model, match_pattern, service_tier, min_prompt_tokens,",
        "    " + ", ".join(COLUMNS) + ", source) VALUES",
    ]
    values = []
    for r in rows:
        cells = [r["provider"], r["model"], r["match_pattern"], r["service_tier"], r["min_prompt_tokens"]]
        cells += [r[c] for c in COLUMNS]
        cells.append("langfuse: " + r["tier_name"])
        values.append("(" + ", ".join(sql_text(c) for c in cells) + ")")
    lines.append(",\n".join(values) + ";")
    return "\n".join(lines) + "\n"


def main():
    """Write the seed, or with --check compare it with the committed file."""
    text = seed_sql(load_rows())
    if sys.argv[1:] == ["--check"]:
        if SEED.read_text() != text:
            print(f"{SEED.relative_to(REPO)} differs from what scripts/price_seed.py generates", file=sys.stderr)
            sys.exit(1)
        print("price seed matches its generator")
        return
    SEED.write_text(text)


if __name__ == "__main__":
    main()
