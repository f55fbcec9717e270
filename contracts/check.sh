#!/usr/bin/env bash
# Rebuilds the contract artifacts from source with the pinned solc into a temporary
# directory and fails if they differ from the committed contracts/out/.
# Needs node + npm and access to the npm registry. Runs from any working directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

npm ci --silent --no-audit --no-fund

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

node build.js "$tmp/out"

if ! diff -r out "$tmp/out"; then
  echo "contracts/out is out of date: run 'node build.js' in contracts/ and commit the result" >&2
  exit 1
fi
echo "contracts/out is up to date"
