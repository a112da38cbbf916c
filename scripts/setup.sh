#!/usr/bin/env bash
# Set up everything the suite needs on a fresh Debian machine that has Python >= 3.11:
# Debian's chromium and chromium-driver (for the browser transport and its tests), then a virtual
# environment in .venv with the package and all its extras.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium chromium-driver
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU build of torch first, so that no extra resolves to a CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[train,browser,eval,openenv,dev]"
