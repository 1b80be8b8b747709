# tests/mnist_slice.sh — sourced by the test scripts that train mnist_train on a small copy of MNIST
# (so each run does not parse all 70,000 images, which is slow under the sanitizers).
#
#   mnist_slice SRC_DIR DST_DIR TRAIN_COUNT TEST_COUNT
#
# Writes the first TRAIN_COUNT training and TEST_COUNT test images and labels of SRC_DIR's raw IDX
# files as complete IDX files in DST_DIR. IDX headers are big-endian: magic, count, then rows and
# cols for images. Returns 1 (and writes nothing) when SRC_DIR lacks the uncompressed files.
mnist_slice() {
  local src=$1 dst=$2 train=$3 test=$4 f
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [[ -f $src/$f ]] || return 1
  done
  mkdir -p "$dst"
  _mnist_slice_file() { # FILE HEADER_BYTES ITEM_BYTES COUNT OUT
    head -c 4 "$1" >"$5"
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($4 >> 24 & 255)) $(($4 >> 16 & 255)) $(($4 >> 8 & 255)) $(($4 & 255)))" >>"$5"
    tail -c +9 "$1" | head -c $(($2 - 8)) >>"$5"
    tail -c +$(($2 + 1)) "$1" | head -c $(($3 * $4)) >>"$5"
  }
  _mnist_slice_file "$src/train-images-idx3-ubyte" 16 784 "$train" "$dst/train-images-idx3-ubyte"
  _mnist_slice_file "$src/train-labels-idx1-ubyte" 8 1 "$train" "$dst/train-labels-idx1-ubyte"
  _mnist_slice_file "$src/t10k-images-idx3-ubyte" 16 784 "$test" "$dst/t10k-images-idx3-ubyte"
  _mnist_slice_file "$src/t10k-labels-idx1-ubyte" 8 1 "$test" "$dst/t10k-labels-idx1-ubyte"
}
