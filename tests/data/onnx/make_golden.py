#!/usr/bin/python3
"""Writes the golden files tests/test_onnx_proto.cpp compares nanotorch's ONNX codec against.

Run with Debian's python3-onnx (1.12, protobuf 3.21), from the repository root:
    /usr/bin/python3 tests/data/onnx/make_golden.py

Every model is built with onnx.helper the way tests/test_onnx_proto.cpp builds the same model by
hand, setting exactly the fields nanotorch writes (in particular OperatorSetIdProto.domain is
left unset rather than set to "", since nanotorch omits empty strings), serialized with
SerializeToString and validated with onnx.checker.check_model(full_check=True).

Files (each well under 10 KB):
  relu_opset9.onnx       ir_version 4, opset 9: input x [N, 3], one Relu, output y [N, 3], and
                         one initializer w [2, 3] FLOAT in raw_data.
  tensor_w.pb            the TensorProto w on its own.
  attributes.onnx        one node of a custom domain carrying every attribute type
                         (FLOAT, INT = -1, STRING, TENSOR, GRAPH, FLOATS, INTS, STRINGS,
                         TENSORS, GRAPHS), followed by Softmax(axis = -1).
  attributes_packed.onnx the same model with the FLOATS and INTS attributes re-encoded packed
                         (python protobuf always writes them unpacked, as onnx.proto is proto2);
                         built by concatenating serialized pieces, which protobuf defines as
                         merging, and checked to parse to a model equal to attributes.onnx.
"""
import os
import struct

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
W_VALUES = [0.5, -1.0, 2.25, 0.0, -0.125, 3.0]


def opset(version, domain=None):
    op = onnx.OperatorSetIdProto()
    if domain is not None:
        op.domain = domain
    op.version = version
    return op


def relu_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 3], struct.pack("<6f", *W_VALUES), raw=True)
    node = helper.make_node("Relu", ["x"], ["y"], name="relu0")
    graph = helper.make_graph([node], "relu_graph", [x], [y], initializer=[w])
    return helper.make_model(graph, ir_version=4, opset_imports=[opset(9)],
                             producer_name="nanotorch", producer_version="0.1.0")


def attributes_model():
    sub_in = helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])
    sub_out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])
    body = helper.make_graph([helper.make_node("Relu", ["a"], ["b"])], "body", [sub_in], [sub_out])
    body2 = helper.make_graph([helper.make_node("Neg", ["a"], ["b"])], "body2", [sub_in], [sub_out])
    t_float = helper.make_tensor("t0", TensorProto.FLOAT, [2], [1.5, -2.0])          # float_data
    t_int = helper.make_tensor("t1", TensorProto.INT64, [3], [7, -8, 9])             # int64_data
    t_raw = helper.make_tensor("t2", TensorProto.INT32, [1], struct.pack("<i", -5), raw=True)
    # make_node adds keyword attributes sorted by name; the C++ test builds them in this order.
    node = helper.make_node(
        "AllAttrs", ["x"], ["y"], name="all", domain="nanotorch.test",
        a_float=0.25, b_int=-1, c_string="hello", d_tensor=t_float, e_graph=body,
        f_floats=[0.5, -2.0, 3.25], g_ints=[1, -1, 300, -(2 ** 40)], h_strings=["p", "", "qr"],
        i_tensors=[t_int, t_raw], j_graphs=[body, body2])
    softmax = helper.make_node("Softmax", ["y"], ["z"], axis=-1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([node, softmax], "attrs", [x], [z], value_info=[y])
    return helper.make_model(graph, ir_version=4,
                             opset_imports=[opset(9), opset(1, "nanotorch.test")])


def varint(v):
    v &= (1 << 64) - 1  # negative int64 -> two's complement, 10 bytes
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def length_delimited(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def packed_attribute(attr):
    """attr serialized with floats (field 7) / ints (field 8) packed instead of unpacked."""
    rest = onnx.AttributeProto()
    rest.CopyFrom(attr)
    del rest.floats[:]
    del rest.ints[:]
    out = rest.SerializeToString()
    if attr.floats:
        out += length_delimited(7, struct.pack("<%df" % len(attr.floats), *attr.floats))
    if attr.ints:
        out += length_delimited(8, b"".join(varint(i) for i in attr.ints))
    return out


def packed_model(model):
    """model re-serialized with every FLOATS/INTS attribute of the top-level graph packed."""
    graph = b""
    for node in model.graph.node:
        head = onnx.NodeProto()
        head.CopyFrom(node)
        del head.attribute[:]
        body = head.SerializeToString()
        for attr in node.attribute:
            body += length_delimited(5, packed_attribute(attr))
        graph += length_delimited(1, body)
    rest_graph = onnx.GraphProto()
    rest_graph.CopyFrom(model.graph)
    del rest_graph.node[:]
    graph += rest_graph.SerializeToString()
    rest = onnx.ModelProto()
    rest.CopyFrom(model)
    rest.ClearField("graph")
    return rest.SerializeToString() + length_delimited(7, graph)


def write(name, data):
    assert len(data) < 10 * 1024, name
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    print("%-24s %5d bytes" % (name, len(data)))


def main():
    relu = relu_model()
    attrs = attributes_model()
    for m in (relu, attrs):
        onnx.checker.check_model(m, full_check=True)
    packed = packed_model(attrs)
    reparsed = onnx.load_from_string(packed)
    assert reparsed == attrs, "packed re-encoding changed the model"
    assert packed != attrs.SerializeToString()
    onnx.checker.check_model(reparsed, full_check=True)

    write("relu_opset9.onnx", relu.SerializeToString())
    write("tensor_w.pb", relu.graph.initializer[0].SerializeToString())
    write("attributes.onnx", attrs.SerializeToString())
    write("attributes_packed.onnx", packed)


if __name__ == "__main__":
    main()
