#!/usr/bin/env bash
# Copyright 2026 ccl_perception maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

# Creates .venv with every dependency pinned in requirements.txt, plus the apt packages
# the Python wheels and the v2 benchmark need. Idempotent: a second run checks a stamp and returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STAMP="$VENV/.ccl_installed"
HASH=$(cat requirements.txt setup.py | sha256sum | cut -d' ' -f1)

# apt packages, checked on every run (cheap) so an existing venv also gets new ones:
#   libusb-1.0-0           open3d needs it at import time
#   libxml2-utils          xmllint, for the package.xml lint test
#   sweethome3d-furniture  benchmark v2's objects and table photos (.sh3f archives, ~120 MB)
#   libegl1 libegl-mesa0 libgl1-mesa-dri   pybullet's headless OpenGL (EGL) renderer on Mesa
APT=()
ldconfig -p 2>/dev/null | grep -q libusb-1.0.so.0 || APT+=(libusb-1.0-0)
command -v xmllint >/dev/null 2>&1 || APT+=(libxml2-utils)
[ -f /usr/share/sweethome3d/furniture/Scopia.sh3f ] || APT+=(sweethome3d-furniture)
ldconfig -p 2>/dev/null | grep -q libEGL.so.1 || APT+=(libegl1)
ldconfig -p 2>/dev/null | grep -q libEGL_mesa.so.0 || APT+=(libegl-mesa0 libgl1-mesa-dri)
if [ ${#APT[@]} -gt 0 ]; then
  echo "[setup] installing apt packages: ${APT[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${APT[@]}" >/dev/null
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  exit 0
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
