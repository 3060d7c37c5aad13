#!/bin/sh
# Set up eidemu on Debian 12 (or a derivative): the PC/SC stack from Debian's packages,
# then a virtual environment in .venv with eidemu and its test tools.
# Safe to run again: it installs only what is missing.
set -eu
cd "$(dirname "$0")/.."

# pcscd + vsmartcard-vpcd: the virtual reader; libpcsclite-dev + swig: to build pyscard;
# pcsc-tools + opensc (+ opensc-pkcs11, openssl): independent PC/SC clients the tests use; vsmartcard-vpicc: the
# reference emulator the benchmarks compare against; chromium + chromium-driver: the browser
# tests of the HiPKI-compatible service (tests/hipki).
PACKAGES="pcscd vsmartcard-vpcd libpcsclite-dev swig pcsc-tools opensc opensc-pkcs11 openssl vsmartcard-vpicc python3-venv chromium chromium-driver"
missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "eidemu setup: missing Debian packages:$missing" >&2
        echo "eidemu setup: install them as root: apt-get install$missing" >&2
        exit 1
    fi
    echo "eidemu setup: installing$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,bench]'
echo "eidemu setup: ready (.venv/bin/eidemu)"
