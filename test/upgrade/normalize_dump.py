#!/usr/bin/env python3
"""Normalizes `pg_dump --binary-upgrade --schema-only` output so that two databases with the same aos_cus schema
compare equal whatever order their objects were created in and whatever data they hold: drops OID-setting calls,
OID lists, xids and sequence positions, and sorts the dump's entries (each starts at a "-- Name:" header). Time
partitions of cus_llm_usage and cus_ingest_rejects (named <table>_pYYYYMMDD, made by maintain_partitions()) are data,
not schema: their entries are left out."""
import re
import sys

text = open(sys.argv[1]).read()
text = re.sub(r"^SELECT pg_catalog\.binary_upgrade_set_next_.*\n", "", text, flags=re.M)
text = re.sub(r"^\\(un)?restrict .*\n", "", text, flags=re.M)
text = re.sub(r"relfrozenxid = '[0-9]+', relminmxid = '[0-9]+'", "relfrozenxid = 'x', relminmxid = 'x'", text)
text = re.sub(r"WHERE oid = '[0-9]+'", "WHERE oid = 'x'", text)
text = re.sub(r"(SELECT pg_catalog\.setval\('[^']+', )[0-9]+, (true|false)\)", r"\1n, b)", text)
text = re.sub(r"binary_upgrade_create_empty_extension\((.*?)'\{[0-9,]*\}'", r"binary_upgrade_create_empty_extension(\1'{oids}'", text)
# The conditions of the extension's configuration tables, in the order of their (masked) oids: sorted.
text = re.sub(r"(binary_upgrade_create_empty_extension\(.*?'\{oids\}', )'\{(.*?)\}'(, ARRAY)",
              lambda m: m.group(1) + "'{" + ",".join(sorted(re.findall(r'"(?:[^"\\]|\\.)*"', m.group(2)))) + "}'" + m.group(3),
              text)
entries = re.split(r"\n(?=--\n-- Name: )", text)
entries = [e for e in entries if not re.search(r"^-- Name: [^;]*_p[0-9]{8}", e.strip(), flags=re.M)]
for entry in sorted(e.strip() for e in entries):
    print(entry)
    print()
