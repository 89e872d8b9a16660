#!/usr/bin/env python3
"""Normalizes `pg_dump --binary-upgrade --schema-only` output so that two databases with the same aos_cus schema
compare equal whatever order their objects were created in and whatever data they hold: drops OID-setting calls,
OID lists, xids and sequence positions, and sorts the dump's entries (each starts at a "-- Name:" header)."""
import re
import sys

text = open(sys.argv[1]).read()
text = re.sub(r"^SELECT pg_catalog\.binary_upgrade_set_next_.*\n", "", text, flags=re.M)
text = re.sub(r"^\\(un)?restrict .*\n", "", text, flags=re.M)
text = re.sub(r"relfrozenxid = '[0-9]+', relminmxid = '[0-9]+'", "relfrozenxid = 'x', relminmxid = 'x'", text)
text = re.sub(r"WHERE oid = '[0-9]+'", "WHERE oid = 'x'", text)
text = re.sub(r"(SELECT pg_catalog\.setval\('[^']+', )[0-9]+, (true|false)\)", r"\1n, b)", text)
text = re.sub(r"binary_upgrade_create_empty_extension\((.*?)'\{[0-9,]*\}'", r"binary_upgrade_create_empty_extension(\1'{oids}'", text)
entries = re.split(r"\n(?=--\n-- Name: )", text)
for entry in sorted(e.strip() for e in entries):
    print(entry)
    print()
