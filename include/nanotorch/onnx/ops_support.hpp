// nanotorch/onnx/ops_support.hpp — what the ONNX runtime's operators are written with: typed
// attribute access, a result-size guard, window geometry (kernel/strides/dilations/pads with auto_pad resolved), and
// the few data-movement helpers nanotorch has no op for (strided Slice, broadcast index maps).
//
// Split from onnx/op_table.hpp (the operator table) to keep both headers small. Everything here
// works on contiguous row-major data and knows nothing of graphs or operator semantics; values of
// other element types (onnx/value.hpp) travel through float layout code via apply_layout (element
// indices, exact below 2^24). Deliberately absent: any arithmetic nanotorch's ops already provide.
#pragma once

#include <algorithm>  // std::copy, std::max
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/shape.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/value.hpp>

namespace nanotorch::onnx {

namespace rt_detail {

using nanotorch::detail::str_cat;

// ---- attributes ----

inline const AttributeProto* find_attr(const NodeProto& n, const char* name) {
    for (const auto& a : n.attribute)
        if (a.name == name) return &a;
    return nullptr;
}

// An attribute whose type field disagrees with how the operator uses it is a malformed model.
inline const AttributeProto* typed_attr(const NodeProto& n, const char* name, AttributeType type, const char* tn) {
    const AttributeProto* a = find_attr(n, name);
    NANOTORCH_CHECK(!a || a->type == type || a->type == AttributeType::undefined, value_error, n.op_type,
                    ": attribute '", name, "' must be ", tn, " (AttributeType ", static_cast<int>(a ? a->type : type),
                    ")");
    return a;
}
inline std::int64_t attr_int(const NodeProto& n, const char* name, std::int64_t def) {
    const AttributeProto* a = typed_attr(n, name, AttributeType::int_, "an INT");
    return a ? a->i : def;
}
inline float attr_float(const NodeProto& n, const char* name, float def) {
    const AttributeProto* a = typed_attr(n, name, AttributeType::float_, "a FLOAT");
    return a ? a->f : def;
}
inline std::string attr_str(const NodeProto& n, const char* name, const std::string& def) {
    const AttributeProto* a = typed_attr(n, name, AttributeType::string, "a STRING");
    return a ? a->s : def;
}
inline std::vector<std::int64_t> attr_ints(const NodeProto& n, const char* name, std::vector<std::int64_t> def = {}) {
    const AttributeProto* a = typed_attr(n, name, AttributeType::ints, "INTS");
    return a ? a->ints : def;
}

// Built in place: a braced list would copy the Value (and its shape) out of an initializer_list.
inline std::vector<Value> one(Tensor t) {
    std::vector<Value> r(1);
    r[0] = Value::of(std::move(t));
    return r;
}

inline std::int64_t wrap_axis(std::int64_t axis, std::int64_t rank, const char* what) {
    NANOTORCH_CHECK(axis >= -rank && axis < rank, value_error, what, " ", axis, " is out of range for rank ", rank);
    return axis < 0 ? axis + rank : axis;
}

/// Results are capped at 2^30 elements (the codec's per-tensor limit): a model whose attributes or
/// small initializers ask for more (huge pads, outer-product broadcasts, long Gather indices) gets
/// a value_error instead of an allocation failure. Also rejects negative extents. Like the codec,
/// it caps the product of the non-zero extents too: an empty [33, 2^24, 2^15, 0] holds nothing, but
/// a loop over its outer extents would run 2^44 times, and their product could overflow int64.
inline constexpr std::int64_t max_result_elements = std::int64_t(1) << 30;
inline void check_result_size(const Shape& s, const std::string& op) {
    std::int64_t n = 1;
    for (const std::int64_t d : s) {
        NANOTORCH_CHECK(d >= 0, shape_error, op, ": negative extent in result shape ", shape_str(s));
        if (d == 0) continue;
        NANOTORCH_CHECK(n <= max_result_elements / d, value_error, op, ": result of shape ", shape_str(s),
                        " would have more than 2^30 elements (or, if empty, its non-zero extents more than 2^30 "
                        "positions)");
        n *= d;
    }
}

// ---- int64 values through float layout code ----

/// Runs the layout function `fn` (vector<Tensor> -> Tensor; it may only move elements) on FLOAT
/// inputs directly, or, when every input has the same other element type, on tensors holding
/// element *indices* into the concatenated inputs, then gathers the elements those indices name.
/// One code path per layout op, for every element type; exact because indices stay below 2^24.
template <class Fn>
inline Value apply_layout(const std::vector<const Value*>& xs, Fn&& fn) {
    std::vector<Tensor> ts;
    if (xs.empty() || xs[0]->is_float()) {
        for (const Value* x : xs) {
            NANOTORCH_CHECK(x->is_float(), value_error, "inputs mix FLOAT and ", dtype_name(x->type), " tensors");
            ts.push_back(x->f);
        }
        return Value::of(fn(ts));
    }
    const DataType type = xs[0]->type;
    std::vector<std::int64_t> ipool;
    std::vector<double> dpool;
    std::size_t total = 0;
    for (const Value* x : xs) {
        NANOTORCH_CHECK(x->type == type, value_error, "inputs mix ", dtype_name(type), " and ", dtype_name(x->type),
                        " tensors");
        const auto n = static_cast<std::size_t>(x->numel());
        NANOTORCH_CHECK(total + n <= (std::size_t(1) << 24), unsupported_error, "layout ops on ", dtype_name(type),
                        " tensors with more than 2^24 elements");
        Tensor t = empty(x->shape);
        for (std::size_t k = 0; k < n; ++k) t.data_ptr()[k] = static_cast<float>(total + k);
        total += n;
        if (x->is_int) ipool.insert(ipool.end(), x->i.begin(), x->i.end());
        else dpool.insert(dpool.end(), x->d.begin(), x->d.end());
        ts.push_back(t);
    }
    const Tensor r = fn(ts);
    const std::vector<float> idx = r.to_vector();
    if (type == DataType::float64) {
        std::vector<double> out(idx.size());
        for (std::size_t k = 0; k < idx.size(); ++k) out[k] = dpool[static_cast<std::size_t>(idx[k])];
        return Value::of_doubles(std::move(out), r.shape());
    }
    std::vector<std::int64_t> out(idx.size());
    for (std::size_t k = 0; k < idx.size(); ++k) out[k] = ipool[static_cast<std::size_t>(idx[k])];
    return Value::of_ints(std::move(out), r.shape(), type);
}

/// For each element of a broadcast result of shape `out` (row-major), the offset of the element
/// of the contiguous operand of shape `in` it reads (NumPy broadcasting, aligned on the right).
inline std::vector<std::int64_t> broadcast_offsets(const Shape& in, const Shape& out) {
    const std::size_t nd = out.size(), lead = nd - in.size();
    const Shape cst = contiguous_strides(in);
    Shape st(nd, 0);
    for (std::size_t d = 0; d < in.size(); ++d) st[lead + d] = in[d] == 1 ? 0 : cst[d];
    std::vector<std::int64_t> offs(static_cast<std::size_t>(shape_numel(out)));
    std::vector<std::int64_t> idx(nd, 0);
    std::int64_t off = 0;
    for (std::size_t k = 0; k < offs.size(); ++k) {
        offs[k] = off;
        for (std::size_t d = nd; d-- > 0;) {  // odometer, last dim fastest
            if (++idx[d] < out[d]) {
                off += st[d];
                break;
            }
            off -= st[d] * (out[d] - 1);
            idx[d] = 0;
        }
    }
    return offs;
}

// ---- local kernels (data movement nanotorch has no op for) ----

/// out[o] = x[start + o * step] per dimension (steps may be negative; the caller clamped bounds).
inline Tensor strided_slice(const Tensor& x, const Shape& start, const Shape& step, const Shape& out_shape) {
    const std::vector<float> in = x.to_vector();
    const Shape ist = contiguous_strides(x.shape());
    const std::size_t nd = out_shape.size();
    Tensor out = empty(out_shape);
    const std::int64_t n = out.numel();
    std::vector<std::int64_t> idx(nd, 0);
    for (std::int64_t k = 0; k < n; ++k) {
        std::int64_t off = 0;
        for (std::size_t d = 0; d < nd; ++d) off += (start[d] + idx[d] * step[d]) * ist[d];
        out.data_ptr()[k] = in[static_cast<std::size_t>(off)];
        for (std::size_t d = nd; d-- > 0;) {
            if (++idx[d] < out_shape[d]) break;
            idx[d] = 0;
        }
    }
    return out;
}

// ---- window geometry (Conv, MaxPool, AveragePool attributes) ----

/// Kernel, strides, dilations and begin/end pads of an N-d window, with auto_pad resolved.
struct Window {
    Shape kernel, stride, dilation, pad_begin, pad_end;
};

inline Window resolve_window(const NodeProto& n, const Shape& in_spatial, const Shape& kernel) {
    const std::size_t sp = kernel.size();
    Window w;
    w.kernel = kernel;
    w.stride = attr_ints(n, "strides", Shape(sp, 1));
    w.dilation = attr_ints(n, "dilations", Shape(sp, 1));
    const Shape pads = attr_ints(n, "pads", Shape(2 * sp, 0));
    NANOTORCH_CHECK(w.stride.size() == sp && w.dilation.size() == sp && pads.size() == 2 * sp, value_error,
                    n.op_type, ": strides/dilations/pads have ", w.stride.size(), "/", w.dilation.size(), "/",
                    pads.size(), " entries for ", sp, " spatial dimensions");
    w.pad_begin.assign(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(sp));
    w.pad_end.assign(pads.begin() + static_cast<std::ptrdiff_t>(sp), pads.end());
    const std::string mode = attr_str(n, "auto_pad", "NOTSET");
    for (std::size_t d = 0; d < sp; ++d) {
        const std::int64_t big = std::int64_t(1) << 31;  // bounds the window arithmetic below
        NANOTORCH_CHECK(w.stride[d] >= 1 && w.dilation[d] >= 1 && w.kernel[d] >= 1 && w.stride[d] <= big &&
                            w.dilation[d] <= big && w.kernel[d] <= big && w.pad_begin[d] <= big && w.pad_end[d] <= big,
                        value_error, n.op_type, ": kernel, strides and dilations must be in 1..2^31, pads in 0..2^31");
        if (mode == "VALID") {
            w.pad_begin[d] = w.pad_end[d] = 0;
        } else if (mode == "SAME_UPPER" || mode == "SAME_LOWER") {
            // Output size ceil(in / stride); the odd pad goes to the end (UPPER) or beginning (LOWER).
            const std::int64_t out = (in_spatial[d] + w.stride[d] - 1) / w.stride[d];
            const std::int64_t total = std::max<std::int64_t>(
                0, (out - 1) * w.stride[d] + (w.kernel[d] - 1) * w.dilation[d] + 1 - in_spatial[d]);
            w.pad_begin[d] = mode == "SAME_UPPER" ? total / 2 : total - total / 2;
            w.pad_end[d] = total - w.pad_begin[d];
        }
        NANOTORCH_CHECK(w.pad_begin[d] >= 0 && w.pad_end[d] >= 0, value_error, n.op_type, ": negative pads");
    }
    return w;
}

/// The window of a Conv, MaxPool or AveragePool node resolved once, at load (the Runtime's plan,
/// handed to the op as OpArgs::window), where that gives what every run would resolve: auto_pad
/// NOTSET or VALID, which do not look at the input's extent, and a `kernel` fixed at load (a pool's
/// kernel_shape, the shape of a Conv's constant weight). Empty otherwise, and where resolve_window
/// would refuse the attributes: the run resolves them and reports that error, naming the node, as
/// without a plan.
inline std::optional<Window> static_window(const NodeProto& n, const Shape& kernel) {
    try {
        const std::string mode = attr_str(n, "auto_pad", "NOTSET");
        if (mode != "NOTSET" && mode != "VALID") return std::nullopt;
        return resolve_window(n, Shape(kernel.size(), 0), kernel);  // the extents are read only for SAME_*
    } catch (const error&) {
        return std::nullopt;
    }
}

/// The window's output extent along spatial dimension d of x (0 where the window does not fit:
/// the op itself reports that).
inline std::int64_t window_out_extent(const Tensor& x, const Window& w, std::size_t d) {
    const std::int64_t span = x.size(static_cast<std::int64_t>(d) + 2) + w.pad_begin[d] + w.pad_end[d] -
                              ((w.kernel[d] - 1) * w.dilation[d] + 1);
    return span < 0 ? 0 : span / w.stride[d] + 1;
}

/// Guards the output [N, channels, out...] of a window over x before anything is allocated, and
/// returns its shape.
inline Shape window_result_shape(const Tensor& x, std::int64_t channels, const Window& w, const std::string& op) {
    Shape out;
    out.reserve(2 + w.kernel.size());
    out.push_back(x.size(0));
    out.push_back(channels);
    for (std::size_t d = 0; d < w.kernel.size(); ++d) out.push_back(window_out_extent(x, w, d));
    check_result_size(out, op);
    return out;
}

/// window_result_shape's element count (what the op's work is charged by), with the same guard,
/// without building the shape where it passes (a run's windowed nodes allocate only their results).
inline std::int64_t window_result_numel(const Tensor& x, std::int64_t channels, const Window& w,
                                        const std::string& op) {
    std::int64_t positions = 1, numel = 1;  // the product of the non-zero extents; of all of them
    const auto fits = [&](std::int64_t e) {
        if (e < 0 || (e > 0 && positions > max_result_elements / e)) return false;
        if (e > 0) positions *= e;
        numel *= e;
        return true;
    };
    bool ok = fits(x.size(0)) && fits(channels);
    for (std::size_t d = 0; ok && d < w.kernel.size(); ++d) ok = fits(window_out_extent(x, w, d));
    if (!ok) window_result_shape(x, channels, w, op);  // throws check_result_size's error
    return numel;
}

}  // namespace rt_detail
}  // namespace nanotorch::onnx
