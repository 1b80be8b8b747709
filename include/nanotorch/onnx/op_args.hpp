// nanotorch/onnx/op_args.hpp — the interface between the ONNX runtime and its operators: what a
// run function sees (OpArgs), one table entry (OpSpec), and the opset-dependent input-count checks
// every operator header shares. The operators themselves live in onnx/op_table.hpp (nanotorch's
// float ops), onnx/ops_typed.hpp (every element type: shape arithmetic, comparisons, logic,
// layout) and onnx/ops_math.hpp (float math with no training op).
#pragma once

#include <algorithm>  // std::min
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/fwd.hpp>  // PackedConvWeight
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/ops_support.hpp>

namespace nanotorch::onnx::rt_detail {

// ---- op interface ----

/// One run's work against RuntimeOptions::max_work. A unit is one element a node reads or writes
/// (the runtime charges those around every node, extent_work) or one step of an op's inner loop beyond that:
/// a multiply-add of Conv, ConvTranspose, Gemm and MatMul, a window tap of the pools, a term of
/// LRN's sum (the op charges those before it loops, through OpArgs::charge). The count is a
/// function of the graph and the input shapes only, so a bound rejects the same models on every
/// machine and thread count.
class WorkMeter {
public:
    explicit WorkMeter(std::int64_t limit) : limit_(limit) {}
    /// Adds n units (saturating); throws limit_error once the total passes a non-zero limit.
    void charge(double n) {
        used_ = std::min(used_ + n, 9.0e18);
        NANOTORCH_CHECK(limit_ <= 0 || used_ <= static_cast<double>(limit_), limit_error,
                        "the run needs more than RuntimeOptions::max_work = ", limit_,
                        " units of work (elements read and written, plus multiply-adds and window taps); "
                        "this node brings it to ", static_cast<std::int64_t>(used_));
    }

private:
    std::int64_t limit_;
    double used_ = 0;  // double: products of extents may pass int64; exact below 2^53
};

/// The work of reading or writing a value of shape s: its element count, or for an empty value
/// the product of its non-zero extents (an op's outer loops may still run over those). In double:
/// a graph input's empty shape is not bounded by the runtime's result cap.
inline double extent_work(const Shape& s) {
    double n = 1;
    for (const std::int64_t d : s)
        if (d > 0) n *= static_cast<double>(d);
    return n;
}

/// What an op's run function sees: the node, the model's default opset, and one pointer per
/// node input (nullptr for an omitted optional input, "" in the NodeProto). `meter` is the run's
/// WorkMeter (nullptr at load time, where only Constant nodes run). `window`: a Conv's or pool's
/// window resolved at load (static_window), or nullptr, and the op resolves its attributes itself.
struct OpArgs {
    const NodeProto& node;
    std::int64_t opset;
    std::vector<const Value*> in;
    WorkMeter* meter = nullptr;
    const Window* window = nullptr;
    const PackedConvWeight* packed_weight = nullptr;  // a Conv's weight packed at load (Runtime::prepack_weights)

    /// Charges the op's inner-loop steps (WorkMeter) before it starts them: the product of
    /// `factors`, each an extent or count >= 0.
    void charge(std::initializer_list<std::int64_t> factors) const {
        if (!meter) return;
        double n = 1;
        for (const std::int64_t f : factors) n *= static_cast<double>(f);
        meter->charge(n);
    }

    bool has(std::size_t k) const { return k < in.size() && in[k] != nullptr; }
    const Value& value(std::size_t k) const {
        NANOTORCH_CHECK(has(k), value_error, "required input #", k, " is missing");
        return *in[k];
    }
    /// A FLOAT input: the float math ops are nanotorch's float32 ops.
    const Tensor& tensor(std::size_t k) const {
        const Value& v = value(k);
        // Another element type is a gap, not a malformed model: this op runs nanotorch's float32 ops.
        NANOTORCH_CHECK(v.is_float(), unsupported_error, node.op_type, " on ", dtype_name(v.type), " input #", k, " ('",
                        node.input[k], "'): nanotorch runs this operator on FLOAT only");
        return v.f;
    }
    /// An integer input (shapes, axes, indices: INT64 in the spec, any integer type accepted).
    const std::vector<std::int64_t>& ints(std::size_t k) const {
        const Value& v = value(k);
        NANOTORCH_CHECK(v.is_int && v.type != DataType::boolean, value_error, "input #", k, " ('", node.input[k],
                        "') must be INT64, got ", dtype_name(v.type));
        return v.i;
    }
    /// A one-element float input (Clip bounds, Pad's constant_value).
    float scalar(std::size_t k) const {
        const Tensor& t = tensor(k);
        NANOTORCH_CHECK(t.numel() == 1, shape_error, "input #", k, " ('", node.input[k],
                        "') must hold one element, got shape ", shape_str(t.shape()));
        return t.to_vector()[0];
    }
};

using CheckFn = std::string (*)(const NodeProto&, std::int64_t opset);
using RunFn = std::vector<Value> (*)(const OpArgs&);

/// One table entry. Input counts are the bounds over all supported opsets (check() narrows them
/// per opset); outputs beyond max_outputs are optional outputs nanotorch does not produce.
struct OpSpec {
    std::size_t min_inputs = 1, max_inputs = 1, max_outputs = 1;
    CheckFn check = nullptr;
    RunFn run = nullptr;
};

// Input counts that change at opset `At` (an attribute became an input): Lo0..Hi0 before it,
// Lo1..Hi1 from it on. The table's own bounds cover every opset at once.
template <std::int64_t At, std::size_t Lo0, std::size_t Hi0, std::size_t Lo1, std::size_t Hi1>
inline std::string check_inputs(const NodeProto& n, std::int64_t opset) {
    const std::size_t lo = opset < At ? Lo0 : Lo1, hi = opset < At ? Hi0 : Hi1;
    if (n.input.size() >= lo && n.input.size() <= hi) return "";
    return str_cat(n.input.size(), " inputs at opset ", opset, " (expected ", lo, "..", hi, ")");
}

/// For operators newer than the runtime's oldest opset (7): Erf (9), HardSwish (14).
template <std::int64_t Since>
inline std::string check_since(const NodeProto& n, std::int64_t opset) {
    return opset >= Since ? ""
                          : str_cat(n.op_type, " at opset ", opset, " (the operator exists from opset ", Since, ")");
}

}  // namespace nanotorch::onnx::rt_detail
