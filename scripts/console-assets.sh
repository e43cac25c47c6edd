#!/usr/bin/env bash
# Installs the web console's third-party front-end files (Chart.js) from the npm
# registry, pinned by api/web/package-lock.json, into the console's vendor folder:
# no CDN at run time and no minified copy in git. The Dockerfile's console stage does
# the same for the image. Idempotent; prints one line on success.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web=api/web
vendor=api/persona_api/static/console/vendor
# Source under node_modules, then the name in the vendor folder. The Dockerfile's
# builder stage copies the same files; tests/deploy/test_dockerfile.py compares the two.
assets=(
    "chart.js/dist/chart.umd.min.js chart.umd.min.js"
    "chart.js/LICENSE.md chart.js.LICENSE.md"
)

if ! command -v npm >/dev/null; then
    echo "npm is missing: the web console's Chart.js is installed with it. Install" \
         "Node.js 18+ and npm (Debian/Ubuntu: apt-get install nodejs npm; macOS:" \
         "brew install node), then rerun make install." >&2
    exit 1
fi

cd "$root/$web"
npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
cd "$root"
mkdir -p "$vendor"
names=()
for asset in "${assets[@]}"; do
    read -r source name <<<"$asset"
    cp "$web/node_modules/$source" "$vendor/$name"
    names+=("$name")
done
version="$(node -p "require('./$web/node_modules/chart.js/package.json').version")"
echo "console assets: chart.js $version -> $vendor/ (${names[*]})"
