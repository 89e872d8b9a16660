#!/usr/bin/env python3
"""Checks META.json (PGXN meta-spec 1.0.0) and that every place naming the release agrees on its version:
aos_cus.control's default_version, META.json, the Makefile's EXTVERSION, debian/changelog and CHANGELOG.md.
Usage: scripts/check_meta.py [REPO]; prints each problem and exits 1 if there is one."""
import json
import os
import re
import sys

SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
REQUIRED = ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec")


def read(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


def control_value(text, key):
    m = re.search(r"^%s\s*=\s*'([^']*)'" % re.escape(key), text, re.M)
    return m.group(1) if m else None


def check(root):
    problems = []
    try:
        meta = json.loads(read(root, "META.json"))
    except (OSError, ValueError) as e:
        return ["META.json: cannot be read as JSON: %s" % e]
    version = control_value(read(root, "aos_cus.control"), "default_version")
    if not version:
        return ["aos_cus.control: no default_version"]

    for key in REQUIRED:
        if not meta.get(key):
            problems.append("META.json: required field '%s' is missing or empty" % key)
    if meta.get("name") != "aos_cus":
        problems.append("META.json: name is %r, expected 'aos_cus'" % meta.get("name"))
    if (meta.get("meta-spec") or {}).get("version") != "1.0.0":
        problems.append("META.json: meta-spec.version must be '1.0.0'")
    if meta.get("license") != "postgresql":
        problems.append("META.json: license is %r, expected 'postgresql'" % meta.get("license"))
    if not SEMVER.match(str(meta.get("version", ""))):
        problems.append("META.json: version %r is not a semantic version" % meta.get("version"))
    if meta.get("version") != version:
        problems.append("META.json: version %r differs from aos_cus.control's default_version %r"
                        % (meta.get("version"), version))
    ext = (meta.get("provides") or {}).get("aos_cus")
    if not isinstance(ext, dict):
        problems.append("META.json: provides has no 'aos_cus' extension")
    else:
        if ext.get("version") != version:
            problems.append("META.json: provides.aos_cus.version %r differs from default_version %r"
                            % (ext.get("version"), version))
        if not ext.get("file") or not os.path.isfile(os.path.join(root, ext["file"])):
            problems.append("META.json: provides.aos_cus.file %r is not a file of the repository" % ext.get("file"))
    pg = (((meta.get("prereqs") or {}).get("runtime") or {}).get("requires") or {}).get("PostgreSQL")
    if not pg or "15" not in pg:
        problems.append("META.json: prereqs.runtime.requires.PostgreSQL must name PostgreSQL 15, found %r" % pg)

    m = re.search(r"^EXTVERSION\s*=\s*(\S+)", read(root, "Makefile"), re.M)
    if not m or m.group(1) != version:
        problems.append("Makefile: EXTVERSION %r differs from default_version %r" % (m and m.group(1), version))
    m = re.match(r"^\S+ \(([^)]+)\)", read(root, "debian/changelog"))
    if not m or m.group(1) != version:
        problems.append("debian/changelog: version %r differs from default_version %r" % (m and m.group(1), version))
    if not re.search(r"^## %s\b" % re.escape(version), read(root, "CHANGELOG.md"), re.M):
        problems.append("CHANGELOG.md: no '## %s' section" % version)
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    problems = check(root)
    for p in problems:
        print(p)
    print("meta: %s" % ("ok" if not problems else "%d problem(s)" % len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
