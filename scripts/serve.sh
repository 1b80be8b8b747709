#!/usr/bin/env bash
# scripts/serve.sh — serve the draw-a-digit page (examples/web) on http://127.0.0.1:$PORT.
#
#   bash scripts/serve.sh [MODEL.onnx]        (default out/onnx_model.onnx; PORT=8000 unless set)
#   bash scripts/serve.sh --no-serve [MODEL]  copy the files, do not start the server
#
# Copies the runtime files listed in examples/web/vendor.txt from node_modules/ into
# examples/web/ (vendor/, git-ignored), the model to examples/web/onnx_model.onnx, nanotorch-wasm
# (build/wasm/web/nanotorch_wasm.wasm, from scripts/build_wasm.sh --web; NANOTORCH_WASM=... for
# another) and the teaching replay set (the first REPLAY_DIGITS=5000 MNIST training digits from
# data/mnist, as replay-{images-idx3,labels-idx1}-ubyte), then serves the folder with Python's
# http.server on 127.0.0.1 only. Open the URL it prints; add ?runtime=onnxjs for ONNX.js 0.1.8 or
# ?runtime=nanotorch for nanotorch-wasm instead of onnxruntime-web. Ctrl-C stops the server.
set -euo pipefail

caller_dir=$(pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
web="$root/examples/web"
port=${PORT:-8000}
serve=1
wasm=${NANOTORCH_WASM:-$root/build/wasm/web/nanotorch_wasm.wasm}
mnist=${MNIST_DIR:-$root/data/mnist}
replay_digits=${REPLAY_DIGITS:-5000}

die() {
  echo "serve.sh: $*" >&2
  exit 1
}

case "${1:-}" in
  -h | --help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
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
[[ "$replay_digits" =~ ^[1-9][0-9]*$ ]] || die "REPLAY_DIGITS must be a positive number, got '$replay_digits'"
[ -f "$wasm" ] || die "no nanotorch-wasm at $wasm — build it with: bash scripts/build_wasm.sh --web"
[ -f "$mnist/train-images-idx3-ubyte" ] && [ -f "$mnist/train-labels-idx1-ubyte" ] ||
  die "no MNIST training set in $mnist (the teaching replay set comes from it) — fetch it with: bash scripts/fetch_mnist.sh data/mnist"

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
cp "$wasm" "$web/nanotorch_wasm.wasm"
echo "copied $copied runtime files into examples/web/vendor/, $model to examples/web/onnx_model.onnx and $wasm"

# ---- teaching replay set ----
# The first $replay_digits MNIST training digits, as IDX files of their own (header rewritten with the
# new count): fine-tuning mixes them into every batch so that the model keeps reading MNIST.
command -v python3 >/dev/null 2>&1 || die "python3 is needed to cut the replay set (apt-get install python3)"
python3 - "$mnist" "$web" "$replay_digits" <<'PY' || die "could not write the replay set"
import struct, sys

mnist, web, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for kind, dims, out in (("images", 3, "replay-images-idx3-ubyte"), ("labels", 1, "replay-labels-idx1-ubyte")):
    with open(f"{mnist}/train-{kind}-idx{dims}-ubyte", "rb") as f:
        header = f.read(4 + 4 * dims)
        magic, *shape = struct.unpack(f">{1 + dims}I", header)
        if magic != 0x800 + dims:
            sys.exit(f"train-{kind}-idx{dims}-ubyte: magic {magic:#x}, expected {0x800 + dims:#x}")
        if n > shape[0]:
            sys.exit(f"REPLAY_DIGITS={n}, but the training set has {shape[0]} digits")
        size = n * (shape[1] * shape[2] if dims == 3 else 1)
        body = f.read(size)
        if len(body) != size:
            sys.exit(f"train-{kind}-idx{dims}-ubyte is truncated")
    with open(f"{web}/{out}", "wb") as f:
        f.write(struct.pack(f">{1 + dims}I", magic, n, *shape[1:]) + body)
print(f"wrote the replay set: the first {n} MNIST training digits ({n * 785 // 1024} KB)")
PY

((serve)) || exit 0

# ---- server ----
# Python's http.server, with the MIME types the page depends on pinned (module scripts are
# refused unless served as JavaScript; WebAssembly.instantiateStreaming wants application/wasm),
# because older mimetypes tables know neither .mjs nor .wasm. no-cache: a retrained model shows
# up on reload.
command -v python3 >/dev/null 2>&1 || die "python3 is needed to serve the page (apt-get install python3)"
echo "serving examples/web at http://127.0.0.1:$port/  (onnxruntime-web; ONNX.js: http://127.0.0.1:$port/?runtime=onnxjs; nanotorch-wasm: http://127.0.0.1:$port/?runtime=nanotorch)"
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
