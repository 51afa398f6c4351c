#!/bin/bash
# The system tools the tests need: g++ (C simulation against the ap_types headers) and tclsh
# (build.tcl parsed with stubbed Vitis commands). Installs the missing ones with apt-get (Debian
# packages g++ and tcl) when run as root; otherwise says what to install. Idempotent.
set -euo pipefail
missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v tclsh >/dev/null || missing+=(tcl)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "error: missing ${missing[*]}; install them (Debian/Ubuntu: apt-get install ${missing[*]})" >&2
    exit 1
fi
