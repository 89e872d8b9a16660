#!/usr/bin/env python3
"""prom_compare.py: small checks on Prometheus text expositions for test/monitoring/monitoring.sh.

  names FILE...             print the aos_cus_* metric family names declared (TYPE) or sampled in the files
  sampled FILE...           print the aos_cus_* metric names that have samples in the files
  expr-names FILE...        print the aos_cus_* names used by a Grafana dashboard (.json) or rule file (.yml)
  same A B [SKIP...]        exit 0 when A and B have the same aos_cus_* series with the same values
                            (the exporter's "server" label ignored; SKIP names not compared by value)
  value FILE SERIES         print the value of one series, written name{l1="v1",...} with labels in any order
"""
import json
import math
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(path):
    """Map (name, sorted labels) -> float for every aos_cus_* sample of a file."""
    out = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            m = SAMPLE.match(line)
            if not m:
                raise SystemExit('unparsable line in %s: %r' % (path, line))
            name, labels, value = m.groups()
            if not name.startswith('aos_cus_'):
                continue
            pairs = tuple(sorted((k, v) for k, v in LABEL.findall(labels or '') if k != 'server'))
            out[(name, pairs)] = float(value)
    return out


def families(path):
    """aos_cus_* names of TYPE lines and samples."""
    names = set()
    with open(path, encoding='utf-8') as f:
        for line in f:
            m = re.match(r'^# TYPE (aos_cus_\S+) ', line)
            if m:
                names.add(m.group(1))
    names.update(n for n, _ in samples(path))
    return names


def expr_names(path):
    """aos_cus_* names in the expressions of a dashboard or rule file."""
    if path.endswith('.json'):
        with open(path, encoding='utf-8') as f:
            dash = json.load(f)
        text = '\n'.join(t['expr'] for p in dash['panels'] for t in p.get('targets', []))  # rows have no targets
    else:
        lines, indent, text = open(path, encoding='utf-8').read().split('\n'), None, []
        for line in lines:
            depth = len(line) - len(line.lstrip())
            if line.strip().startswith('expr:'):
                indent = depth
                text.append(line.strip()[5:])
            elif indent is not None and line.strip() and depth > indent:
                text.append(line)
            elif line.strip():
                indent = None
        text = '\n'.join(text)
    return set(re.findall(r'\baos_cus_[a-z0-9_]+', text))


def same(a, b, skip):
    """Report differences between two expositions; True when none."""
    sa, sb = samples(a), samples(b)
    ok = True
    for key in sorted(set(sa) | set(sb)):
        if key[0] in skip:
            if (key in sa) != (key in sb):
                print('only in one source: %s %s' % key)
                ok = False
            continue
        va, vb = sa.get(key), sb.get(key)
        if va is None or vb is None or not (va == vb or (math.isnan(va) and math.isnan(vb))):
            print('differs: %s%s %s vs %s' % (key[0], dict(key[1]), va, vb))
            ok = False
    return ok


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'names':
        print('\n'.join(sorted(set().union(*(families(p) for p in args)))))
    elif cmd == 'sampled':
        print('\n'.join(sorted({n for p in args for n, _ in samples(p)})))
    elif cmd == 'expr-names':
        print('\n'.join(sorted(set().union(*(expr_names(p) for p in args)))))
    elif cmd == 'same':
        sys.exit(0 if same(args[0], args[1], set(args[2:])) else 1)
    elif cmd == 'value':
        m = SAMPLE.match(args[1] + ' 0')
        want = (m.group(1), tuple(sorted(LABEL.findall(m.group(2) or ''))))
        v = samples(args[0]).get(want)
        print('absent' if v is None else repr(v))
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main()
