#!/bin/sh
# Installs the Debian packages that provide the commands named on the command line, when a command is
# missing: `sh scripts/install-packages.sh CMD:PACKAGE...` (npm run setup and npm run guest-image use it).
# `--update` first (alone or before the pairs) refreshes apt's package lists, for a machine that never
# fetched them. Runs apt-get as root, or through sudo; when neither works it says what to run and exits 1.
set -eu

update=""
if [ "${1:-}" = "--update" ]; then
  update=1
  shift
fi

missing=""
for pair in "$@"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
  fi
done
missing=${missing# }

if [ -z "$missing" ] && [ -z "$update" ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-packages: missing: $missing. This machine has no apt-get: install the packages that provide" >&2
  echo "install-packages: $(for pair in "$@"; do printf '%s ' "${pair%%:*}"; done)with your package manager." >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  as_root=""
elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
  as_root="sudo"
else
  echo "install-packages: missing Debian packages: ${missing:-(none; the package lists need a refresh)}" >&2
  echo "install-packages: installing them needs root, and sudo is not available here. As root, run:" >&2
  echo "install-packages:   apt-get update${missing:+ && apt-get install -y $missing}" >&2
  exit 1
fi

# Another apt run (a second setup, unattended upgrades) holds dpkg's lock for a while: wait for it.
lock_wait="-o DPkg::Lock::Timeout=300"
if [ -n "$missing" ]; then
  echo "install-packages: installing $missing"
fi
# shellcheck disable=SC2086
$as_root apt-get $lock_wait update -qq
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get $lock_wait install -y -qq --no-install-recommends $missing
fi
