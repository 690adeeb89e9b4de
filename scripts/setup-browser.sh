#!/usr/bin/env bash
# Headless Chromium for the report test (tests/subset/test_report_browser.py): Debian's package.
# Idempotent; never fails the build: without root or apt the test skips and says why.
set -u
for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
    fi
    if [ "$SUDO" != "none" ]; then
        echo "installing chromium (Debian package) for the report browser test ..." >&2
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
            || { $SUDO apt-get update -q >/dev/null 2>&1 \
                 && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } \
            || true
    fi
fi
command -v chromium >/dev/null 2>&1 \
    || echo "chromium could not be installed (needs root + apt): the report browser test will skip" >&2
exit 0
