#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine, only when missing:
# PostgreSQL server binaries (initdb/pg_ctl; tests start throwaway clusters).
set -euo pipefail

have_pg() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

if ! have_pg; then
  echo "test-deps: installing PostgreSQL (initdb/pg_ctl not found)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq postgresql >/dev/null
fi
echo "test-deps: ok"
