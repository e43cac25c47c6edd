#!/usr/bin/env bash
# System tools the test suite needs beyond Python wheels: promtool and prometheus
# (Debian package `prometheus`) check the alert rules and scrape the running services.
# kubectl is used when present; the Kubernetes tests say so and skip when it is not.
# Idempotent: does nothing when the tools are already on PATH.
set -euo pipefail

if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "promtool/prometheus missing: install the 'prometheus' package (Debian/Ubuntu:" \
         "apt-get install prometheus; macOS: brew install prometheus), then rerun." >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Keep the package's service from starting: the tests start their own Prometheus.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
trap '[ "$created_policy" -eq 1 ] && rm -f "$policy"' EXIT
apt-get install -y --no-install-recommends prometheus >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }
promtool --version | head -1
