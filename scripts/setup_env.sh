#!/usr/bin/env bash
# Creates .venv with every dependency pinned in requirements.txt, plus the apt packages
# the Python wheels need. Idempotent: a second run checks a stamp and returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STAMP="$VENV/.ccl_installed"
HASH=$(cat requirements.txt setup.py | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  exit 0
fi

# open3d needs libusb at import time; everything else ships in wheels.
if ! ldconfig -p 2>/dev/null | grep -q libusb-1.0.so.0; then
  echo "[setup] installing apt package libusb-1.0-0 (needed by open3d)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libusb-1.0-0 >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  python3 -m venv "$VENV"
fi
echo "[setup] installing Python packages (first run: several minutes, ~7 GB)"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r requirements.txt
"$VENV/bin/python" -m pip install -q --no-deps -e .
echo "$HASH" > "$STAMP"
echo "[setup] done"
