#!/usr/bin/env bash
# Entry point for every build task; see build.fsx for the targets.
#   ./build.sh run    the flagship job        ./build.sh test    all tests, ends with "N passed, N failed, N skipped"
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
target="${1:-Build}"
case "$target" in
  run) target=Run ;;
  test) target=Test ;;
esac
dotnet tool restore > /dev/null
exec dotnet fsi build.fsx --target "$target" "${@:2}"
