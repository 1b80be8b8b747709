// nanotorch/onnx/ops_resize.hpp — Resize (opset 10+) and Upsample (opsets 7-9): nearest and
// (multi-)linear interpolation of a FLOAT tensor of any rank.
//
// Each output coordinate is mapped back to the input by the coordinate_transformation_mode
// (half_pixel, pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn; Upsample and
// Resize-10 use asymmetric), then rounded by nearest_mode or interpolated between its two
// neighbours. Linear interpolation is separable, so it runs one dimension at a time, in double,
// rounded to float once at the end. A runtime-only op: training has no upsampling op yet.
// Deliberately absent: cubic mode, tf_crop_and_resize (roi), antialiasing (opset 18), and
// keep_aspect_ratio_policy (18); each is refused at load naming the node.
#pragma once

#include <algorithm>  // std::clamp, std::min
#include <cmath>      // std::floor, std::ceil
#include <cstdint>
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/op_args.hpp>
#include <nanotorch/onnx/ops_support.hpp>

namespace nanotorch::onnx::rt_detail {

struct ResizeMode {
    bool linear = false;
    std::string coord = "half_pixel", nearest = "round_prefer_floor";
};

inline ResizeMode resize_mode(const NodeProto& n, std::int64_t opset) {
    ResizeMode m;
    const std::string mode = attr_str(n, "mode", "nearest");
    m.linear = mode == "linear" || mode == "bilinear";
    if (n.op_type == "Upsample" || opset < 11) {  // Upsample and Resize-10: asymmetric, floor
        m.coord = "asymmetric", m.nearest = "floor";
    } else {
        m.coord = attr_str(n, "coordinate_transformation_mode", "half_pixel");
        m.nearest = attr_str(n, "nearest_mode", "round_prefer_floor");
    }
    return m;
}

inline std::string check_resize(const NodeProto& n, std::int64_t opset) {
    if (n.op_type == "Upsample" && opset >= 10) return "Upsample at opset " + std::to_string(opset) + " (deprecated: Resize)";
    if (n.op_type == "Resize" && opset < 10) return check_since<10>(n, opset);
    const std::string mode = attr_str(n, "mode", "nearest");
    if (mode != "nearest" && mode != "linear" && !(mode == "bilinear" && n.op_type == "Upsample"))
        return "mode '" + mode + "' (nearest and linear only)";
    const ResizeMode m = resize_mode(n, opset);
    for (const char* c : {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"})
        if (m.coord == c) {
            for (const char* r : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"})
                if (m.nearest == r) return "";
            return "nearest_mode '" + m.nearest + "'";
        }
    return "coordinate_transformation_mode '" + m.coord + "'";
}

/// The input coordinate of output index o along a dimension of in -> out elements at `scale`.
inline double resize_source(const std::string& coord, std::int64_t o, std::int64_t in, std::int64_t out, double scale) {
    const double x = static_cast<double>(o);
    // align_corners divides by the unrounded output length in·scale − 1, as the ONNX reference does
    // (with sizes, scale = out/in makes that out − 1).
    const double len = static_cast<double>(in) * scale;
    if (coord == "align_corners") return out == 1 || len == 1.0 ? 0.0 : x * static_cast<double>(in - 1) / (len - 1.0);
    if (coord == "asymmetric") return x / scale;
    if (coord == "tf_half_pixel_for_nn") return (x + 0.5) / scale;
    if (coord == "pytorch_half_pixel") return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    return (x + 0.5) / scale - 0.5;  // half_pixel
}

inline std::int64_t resize_nearest(const std::string& rule, double x, std::int64_t in) {
    const double f = std::floor(x);
    std::int64_t i;
    if (rule == "floor") i = static_cast<std::int64_t>(f);
    else if (rule == "ceil") i = static_cast<std::int64_t>(std::ceil(x));
    else if (x - f == 0.5) i = static_cast<std::int64_t>(rule == "round_prefer_ceil" ? f + 1 : f);
    else i = static_cast<std::int64_t>(std::floor(x + 0.5));
    return std::clamp<std::int64_t>(i, 0, in - 1);
}

inline std::vector<Value> run_resize(const OpArgs& a) {
    const Tensor& x = a.tensor(0);
    const std::size_t r = static_cast<std::size_t>(x.dim());
    const ResizeMode m = resize_mode(a.node, a.opset);
    // Scales: Upsample-7/8 attribute; Upsample-9 and Resize-10 input 1; Resize-11+ input 2, or sizes in input 3.
    std::vector<double> scales;
    Shape out = x.shape();
    const bool upsample_attr = a.node.op_type == "Upsample" && a.opset < 9;
    const std::size_t scales_at = a.node.op_type == "Upsample" || a.opset < 11 ? 1 : 2;
    if (upsample_attr) {
        const AttributeProto* s = typed_attr(a.node, "scales", AttributeType::floats, "FLOATS");
        NANOTORCH_CHECK(s != nullptr, value_error, "Upsample: attribute 'scales' is missing");
        scales.assign(s->floats.begin(), s->floats.end());
    } else if (a.has(scales_at) && a.value(scales_at).numel() > 0) {
        const std::vector<float> s = a.tensor(scales_at).to_vector();
        scales.assign(s.begin(), s.end());
    }
    if (!scales.empty()) {
        NANOTORCH_CHECK(scales.size() == r, value_error, a.node.op_type, ": ", scales.size(), " scales for rank ", r);
        for (std::size_t d = 0; d < r; ++d) {
            NANOTORCH_CHECK(scales[d] > 0 && scales[d] <= double(max_result_elements), value_error, a.node.op_type,
                            ": scale ", scales[d], " is out of range");
            out[d] = static_cast<std::int64_t>(std::floor(static_cast<double>(x.size(static_cast<std::int64_t>(d))) * scales[d]));
        }
    } else {
        NANOTORCH_CHECK(scales_at == 2 && a.has(3), value_error, a.node.op_type, ": neither scales nor sizes is given");
        const Shape sizes = a.ints(3);
        NANOTORCH_CHECK(sizes.size() == r, value_error, "Resize: ", sizes.size(), " sizes for rank ", r);
        for (std::size_t d = 0; d < r; ++d) {
            NANOTORCH_CHECK(sizes[d] >= 0 && sizes[d] <= max_result_elements, value_error, "Resize: size ", sizes[d],
                            " is out of range");
            out[d] = sizes[d];
            scales.push_back(x.size(static_cast<std::int64_t>(d)) == 0
                                 ? 1.0
                                 : static_cast<double>(sizes[d]) / static_cast<double>(x.size(static_cast<std::int64_t>(d))));
        }
    }
    check_result_size(out, a.node.op_type);
    for (std::size_t d = 0; d < r; ++d)
        NANOTORCH_CHECK(x.size(static_cast<std::int64_t>(d)) > 0 || out[d] == 0, shape_error, a.node.op_type,
                        ": cannot resize an empty dimension to ", out[d]);
    // Nothing to compute, and the loops below would still run over the other extents.
    if (shape_numel(out) == 0) return one(zeros(out));
    // One dimension at a time: out along d from the current data along d.
    std::vector<double> data;
    {
        const std::vector<float> f = x.to_vector();
        data.assign(f.begin(), f.end());
    }
    Shape cur = x.shape();
    for (std::size_t d = 0; d < r; ++d) {
        const std::int64_t in = cur[d], on = out[d];
        if (in == on && scales[d] == 1.0) continue;
        std::int64_t outer = 1, inner = 1;
        for (std::size_t k = 0; k < d; ++k) outer *= cur[k];
        for (std::size_t k = d + 1; k < r; ++k) inner *= cur[k];
        std::vector<double> next(static_cast<std::size_t>(outer * on * inner));
        for (std::int64_t o = 0; o < on; ++o) {
            const double src = resize_source(m.coord, o, in, on, scales[d]);
            std::int64_t i0, i1;
            double w = 0;
            if (m.linear) {
                const double c = std::clamp(src, 0.0, static_cast<double>(in - 1));
                i0 = static_cast<std::int64_t>(std::floor(c));
                i1 = std::min(i0 + 1, in - 1);
                w = c - static_cast<double>(i0);
            } else {
                i0 = i1 = resize_nearest(m.nearest, src, in);
            }
            for (std::int64_t p = 0; p < outer; ++p)
                for (std::int64_t q = 0; q < inner; ++q) {
                    const double v0 = data[static_cast<std::size_t>((p * in + i0) * inner + q)];
                    const double v1 = data[static_cast<std::size_t>((p * in + i1) * inner + q)];
                    next[static_cast<std::size_t>((p * on + o) * inner + q)] = w == 0 ? v0 : v0 + (v1 - v0) * w;
                }
        }
        data = std::move(next);
        cur[d] = on;
    }
    return one(tensor(std::vector<float>(data.begin(), data.end()), out));
}

}  // namespace nanotorch::onnx::rt_detail
