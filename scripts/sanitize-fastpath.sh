#!/usr/bin/env bash
# The collector's compiled fast path under AddressSanitizer and UndefinedBehaviorSanitizer:
# C code on the HTTP edge, fed by untrusted JSON. Compiles a sanitized copy of
# collector/_segment_fast.pyx into a scratch copy of the collector package (the installed
# module is left alone) and runs the fast path's tests and the app's tests against it;
# any invalid read or write, or undefined behaviour, fails the run. (`make test` runs it.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(realpath -s "${VENV:-.venv}/bin/python")  # absolute: the tests run from a scratch dir
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/tests"
cp pyproject.toml "$work/"
cp -r collector "$work/collector"
rm -f "$work"/collector/*.so "$work"/collector/*.c
cp tests/__init__.py tests/conftest.py "$work/tests/"
cp -r tests/collector "$work/tests/collector"

include=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
suffix=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
"$PY" -m cython -3 --fast-fail "$work/collector/_segment_fast.pyx" -o "$work/collector/_segment_fast.c"
gcc -shared -fPIC -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
  -fno-sanitize-recover=undefined -I"$include" \
  "$work/collector/_segment_fast.c" -o "$work/collector/_segment_fast$suffix"

cd "$work"
# The interpreter is not built with the sanitizers: preload their runtimes, leave
# CPython's own allocations out of the leak report, and allocate every object with malloc
# (pymalloc's pools would hide an overrun of a string from ASan).
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$PY" -c '
import sys
import collector._segment_fast as fast
assert fast.__file__.startswith(sys.argv[1]), fast.__file__  # the sanitized build
import pytest
# --capture=sys: a sanitizer report goes to the real stderr, not a capture file.
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "--capture=sys",
                      "tests/collector/test_segment_fast.py",
                      "tests/collector/test_app.py"]))
' "$work"
