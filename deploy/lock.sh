#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml:  deploy/lock.sh   (needs uv: pip install -e '.[dev]')
#   requirements-dev.lock       core + embedded + dev: what .ci/run installs before the test command
#   requirements-embedded.lock  core + embedded: the image built with EXTRAS=embedded
#   requirements.lock           core: the default (cloud engines) image
# Each is one resolution for Python 3.11 on every platform (--universal: an arm64 image builds from
# the same pins), with the sha256 of every file, so pip installs them with --require-hashes.
# The dev lock is solved first and bounds the other two, so a package has one version in all three.
# Pins already in a lock are kept; pass --upgrade (or --upgrade-package NAME) to move them.
set -euo pipefail
cd "$(dirname "$0")/.."
compile() {
  uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command "deploy/lock.sh" "$@"
}
compile pyproject.toml --extra embedded --extra dev deploy/build-backend.in -o requirements-dev.lock "$@"
compile pyproject.toml --extra embedded -c requirements-dev.lock -o requirements-embedded.lock
compile pyproject.toml -c requirements-dev.lock -o requirements.lock
