#!/usr/bin/env python3
"""README.md is a test. Usage: scripts/readme_test.py DATABASE  (psql, PG* environment, PATH with the server's bin).

Conventions of README.md:
- Every ```sql block runs, in README order, in one psql session (ON_ERROR_STOP, quiet) on DATABASE, which must be
  fresh with the extension created as the README says; blocks may set psql variables for later blocks.
- Every ```sh block runs with bash -e in the repository, with the same PG* environment.
- A ```text block right after a ```sql or ```sh block (blank lines between allowed) is that block's expected
  output (stdout; trailing spaces and surrounding blank lines ignored). Without one the output is not compared.
- A block that cannot run here is preceded by the line `<!-- readme-test: skip: <why> -->`.
- The functions of schema aos_cus (pg_proc) must be exactly the functions the README's tables document (names in
  backticks followed by "(" in table rows of "## API reference" and "## Observability").
Prints one "ok"/"not ok" line per check and ends with "readme: N passed, N failed".
"""
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = re.compile(r'^<!-- readme-test: skip: (.+) -->$')


def blocks(lines):
    """(lang, first line number, text, skip reason) of every fenced block, in order."""
    out, i = [], 0
    while i < len(lines):
        m = re.match(r'^```(\w*)\s*$', lines[i])
        if not m:
            i += 1
            continue
        start, j = i, i + 1
        while j < len(lines) and lines[j].rstrip() != '```':
            j += 1
        prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), '')
        skip = SKIP.match(prev.strip())
        out.append((m.group(1), start + 1, '\n'.join(lines[start + 1:j]), skip.group(1) if skip else None))
        i = j + 1
    return out


def expected_after(all_blocks, n, lines):
    """The text block right after block n, if only blank lines separate them."""
    if n + 1 >= len(all_blocks) or all_blocks[n + 1][0] != 'text':
        return None
    end_of_n = all_blocks[n][1] + all_blocks[n][2].count('\n') + 2  # index of the line after the closing fence
    between = lines[end_of_n:all_blocks[n + 1][1] - 1]
    return all_blocks[n + 1][2] if all(not l.strip() for l in between) else None


def normalize(text):
    return '\n'.join(l.rstrip() for l in text.strip('\n').split('\n')).strip('\n')


passed = failed = 0


def result(ok, label, detail=''):
    global passed, failed
    if ok:
        passed += 1
        print('ok - ' + label)
    else:
        failed += 1
        print('not ok - ' + label + ('\n' + detail if detail else ''))


def main():
    db = sys.argv[1]
    lines = open(os.path.join(REPO, 'README.md')).read().split('\n')
    all_blocks = blocks(lines)
    env = dict(os.environ, PGDATABASE=db)

    # 1. The SQL blocks, in one session; a marker before each splits the output.
    sql_blocks = [(n, b) for n, b in enumerate(all_blocks) if b[0] == 'sql']
    script = ''
    for n, (lang, line, text, skip) in sql_blocks:
        if skip:
            print('# skipped: sql block at README.md:%d: %s' % (line, skip))
            continue
        script += "\\echo '@@readme block %d@@'\n%s\n" % (line, text)
    run = subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], input=script, env=env,
                         capture_output=True, text=True, cwd=REPO)
    outputs = dict((int(m.group(1)), m.group(2)) for m in
                   re.finditer(r'@@readme block (\d+)@@\n(.*?)(?=@@readme block \d+@@\n|\Z)', run.stdout, re.S))
    last = max(outputs) if outputs else None
    for n, (lang, line, text, skip) in sql_blocks:
        if skip:
            continue
        label = 'sql block at README.md:%d' % line
        if line not in outputs or (run.returncode != 0 and line == last):
            result(False, label + ' runs', run.stderr.strip())
            continue
        want = expected_after(all_blocks, n, lines)
        if want is None:
            result(True, label + ' runs')
        else:
            got = normalize(outputs[line])
            result(got == normalize(want), label + ' runs and prints what the README shows',
                   '--- README\n%s\n--- got\n%s' % (normalize(want), got))

    # 2. The shell blocks that can run here.
    for n, (lang, line, text, skip) in enumerate(all_blocks):
        if lang != 'sh':
            continue
        if skip:
            print('# skipped: sh block at README.md:%d: %s' % (line, skip))
            continue
        label = 'sh block at README.md:%d' % line
        run = subprocess.run(['bash', '-e', '-c', text], env=env, capture_output=True, text=True, cwd=REPO)
        want = expected_after(all_blocks, n, lines)
        if run.returncode != 0:
            result(False, label + ' runs', run.stderr.strip())
        elif want is None:
            result(True, label + ' runs')
        else:
            result(normalize(run.stdout) == normalize(want), label + ' runs and prints what the README shows',
                   '--- README\n%s\n--- got\n%s' % (normalize(want), normalize(run.stdout)))

    # 3. pg_proc of schema aos_cus is exactly the documented function list.
    documented, section = set(), None
    for l in lines:
        if l.startswith('## '):
            section = l[3:].strip()
        if section in ('API reference', 'Observability') and l.startswith('|'):
            documented.update(re.findall(r'`(\w+)\(', l.split('|')[1]))  # the first cell names the function
    got = subprocess.run(['psql', '-X', '-Atc', "SELECT DISTINCT proname FROM pg_catalog.pg_proc "
                          "WHERE pronamespace OPERATOR(pg_catalog.=) 'aos_cus'::pg_catalog.regnamespace"],
                         env=env, capture_output=True, text=True)
    actual = set(got.stdout.split())
    result(got.returncode == 0 and actual == documented,
           'the functions of schema aos_cus are exactly the README\'s (%d)' % len(actual),
           'undocumented: %s\ndocumented but missing: %s' % (sorted(actual - documented), sorted(documented - actual)))

    print('readme: %d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


main()
