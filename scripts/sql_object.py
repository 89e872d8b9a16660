#!/usr/bin/env python3
"""Prints the definition of one function from the src/sql/NN_*.sql parts, as CREATE OR REPLACE, for the upgrade
script: scripts/sql_object.py 'aos_cus.rollup_usage('  (the definition runs from its CREATE FUNCTION line to the
first line ending in ';' after its body)."""
import glob
import sys

head = sys.argv[1]
for path in sorted(glob.glob('src/sql/[0-9][0-9]_*.sql')):
    lines = open(path).read().split('\n')
    for i, line in enumerate(lines):
        if line.startswith('CREATE FUNCTION ' + head):
            out, in_body = [], False
            for l in lines[i:]:
                out.append(l)
                in_body ^= l.count('$$') % 2 == 1
                if not in_body and (l.rstrip().endswith(';') or l.strip() == 'END;'):
                    break
            print('\n'.join(out).replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION', 1))
            sys.exit(0)
sys.exit('no CREATE FUNCTION ' + head)
