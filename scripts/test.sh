#!/usr/bin/env bash
# Set up both environments and run the whole test suite: the train side in .venvs/train, the device side in
# .venvs/edge (which has no TensorFlow, so the edge tests also prove the app never imports it).
# Extra arguments go to pytest, e.g. bash scripts/test.sh -x -k export
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all || exit 1
export NSL_TRAIN_PYTHON="$PWD/.venvs/train/bin/python" NSL_EDGE_PYTHON="$PWD/.venvs/edge/bin/python"
export NSL_TEST_CACHE="${NSL_TEST_CACHE:-$PWD/.cache/tests}"
mkdir -p .cache/results "$NSL_TEST_CACHE"
rm -f .cache/results/*.xml

status=0
echo "== train environment: tests/train tests/export"
"$NSL_TRAIN_PYTHON" -m pytest tests/train tests/export --junitxml=.cache/results/train.xml "$@" || status=1
echo "== edge environment: tests/common tests/edge"
"$NSL_EDGE_PYTHON" -m pytest tests/common tests/edge --junitxml=.cache/results/edge.xml "$@" || status=1

"$NSL_EDGE_PYTHON" - <<'PY'
import glob, xml.etree.ElementTree as ET
totals = dict(tests=0, failures=0, errors=0, skipped=0)
for path in glob.glob(".cache/results/*.xml"):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"all environments: {passed} passed, {failed} failed, {totals['skipped']} skipped")
PY
exit $status
