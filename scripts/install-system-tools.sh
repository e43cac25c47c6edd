#!/usr/bin/env bash
# System tools the test suite needs beyond Python wheels:
# - promtool and prometheus (Debian package `prometheus`) check the alert rules and
#   scrape the running services;
# - chromium (Debian package `chromium`), the browser the Playwright tests drive headless;
# - node and npm (Debian packages `nodejs` and `npm`), which scripts/console-assets.sh
#   needs to install the web console's Chart.js (it runs after this script).
# kubectl is used when present; the Kubernetes tests say so and skip when it is not.
# Idempotent: installs only what is not on PATH yet.
set -euo pipefail

missing=()
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    missing+=(prometheus)
fi
if ! command -v chromium >/dev/null; then
    missing+=(chromium)
fi
if ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
fi
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing: ${missing[*]}. Install them (Debian/Ubuntu: apt-get install" \
         "${missing[*]}; macOS: brew install prometheus chromium node), then rerun." >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Keep the packages' services from starting: the tests start their own Prometheus.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
trap '[ "$created_policy" -eq 1 ] && rm -f "$policy"' EXIT
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
promtool --version | head -1
chromium --version
echo "node $(node --version), npm $(npm --version)"
