#!/usr/bin/env bash
# scripts/serve.sh — serve the draw-a-digit page (examples/web) on http://127.0.0.1:$PORT.
#
#   bash scripts/serve.sh [MODEL.onnx]        (default out/onnx_model.onnx; PORT=8000 unless set)
#   bash scripts/serve.sh --no-serve [MODEL]  copy the files, do not start the server
#
# Copies the runtime files listed in examples/web/vendor.txt from node_modules/ into
# examples/web/ (vendor/, git-ignored) and the model to examples/web/onnx_model.onnx, then serves
# the folder with Python's http.server on 127.0.0.1 only. Open the URL it prints; add
# ?runtime=onnxjs for ONNX.js 0.1.8 instead of onnxruntime-web. Ctrl-C stops the server.
set -euo pipefail

caller_dir=$(pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
web="$root/examples/web"
port=${PORT:-8000}
serve=1

die() {
  echo "serve.sh: $*" >&2
  exit 1
}

case "${1:-}" in
  -h | --help)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  --no-serve)
    serve=0
    shift
    ;;
esac
(($# <= 1)) || die "too many arguments (usage: scripts/serve.sh [--no-serve] [MODEL.onnx])"

# A relative MODEL is relative to where the script was called from; the default to the repo.
if (($# == 1)); then
  case "$1" in
    /*) model=$1 ;;
    *) model="$caller_dir/$1" ;;
  esac
else
  model="$root/out/onnx_model.onnx"
fi
[ -f "$model" ] || die "no model at $model — train and export one with: bash scripts/run.sh (writes out/onnx_model.onnx)"
[[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"

# ---- runtime files ----
# vendor.txt lines: "<source under node_modules/> <destination under examples/web/>"; the browser
# tests read the same list.
copied=0
while read -r src dest _; do
  case "$src" in '' | '#'*) continue ;; esac
  if [ ! -f "$root/node_modules/$src" ]; then
    die "node_modules/$src is missing — install the JavaScript packages with: ONNXRUNTIME_NODE_INSTALL=skip npm ci"
  fi
  mkdir -p "$(dirname "$web/$dest")"
  cp "$root/node_modules/$src" "$web/$dest"
  copied=$((copied + 1))
done <"$web/vendor.txt"
cp "$model" "$web/onnx_model.onnx"
echo "copied $copied runtime files into examples/web/vendor/ and $model to examples/web/onnx_model.onnx"

((serve)) || exit 0

# ---- server ----
# Python's http.server, with the MIME types the page depends on pinned (module scripts are
# refused unless served as JavaScript; WebAssembly.instantiateStreaming wants application/wasm),
# because older mimetypes tables know neither .mjs nor .wasm. no-cache: a retrained model shows
# up on reload.
command -v python3 >/dev/null 2>&1 || die "python3 is needed to serve the page (apt-get install python3)"
echo "serving examples/web at http://127.0.0.1:$port/  (onnxruntime-web; ONNX.js: http://127.0.0.1:$port/?runtime=onnxjs)"
exec python3 - "$web" "$port" <<'PY'
import functools, http.server, sys

web, port = sys.argv[1], int(sys.argv[2])

class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
        ".onnx": "application/octet-stream", ".css": "text/css", ".html": "text/html",
    }

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

try:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=web))
except OSError as e:
    sys.exit(f"serve.sh: cannot listen on 127.0.0.1:{port}: {e.strerror} (set PORT=... to use another port)")
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
PY
