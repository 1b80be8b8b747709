// onnx_run — run an ONNX model on a .pb tensor, an image or an MNIST digit and print its outputs.
//
//   onnx_run MODEL.onnx [--input FILE]... [--quiet]
//
// FILE is a TensorProto .pb, a PNG/JPEG/BMP image, or idx:PATH:K (image K of an IDX file); see
// `onnx_run --help` and examples/onnx_run.hpp, which holds all of the logic so that
// tests/test_onnx_run.cpp can test it. Any error prints one line "onnx_run: error: ..." on stderr
// and exits with status 1.
#include <iostream>

#include "onnx_run.hpp"

int main(int argc, char** argv) { return onnx_run::main(argc, argv, std::cout, std::cerr); }
