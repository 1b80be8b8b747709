// nanotorch/onnx/ops_typed.hpp — the runtime's operators on every element type (onnx/value.hpp):
// the shape arithmetic exporters write (Cast, ConstantOfShape, Expand, Range, Where, Size, Tile,
// Split), comparisons and logic (Equal, Less, Greater, ..., Not/And/Or/Xor), integer and DOUBLE
// arithmetic (Add/Sub/Mul/Div/Neg/Abs/Sign/Mod/Pow and the variadic Max/Min/Sum/Mean), and ArgMax /
// ArgMin.
//
// These are pure runtime ops: training has no int or bool tensors, so there is no nanotorch op to
// call. Where the operands are FLOAT and nanotorch has the op (add, sub, mul, div, neg), the
// runtime calls it, so a float graph computes what training computes. Everything else works on
// row-major element vectors: FLOAT and DOUBLE in double precision (a float result is rounded once;
// for min/max/compare/select that is exact), integers in int64 wrapped back to their width.
// Deliberately absent: float math with a training op (onnx/op_table.hpp) or without one
// (onnx/ops_math.hpp), and element types the Value cannot hold.
#pragma once

#include <algorithm>  // std::max, std::min
#include <cmath>      // std::trunc, std::fmod, std::pow, std::isnan
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>  // std::is_same_v
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/op_args.hpp>
#include <nanotorch/onnx/ops_support.hpp>
#include <nanotorch/ops/elementwise.hpp>
#include <nanotorch/ops/shape.hpp>

namespace nanotorch::onnx::rt_detail {

// ---- element access, whatever the storage ----

/// The elements of v as T (float, double or int64), row-major. FLOAT -> double is exact.
template <class T>
inline std::vector<T> elements(const Value& v) {
    if constexpr (std::is_same_v<T, std::int64_t>) {
        NANOTORCH_CHECK(v.is_int, value_error, "expected an integer tensor, got ", dtype_name(v.type));
        return v.i;
    } else {
        if (v.is_int) return std::vector<T>(v.i.begin(), v.i.end());
        if (v.is_double()) return std::vector<T>(v.d.begin(), v.d.end());
        const std::vector<float> f = v.f.to_vector();
        return std::vector<T>(f.begin(), f.end());
    }
}

/// A Value of element type `type` from computed elements: doubles round to FLOAT or stay DOUBLE;
/// integers are wrapped to the type's width (results of integer arithmetic).
inline Value make_value(DataType type, const std::vector<double>& v, Shape shape) {
    if (type == DataType::float64) return Value::of_doubles(v, std::move(shape));
    NANOTORCH_CHECK(type == DataType::float32, value_error, "internal: doubles for ", dtype_name(type));
    return Value::of(tensor(std::vector<float>(v.begin(), v.end()), shape));
}
inline Value make_value(DataType type, std::vector<std::int64_t> v, Shape shape) {
    for (std::int64_t& x : v) x = wrap_to(type, x);
    return Value::of_ints(std::move(v), std::move(shape), type);
}

/// The Value made of x's elements at flat offsets `src`, with shape `out` (any element type).
inline Value take(const Value& x, const std::vector<std::int64_t>& src, const Shape& out) {
    if (x.is_int) {
        std::vector<std::int64_t> o(src.size());
        for (std::size_t k = 0; k < src.size(); ++k) o[k] = x.i[static_cast<std::size_t>(src[k])];
        return Value::of_ints(std::move(o), out, x.type);
    }
    if (x.is_double()) {
        std::vector<double> o(src.size());
        for (std::size_t k = 0; k < src.size(); ++k) o[k] = x.d[static_cast<std::size_t>(src[k])];
        return Value::of_doubles(std::move(o), out);
    }
    const Tensor c = x.f.contiguous();
    const float* p = c.data_ptr();
    Tensor t = empty(out);
    float* q = t.data_ptr();  // once: Tensor::data_ptr goes through a shared_ptr
    for (std::size_t k = 0; k < src.size(); ++k) q[k] = p[src[k]];
    return Value::of(t);
}

inline void same_type(const Value& x, const Value& y, const std::string& op) {
    NANOTORCH_CHECK(x.type == y.type, value_error, op, ": inputs have element types ", dtype_name(x.type), " and ",
                    dtype_name(y.type), " (they must match)");
}

/// f(a, b) on the broadcast of x and y, computed in double (FLOAT, DOUBLE) or int64 (integers).
/// The result has element type `out` (Same: x's type). `fi`/`fd` take and return the element types.
template <class FI, class FD>
inline Value broadcast_map(const Value& x, const Value& y, const std::string& op, DataType out, FI fi, FD fd) {
    same_type(x, y, op);
    const Shape os = broadcast_shapes(x.shape, y.shape, op.c_str());
    check_result_size(os, op);
    const std::vector<std::int64_t> ox = broadcast_offsets(x.shape, os), oy = broadcast_offsets(y.shape, os);
    if (x.is_int) {
        const std::vector<std::int64_t>& a = x.i;
        const std::vector<std::int64_t>& b = y.i;
        std::vector<std::int64_t> r(ox.size());
        for (std::size_t k = 0; k < r.size(); ++k)
            r[k] = static_cast<std::int64_t>(fi(a[static_cast<std::size_t>(ox[k])], b[static_cast<std::size_t>(oy[k])]));
        return make_value(out, std::move(r), os);
    }
    const std::vector<double> a = elements<double>(x), b = elements<double>(y);
    std::vector<double> r(ox.size());
    for (std::size_t k = 0; k < r.size(); ++k)
        r[k] = static_cast<double>(fd(a[static_cast<std::size_t>(ox[k])], b[static_cast<std::size_t>(oy[k])]));
    if (integer_type(out)) {  // a comparison: 0/1
        std::vector<std::int64_t> ri(r.begin(), r.end());
        return make_value(out, std::move(ri), os);
    }
    return make_value(out, r, os);
}

/// f(a) elementwise, same element type (integers wrapped).
template <class FI, class FD>
inline Value unary_map(const Value& x, FI fi, FD fd) {
    if (x.is_int) {
        std::vector<std::int64_t> r(x.i.size());
        for (std::size_t k = 0; k < r.size(); ++k) r[k] = fi(x.i[k]);
        return make_value(x.type, std::move(r), x.shape);
    }
    std::vector<double> r = elements<double>(x);
    for (double& v : r) v = fd(v);
    return make_value(x.type, r, x.shape);
}

// ---- arithmetic ----

template <int Kind>  // 0 add, 1 sub, 2 mul, 3 div
inline std::vector<Value> run_arith(const OpArgs& a) {
    const Value& x = a.value(0);
    const Value& y = a.value(1);
    same_type(x, y, a.node.op_type);
    if (x.is_float()) {  // nanotorch's ops, exactly as in training
        check_result_size(broadcast_shapes(x.shape, y.shape, a.node.op_type.c_str()), a.node.op_type);
        Tensor (*const fns[])(const Tensor&, const Tensor&) = {&add, &sub, &mul, &div};
        return one(fns[Kind](x.f, y.f));
    }
    auto fi = [&](std::int64_t p, std::int64_t q) -> std::int64_t {
        // Unsigned arithmetic wraps where int64 overflow would be undefined; make_value narrows.
        const auto up = static_cast<std::uint64_t>(p), uq = static_cast<std::uint64_t>(q);
        if (Kind == 0) return static_cast<std::int64_t>(up + uq);
        if (Kind == 1) return static_cast<std::int64_t>(up - uq);
        if (Kind == 2) return static_cast<std::int64_t>(up * uq);
        NANOTORCH_CHECK(q != 0, value_error, a.node.op_type, ": integer division by zero");
        NANOTORCH_CHECK(!(q == -1 && p == std::numeric_limits<std::int64_t>::min()), value_error, a.node.op_type,
                        ": INT64 division overflows");
        return p / q;  // truncates toward zero, as C and the ONNX reference do
    };
    auto fd = [](double p, double q) {
        return Kind == 0 ? p + q : Kind == 1 ? p - q : Kind == 2 ? p * q : p / q;
    };
    return {broadcast_map(x, y, a.node.op_type, x.type, fi, fd)};
}

inline std::vector<Value> run_neg(const OpArgs& a) {
    const Value& x = a.value(0);
    if (x.is_float()) return one(neg(x.f));
    return {unary_map(x, [](std::int64_t v) { return static_cast<std::int64_t>(0 - static_cast<std::uint64_t>(v)); },
                      [](double v) { return -v; })};
}

/// Abs and Sign on any numeric type (no training op: they are not differentiable at 0).
template <bool Sign>
inline std::vector<Value> run_abs_sign(const OpArgs& a) {
    const Value& x = a.value(0);
    auto fi = [](std::int64_t v) -> std::int64_t { return Sign ? (v > 0) - (v < 0) : v < 0 ? -v : v; };
    auto fd = [](double v) { return Sign ? (v > 0 ? 1.0 : v < 0 ? -1.0 : v) : std::fabs(v); };  // Sign(NaN) = NaN
    return {unary_map(x, fi, fd)};
}

/// Mod: integer remainder with the divisor's sign (Python's %) unless fmod = 1 (C's fmod); floats
/// need fmod = 1.
inline std::vector<Value> run_mod(const OpArgs& a) {
    const Value& x = a.value(0);
    const Value& y = a.value(1);
    const bool fmod = attr_int(a.node, "fmod", 0) != 0;
    NANOTORCH_CHECK(fmod || x.is_int, value_error, "Mod: fmod = 0 on ", dtype_name(x.type),
                    " (floating-point Mod needs fmod = 1)");
    auto fi = [&](std::int64_t p, std::int64_t q) -> std::int64_t {
        NANOTORCH_CHECK(q != 0, value_error, "Mod: integer division by zero");
        if (q == -1) return 0;  // also avoids INT64_MIN % -1
        const std::int64_t r = p % q;
        return !fmod && r != 0 && ((r < 0) != (q < 0)) ? r + q : r;
    };
    return {broadcast_map(x, y, "Mod", x.type, fi, [](double p, double q) { return std::fmod(p, q); })};
}

/// Pow with any numeric base and exponent types; the result has the base's type. A FLOAT base
/// with a one-element FLOAT exponent is nanotorch::pow (what the exporter emits for x.pow(p)).
inline std::vector<Value> run_pow(const OpArgs& a) {
    const Value& x = a.value(0);
    const Value& e = a.value(1);
    const Shape s = broadcast_shapes(x.shape, e.shape, "Pow");
    check_result_size(s, "Pow");
    if (x.is_float() && e.is_float()) {
        if (e.numel() == 1 && s == x.shape) return one(nanotorch::pow(x.f, e.f.to_vector()[0]));
        return one(ops::detail::map_binary_same(ops::detail::expand_copy(x.f, s), ops::detail::expand_copy(e.f, s),
                                                [](float b, float p) { return std::pow(b, p); }));
    }
    // Mixed types: compute in double on the broadcast, convert to the base's type.
    const std::vector<std::int64_t> ox = broadcast_offsets(x.shape, s), oe = broadcast_offsets(e.shape, s);
    const std::vector<double> xb = elements<double>(x), eb = elements<double>(e);
    std::vector<double> r(ox.size());
    for (std::size_t k = 0; k < r.size(); ++k)
        r[k] = std::pow(xb[static_cast<std::size_t>(ox[k])], eb[static_cast<std::size_t>(oe[k])]);
    if (!x.is_int) {
        if (x.is_float()) {  // float pow, as the reference computes it in the base's precision
            std::vector<float> f(r.size());
            for (std::size_t k = 0; k < r.size(); ++k)
                f[k] = std::pow(static_cast<float>(xb[static_cast<std::size_t>(ox[k])]),
                                static_cast<float>(eb[static_cast<std::size_t>(oe[k])]));
            return one(tensor(f, s));
        }
        return {Value::of_doubles(std::move(r), s)};
    }
    std::vector<std::int64_t> ri(r.size());
    for (std::size_t k = 0; k < r.size(); ++k) {
        NANOTORCH_CHECK(std::fabs(r[k]) < 9.2e18, value_error, "Pow: integer result out of range");
        ri[k] = static_cast<std::int64_t>(r[k]);
    }
    return {make_value(x.type, std::move(ri), s)};
}

/// Variadic Max / Min / Sum / Mean with multidirectional broadcasting (opset 8+; before it the
/// inputs must have equal shapes, which broadcasting accepts too). FLOAT Sum and Mean run
/// nanotorch's add and div; Max/Min propagate NaN, as NumPy's maximum does.
template <int Kind>  // 0 max, 1 min, 2 sum, 3 mean
inline std::vector<Value> run_variadic(const OpArgs& a) {
    Value acc = a.value(0);
    const std::string& op = a.node.op_type;
    NANOTORCH_CHECK(Kind != 3 || !acc.is_int, value_error, "Mean on ", dtype_name(acc.type), " (FLOAT or DOUBLE only)");
    for (std::size_t k = 1; k < a.in.size(); ++k) {
        const Value& y = a.value(k);
        if (Kind >= 2 && acc.is_float()) {
            same_type(acc, y, op);
            check_result_size(broadcast_shapes(acc.shape, y.shape, op.c_str()), op);
            acc = Value::of(add(acc.f, y.f));
            continue;
        }
        auto fi = [](std::int64_t p, std::int64_t q) -> std::int64_t {
            return Kind == 0 ? std::max(p, q) : Kind == 1 ? std::min(p, q)
                                                          : static_cast<std::int64_t>(std::uint64_t(p) + std::uint64_t(q));
        };
        auto fd = [](double p, double q) {
            if (Kind >= 2) return p + q;
            if (std::isnan(p) || std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
            return Kind == 0 ? std::max(p, q) : std::min(p, q);
        };
        acc = broadcast_map(acc, y, op, acc.type, fi, fd);
    }
    if (Kind == 3) {
        const auto n = static_cast<double>(a.in.size());
        if (acc.is_float()) return one(div(acc.f, scalar_tensor(static_cast<float>(n))));
        for (double& v : acc.d) v /= n;
    }
    return {acc};
}

// ---- comparisons and logic ----

template <int Kind>  // 0 ==, 1 <, 2 >, 3 <=, 4 >=
inline std::vector<Value> run_compare(const OpArgs& a) {
    auto cmp = [](auto p, auto q) {
        return Kind == 0 ? p == q : Kind == 1 ? p < q : Kind == 2 ? p > q : Kind == 3 ? p <= q : p >= q;
    };
    return {broadcast_map(a.value(0), a.value(1), a.node.op_type, DataType::boolean,
                          [&](std::int64_t p, std::int64_t q) { return cmp(p, q); },
                          [&](double p, double q) { return cmp(p, q); })};
}

inline const Value& bool_input(const OpArgs& a, std::size_t k) {
    const Value& v = a.value(k);
    NANOTORCH_CHECK(v.type == DataType::boolean, value_error, a.node.op_type, ": input #", k, " must be BOOL, got ",
                    dtype_name(v.type));
    return v;
}

template <int Kind>  // 0 and, 1 or, 2 xor
inline std::vector<Value> run_logic(const OpArgs& a) {
    auto f = [](std::int64_t p, std::int64_t q) -> std::int64_t {
        return Kind == 0 ? (p && q) : Kind == 1 ? (p || q) : (p != q);
    };
    return {broadcast_map(bool_input(a, 0), bool_input(a, 1), a.node.op_type, DataType::boolean, f,
                          [](double, double) { return 0.0; })};
}

inline std::vector<Value> run_not(const OpArgs& a) {
    const Value& x = bool_input(a, 0);
    std::vector<std::int64_t> r(x.i.size());
    for (std::size_t k = 0; k < r.size(); ++k) r[k] = !x.i[k];
    return {Value::of_ints(std::move(r), x.shape, DataType::boolean)};
}

/// Where(cond, x, y): x where cond, else y, all three broadcast.
inline std::vector<Value> run_where(const OpArgs& a) {
    const Value& c = bool_input(a, 0);
    const Value& x = a.value(1);
    const Value& y = a.value(2);
    same_type(x, y, "Where");
    const Shape os = broadcast_shapes(broadcast_shapes(c.shape, x.shape, "Where"), y.shape, "Where");
    check_result_size(os, "Where");
    const std::vector<std::int64_t> oc = broadcast_offsets(c.shape, os), ox = broadcast_offsets(x.shape, os),
                                    oy = broadcast_offsets(y.shape, os);
    // Concatenate x and y, then pick from the pair: one take() for every element type.
    const Shape flat{x.numel()};
    std::vector<std::int64_t> src(oc.size());
    for (std::size_t k = 0; k < src.size(); ++k)
        src[k] = c.i[static_cast<std::size_t>(oc[k])] ? ox[k] : x.numel() + oy[k];
    const Value xs = apply_layout({&x}, [&](const std::vector<Tensor>& t) { return reshape(t[0], flat); });
    const Value ys = apply_layout({&y}, [&](const std::vector<Tensor>& t) { return reshape(t[0], {y.numel()}); });
    const Value both = apply_layout({&xs, &ys}, [](const std::vector<Tensor>& t) { return cat(t, 0); });
    return {take(both, src, os)};
}

// ---- Cast ----

/// x converted to `to`: float -> integer truncates toward zero (NaN -> 0, out of range
/// saturates to int64 then wraps, where C++ would be undefined), anything -> BOOL is x != 0.
inline Value cast_value(const Value& x, DataType to) {
    NANOTORCH_CHECK(runtime_type(static_cast<std::int32_t>(to)), unsupported_error, "Cast to ", dtype_name(to));
    if (x.type == to) return x;
    if (integer_type(to)) {
        if (x.is_int) return make_value(to, x.i, x.shape);
        const std::vector<double> v = elements<double>(x);
        std::vector<std::int64_t> r(v.size());
        for (std::size_t k = 0; k < r.size(); ++k) {
            const double t = std::trunc(v[k]);
            r[k] = to == DataType::boolean ? (v[k] != 0.0)
                   : std::isnan(t)         ? 0
                   : t >= 9.2233720368547758e18 ? std::numeric_limits<std::int64_t>::max()
                   : t <= -9.2233720368547758e18 ? std::numeric_limits<std::int64_t>::min()
                                                 : static_cast<std::int64_t>(t);
        }
        return make_value(to, std::move(r), x.shape);
    }
    return make_value(to, elements<double>(x), x.shape);
}

inline DataType cast_target(const NodeProto& n, std::int64_t opset) {
    if (opset < 6) {  // Cast-1 names the type as a string ("FLOAT", "INT64", ...)
        const std::string s = attr_str(n, "to", "");
        for (std::int32_t t = 1; t <= 16; ++t)
            if (dtype_name(t) == s) return static_cast<DataType>(t);
        throw value_error("Cast: 'to' = '" + s + "' names no element type");
    }
    const AttributeProto* to = typed_attr(n, "to", AttributeType::int_, "an INT");
    NANOTORCH_CHECK(to != nullptr, value_error, "Cast: attribute 'to' is missing");
    NANOTORCH_CHECK(to->i >= 0 && to->i <= 100, value_error, "Cast: 'to' = ", to->i, " is no element type");
    return static_cast<DataType>(to->i);
}

inline std::string check_cast(const NodeProto& n, std::int64_t opset) {
    const DataType to = cast_target(n, opset);
    return runtime_type(static_cast<std::int32_t>(to)) ? "" : "cast to " + dtype_name(to);
}

inline std::vector<Value> run_cast(const OpArgs& a) { return {cast_value(a.value(0), cast_target(a.node, a.opset))}; }
inline std::vector<Value> run_cast_like(const OpArgs& a) { return {cast_value(a.value(0), a.value(1).type)}; }

// ---- shape arithmetic ----

/// A shape given as an int64 input: every extent in 0..2^30, the result bounded.
inline Shape shape_input(const OpArgs& a, std::size_t k, const char* op) {
    const Shape s = a.ints(k);
    NANOTORCH_CHECK(a.value(k).shape.size() <= 1, shape_error, op, ": the shape input must be 1-D, got shape ",
                    shape_str(a.value(k).shape));
    for (const std::int64_t d : s)
        NANOTORCH_CHECK(d >= 0 && d <= max_result_elements, value_error, op, ": extent ", d, " in shape ", shape_str(s),
                        " is out of range");
    return s;
}

inline std::vector<Value> run_constant_of_shape(const OpArgs& a) {
    const Shape s = shape_input(a, 0, "ConstantOfShape");
    check_result_size(s, "ConstantOfShape");
    Value fill = Value::of(tensor(std::vector<float>{0.0f}, {1}));
    if (const AttributeProto* v = find_attr(a.node, "value")) {
        NANOTORCH_CHECK(v->t.size() == 1, value_error, "ConstantOfShape: attribute 'value' holds no tensor");
        fill = value_from_proto(v->t[0]);
        NANOTORCH_CHECK(fill.numel() == 1, value_error, "ConstantOfShape: 'value' must hold one element, got ",
                        fill.numel());
    }
    return {take(fill, std::vector<std::int64_t>(static_cast<std::size_t>(shape_numel(s)), 0), s)};
}

inline std::string check_constant_of_shape(const NodeProto& n, std::int64_t opset) {
    if (opset < 9) return check_since<9>(n, opset);
    const AttributeProto* v = find_attr(n, "value");
    if (v && v->t.size() == 1 && !runtime_type(v->t[0].data_type))
        return "value of element type " + dtype_name(v->t[0].data_type);
    return "";
}

inline std::vector<Value> run_expand(const OpArgs& a) {
    const Value& x = a.value(0);
    const Shape target = a.ints(1);
    for (const std::int64_t d : target)
        NANOTORCH_CHECK(d >= 0 && d <= max_result_elements, value_error, "Expand: extent ", d, " is out of range");
    const Shape os = broadcast_shapes(x.shape, target, "Expand");
    check_result_size(os, "Expand");
    return {take(x, broadcast_offsets(x.shape, os), os)};
}

inline std::vector<Value> run_range(const OpArgs& a) {
    const Value& s = a.value(0);
    const Value& l = a.value(1);
    const Value& d = a.value(2);
    same_type(s, l, "Range");
    same_type(s, d, "Range");
    NANOTORCH_CHECK(s.numel() == 1 && l.numel() == 1 && d.numel() == 1, shape_error,
                    "Range: start, limit and delta must be scalars");
    if (s.is_int) {
        const std::int64_t b = s.i[0], e = l.i[0], st = d.i[0];
        NANOTORCH_CHECK(st != 0, value_error, "Range: delta is 0");
        const double n = std::ceil((static_cast<double>(e) - static_cast<double>(b)) / static_cast<double>(st));
        NANOTORCH_CHECK(n <= static_cast<double>(max_result_elements), value_error, "Range: more than 2^30 elements");
        std::vector<std::int64_t> r(static_cast<std::size_t>(std::max(0.0, n)));
        for (std::size_t k = 0; k < r.size(); ++k) r[k] = b + static_cast<std::int64_t>(k) * st;
        const auto len = static_cast<std::int64_t>(r.size());
        return {make_value(s.type, std::move(r), {len})};
    }
    const double b = elements<double>(s)[0], e = elements<double>(l)[0], st = elements<double>(d)[0];
    NANOTORCH_CHECK(st != 0 && std::isfinite(b) && std::isfinite(e) && std::isfinite(st), value_error,
                    "Range: delta is 0 or a bound is not finite");
    const double n = std::ceil((e - b) / st);
    NANOTORCH_CHECK(n <= static_cast<double>(max_result_elements), value_error, "Range: more than 2^30 elements");
    const auto len = static_cast<std::size_t>(std::max(0.0, n));
    if (s.is_float()) {  // the reference accumulates in the input's precision: start + k*delta in float
        std::vector<float> r(len);
        for (std::size_t k = 0; k < len; ++k) r[k] = static_cast<float>(b) + static_cast<float>(k) * static_cast<float>(st);
        return one(tensor(r, {static_cast<std::int64_t>(len)}));
    }
    std::vector<double> r(len);
    for (std::size_t k = 0; k < len; ++k) r[k] = b + static_cast<double>(k) * st;
    return {Value::of_doubles(std::move(r), {static_cast<std::int64_t>(len)})};
}

inline std::vector<Value> run_size(const OpArgs& a) { return {Value::of_ints({a.value(0).numel()}, {})}; }

inline std::vector<Value> run_tile(const OpArgs& a) {
    const Value& x = a.value(0);
    const Shape rep = a.ints(1);
    NANOTORCH_CHECK(rep.size() == x.shape.size(), value_error, "Tile: ", rep.size(), " repeats for an input of rank ",
                    x.shape.size());
    Shape os(rep.size());
    for (std::size_t d = 0; d < rep.size(); ++d) {
        NANOTORCH_CHECK(rep[d] >= 0 && rep[d] <= max_result_elements, value_error, "Tile: repeat ", rep[d],
                        " is out of range");
        os[d] = x.shape[d] * rep[d];  // both <= 2^30: no overflow
    }
    check_result_size(os, "Tile");
    const Shape ist = contiguous_strides(x.shape);
    std::vector<std::int64_t> src(static_cast<std::size_t>(shape_numel(os)));
    if (src.empty() || os.empty()) return {take(x, std::vector<std::int64_t>(src.size(), 0), os)};
    // Row by row over the last dim: the row's source offset once, then the source row repeated
    // (a counter, not a modulo per element: hostile repeats make this loop long).
    const std::size_t last = os.size() - 1;
    const std::int64_t row_in = x.shape[last], row_out = os[last];
    std::vector<std::int64_t> idx(last, 0);
    for (std::size_t k = 0; k < src.size(); k += static_cast<std::size_t>(row_out)) {
        std::int64_t base = 0;
        for (std::size_t d = 0; d < last; ++d) base += (idx[d] % x.shape[d]) * ist[d];
        for (std::int64_t j = 0, i = 0; j < row_out; ++j) {
            src[k + static_cast<std::size_t>(j)] = base + i;
            if (++i == row_in) i = 0;
        }
        for (std::size_t d = last; d-- > 0;) {
            if (++idx[d] < os[d]) break;
            idx[d] = 0;
        }
    }
    return {take(x, src, os)};
}

/// Split along `axis` into the sizes of the `split` attribute (before 13) or input, or equal parts.
inline std::vector<Value> run_split(const OpArgs& a) {
    const Value& x = a.value(0);
    const std::int64_t r = static_cast<std::int64_t>(x.shape.size());
    const std::int64_t axis = wrap_axis(attr_int(a.node, "axis", 0), r, "Split: axis");
    const std::int64_t n = x.shape[static_cast<std::size_t>(axis)];
    const auto outputs = static_cast<std::int64_t>(a.node.output.size());
    Shape sizes = a.opset >= 13 ? (a.has(1) ? a.ints(1) : Shape{}) : attr_ints(a.node, "split");
    if (sizes.empty()) {
        NANOTORCH_CHECK(outputs > 0 && n % outputs == 0, value_error, "Split: dimension ", axis, " of size ", n,
                        " does not split into ", outputs, " equal parts");
        sizes.assign(static_cast<std::size_t>(outputs), n / outputs);
    }
    NANOTORCH_CHECK(static_cast<std::int64_t>(sizes.size()) == outputs, value_error, "Split: ", sizes.size(),
                    " sizes for ", outputs, " outputs");
    std::int64_t total = 0;
    for (const std::int64_t s : sizes) {
        NANOTORCH_CHECK(s >= 0 && s <= n, value_error, "Split: size ", s, " is out of range");
        total += s;
    }
    NANOTORCH_CHECK(total == n, value_error, "Split: sizes ", shape_str(sizes), " do not add up to ", n);
    std::vector<Value> out;
    std::int64_t start = 0;
    for (const std::int64_t s : sizes) {
        out.push_back(apply_layout({&x}, [&](const std::vector<Tensor>& t) { return narrow(t[0], axis, start, s); }));
        start += s;
    }
    return out;
}

// ---- ArgMax / ArgMin ----

template <bool Max>
inline std::vector<Value> run_arg_extreme(const OpArgs& a) {
    const Value& x = a.value(0);
    const std::int64_t r = static_cast<std::int64_t>(x.shape.size());
    const std::int64_t axis = wrap_axis(attr_int(a.node, "axis", 0), std::max<std::int64_t>(r, 1), "axis");
    const bool keep = attr_int(a.node, "keepdims", 1) != 0;
    const bool last = a.opset >= 12 && attr_int(a.node, "select_last_index", 0) != 0;
    NANOTORCH_CHECK(r > 0, shape_error, a.node.op_type, " of a scalar");
    const std::int64_t n = x.shape[static_cast<std::size_t>(axis)];
    NANOTORCH_CHECK(n > 0, shape_error, a.node.op_type, ": axis ", axis, " is empty");
    std::int64_t outer = 1, inner = 1;
    for (std::int64_t d = 0; d < r; ++d) (d < axis ? outer : inner) *= d == axis ? 1 : x.shape[static_cast<std::size_t>(d)];
    const std::vector<double> v = elements<double>(x);  // int64 beyond 2^53 compares approximately
    std::vector<std::int64_t> out(static_cast<std::size_t>(outer * inner));
    for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t i = 0; i < inner; ++i) {
            std::int64_t best = 0;
            double bv = v[static_cast<std::size_t>(o * n * inner + i)];
            for (std::int64_t k = 1; k < n; ++k) {
                const double c = v[static_cast<std::size_t>((o * n + k) * inner + i)];
                const bool better = Max ? (last ? c >= bv : c > bv) : (last ? c <= bv : c < bv);
                if (better) best = k, bv = c;
            }
            out[static_cast<std::size_t>(o * inner + i)] = best;
        }
    Shape os = x.shape;
    if (keep) os[static_cast<std::size_t>(axis)] = 1;
    else os.erase(os.begin() + axis);
    return {Value::of_ints(std::move(out), os)};
}

}  // namespace nanotorch::onnx::rt_detail
