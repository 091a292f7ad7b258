#!/usr/bin/env bash
# The Debian packages the test suite needs, in one place (used by .ci/run and named by `npm test` when
# something is missing): nats-server for the NATS transport tests; python3 with numpy and scikit-learn
# for the Python bridge, venv + pip for requirements.txt, fastapi (starlette) for its response tests
# and uvicorn for the bridge benchmark's baseline; chromium for the dashboard's browser test.
#   bash scripts/system-deps.sh --check    exit 1 and list what is missing (installs nothing)
#   bash scripts/system-deps.sh            install what is missing (needs root: apt-get)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
# The dashboard's browser test drives Debian's chromium through playwright-core (no browser download).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ! /usr/bin/python3 -c 'import numpy, sklearn, fastapi, uvicorn, venv, pip, ensurepip' >/dev/null 2>&1; then
  missing+=(python3 python3-numpy python3-sklearn python3-fastapi python3-uvicorn python3-venv python3-pip)
fi
if [ "${1:-}" = "--check" ]; then
  [ "${#missing[@]}" -eq 0 ] && exit 0
  echo "missing Debian packages: ${missing[*]}" >&2
  exit 1
fi
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
