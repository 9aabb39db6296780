#!/usr/bin/env bash
# Build testbed/runner (the testbed itself in a container, see ../Dockerfile) without a registry:
# node base image from Debian packages, Python wheels from the host's pip, then `docker build`.
# Usage: scripts/build-runner-image.sh [TAG]   (default testbed/runner:local)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-testbed/runner:local}
VENV=${VENV:-.venv}
"$VENV/bin/testbed" images build --quiet
rm -rf build/wheelhouse
"$VENV/bin/pip" wheel -q -w build/wheelhouse '.[dev]' 2>/dev/null
docker build -q --force-rm --network host --label org.medalliance.testbed.image=runner -t "$TAG" . >/dev/null
echo "built $TAG"
