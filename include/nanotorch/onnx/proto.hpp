// nanotorch/onnx/proto.hpp — the ONNX codec: bytes <-> the structs of onnx/model.hpp.
//
// One include for the four headers the codec is made of:
//   onnx/decode.hpp        Limits, decode_model / decode_tensor, read_model / read_tensor: the
//                          bounded decoder (unknown fields skipped, packed and unpacked repeated
//                          scalars, limits on depth, nodes, elements and memory per input byte).
//   onnx/encode.hpp        encode_model / encode_tensor, write_model (atomic): byte-identical to
//                          python-onnx's SerializeToString for models built as onnx.helper does.
//   onnx/tensor_data.hpp   tensor_to_floats / tensor_to_int64s, make_float_tensor /
//                          make_int64_tensor, and the payload-against-dims check.
//   onnx/message_path.hpp  the message paths ("ModelProto.graph.node[3]: ...") in decoder errors.
// The protobuf wire layer underneath (onnx/wire.hpp) knows nothing about ONNX.
#pragma once

#include <nanotorch/onnx/decode.hpp>
#include <nanotorch/onnx/encode.hpp>
#include <nanotorch/onnx/message_path.hpp>
#include <nanotorch/onnx/tensor_data.hpp>
