#!/usr/bin/python3
"""Every name the libraries export carries the project's prefix, so an application can
link them beside other libraries (tomlc99's toml_parse, a buf_append of its own, syslog's
LOG_INFO) without a clash.

Run by ctest as `python3 tests/symbols_test.py LIB...`: each defined global symbol of
each static library (nm -g --defined-only) must start with `stm_` (or `stemma_`, the
public API's, include/stemma.h); each symbol a shared library exports (nm -D
--defined-only) must start with `stemma_`: libstemma exports its public API and nothing
else."""
import os
import subprocess
import sys


def shared(lib):
    return ".so" in os.path.basename(lib)


def exported(lib):
    out = subprocess.run(["nm", "-D" if shared(lib) else "-g", "--defined-only", lib],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        # AddressSanitizer adds an __odr_asan.NAME beside each exported global NAME (its
        # one-definition-rule check); NAME itself is listed and checked.
        if len(parts) == 3 and parts[1] in "TDBRCGSV" and not parts[2].startswith("__odr_asan."):
            yield parts[2]


def main(libs):
    if not libs:
        print("usage: symbols_test.py LIB.a|LIB.so...", file=sys.stderr)
        return 2
    bad = []
    total = 0
    for lib in libs:
        prefixes = ("stemma_",) if shared(lib) else ("stm_", "stemma_")
        for name in exported(lib):
            total += 1
            if not name.startswith(prefixes):
                bad.append(f"{lib}: {name} (wants {' or '.join(prefixes)})")
    if total == 0:
        print("symbols_test: no symbols read at all: nothing tested", file=sys.stderr)
        return 1
    for line in bad:
        print(f"exported without the prefix: {line}", file=sys.stderr)
    print(f"{total} exported symbols, {len(bad)} without the prefix")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
