#!/usr/bin/env bash
# Install Debian's Chromium for tests/test_browser.py (driven by Playwright via
# executable_path=/usr/bin/chromium). Never runs `playwright install`: browser
# builds cannot be downloaded here, Debian packages can.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || true)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
/usr/bin/chromium --version || true
