#!/usr/bin/env bash
# fetch_fashion_mnist.sh [DEST_DIR] — put the four gzipped Fashion-MNIST IDX files into DEST_DIR
# (default: data/fashion-mnist under the repository root), verified by SHA-256.
#
# The sibling of fetch_mnist.sh, used the same way. The files come from the Debian package
# dataset-fashion-mnist (installed with apt-get, through sudo when not root, if it is missing),
# which puts train-images-idx3-ubyte.gz, ... under /usr/share/datasets/fashion-mnist. They stay
# gzipped: data::load_mnist reads .gz directly. If all four files are already in DEST_DIR with
# the right hashes, nothing is done. Otherwise every source file is checked against the hashes
# below, and only then copied into DEST_DIR (each under a temporary name, then renamed, so a
# reader never sees a partial file). On any failure the script says why, exits 1 and leaves
# DEST_DIR as it was. Needs: bash, sha256sum, and apt-get when the package is not installed.
set -euo pipefail

readonly PACKAGE="dataset-fashion-mnist"
readonly SRC_DIR="/usr/share/datasets/fashion-mnist"
readonly FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
# The hashes of zalandoresearch/fashion-mnist's published files (Debian 12's 0.0~git20200523.55506a9-1).
declare -A SHA256=(
    [train-images-idx3-ubyte.gz]=b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
    [train-labels-idx1-ubyte.gz]=0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
    [t10k-images-idx3-ubyte.gz]=cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
    [t10k-labels-idx1-ubyte.gz]=8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05
)

die() {
    echo "fetch_fashion_mnist.sh: error: $*" >&2
    exit 1
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/data/fashion-mnist}"

sha_of() {
    if [[ -f "$1" ]]; then sha256sum "$1" | cut -d' ' -f1; fi
}

all_present=1
for f in "${FILES[@]}"; do
    [[ "$(sha_of "$dest/$f")" == "${SHA256[$f]}" ]] || all_present=0
done
if [[ $all_present == 1 ]]; then
    echo "fetch_fashion_mnist.sh: all four Fashion-MNIST files present and verified in $dest"
    exit 0
fi

command -v sha256sum >/dev/null 2>&1 || die "'sha256sum' is required but not installed"
if [[ ! -d "$SRC_DIR" ]]; then
    # shellcheck source=lib.sh
    source "$repo_root/scripts/lib.sh"
    echo "fetch_fashion_mnist.sh: installing the Debian package $PACKAGE ..."
    apt_install_missing "$PACKAGE" || die "could not install $PACKAGE; nothing was changed in $dest"
    [[ -d "$SRC_DIR" ]] || die "$PACKAGE is installed but $SRC_DIR does not exist; nothing was changed in $dest"
fi

for f in "${FILES[@]}"; do
    got="$(sha_of "$SRC_DIR/$f")"
    [[ -n "$got" ]] || die "$SRC_DIR/$f is missing (reinstall $PACKAGE); nothing was changed in $dest"
    [[ "$got" == "${SHA256[$f]}" ]] ||
        die "SHA-256 mismatch for $SRC_DIR/$f: expected ${SHA256[$f]}, got $got; nothing was changed in $dest"
done

staged=()
cleanup() {
    if ((${#staged[@]})); then rm -f -- "${staged[@]}"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mkdir -p -- "$dest"
for f in "${FILES[@]}"; do
    tmp="$(mktemp "$dest/.$f.XXXXXX")"
    staged+=("$tmp")
    cp -- "$SRC_DIR/$f" "$tmp"
    chmod 0644 -- "$tmp"
done
for i in "${!FILES[@]}"; do
    mv -f -- "${staged[$i]}" "$dest/${FILES[$i]}"
done
staged=()

for f in "${FILES[@]}"; do
    [[ "$(sha_of "$dest/$f")" == "${SHA256[$f]}" ]] || die "$dest/$f failed verification after the copy"
done
echo "fetch_fashion_mnist.sh: wrote and verified ${FILES[*]} in $dest"
