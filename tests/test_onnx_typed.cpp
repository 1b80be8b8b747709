// Tests for the runtime's element types (onnx/value.hpp) and the operators added with them
// (onnx/ops_typed.hpp, onnx/ops_math.hpp): one hand-built node per case, values worked out by hand.
// Integer, BOOL and selection results are exact; float results are exact where the value is
// representable and otherwise within 1e-6 relative (one rounding of a libm function or a
// division in float32, ~6e-8 each). The ONNX backend node tests of the same operators run in the
// onnx_conformance ctest; these cases pin what that data does not: wrapping, truncation, opset
// forms, attribute defaults and the errors for malformed nodes and absurd sizes.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nanotorch/nanotorch.hpp>
#include <nanotorch/onnx/runtime.hpp>

namespace nt = nanotorch;
namespace onnx = nanotorch::onnx;
using nt::Shape;
using onnx::DataType;
using onnx::Value;

namespace {

onnx::AttributeProto attr_i(const std::string& name, std::int64_t v) {
    onnx::AttributeProto a;
    a.name = name, a.type = onnx::AttributeType::int_, a.i = v;
    return a;
}
onnx::AttributeProto attr_f(const std::string& name, float v) {
    onnx::AttributeProto a;
    a.name = name, a.type = onnx::AttributeType::float_, a.f = v;
    return a;
}
onnx::AttributeProto attr_ints(const std::string& name, std::vector<std::int64_t> v) {
    onnx::AttributeProto a;
    a.name = name, a.type = onnx::AttributeType::ints, a.ints = std::move(v);
    return a;
}

onnx::ValueInfoProto info(const std::string& name, DataType t) {
    onnx::ValueInfoProto v;
    v.name = name, v.elem_type = static_cast<std::int32_t>(t);
    return v;
}

// One node `op` reading x0, x1, ... (bound from `ins`), writing y0, y1, ... (`outs` outputs).
struct OneNode {
    std::string op;
    std::vector<Value> ins;
    std::vector<onnx::AttributeProto> attrs = {};
    std::int64_t opset = 17;
    std::size_t outs = 1;
    std::vector<std::string> input_names = {};  // "" omits an optional input
};

onnx::ModelProto model_of(const OneNode& c) {
    onnx::ModelProto m;
    m.ir_version = 8;
    m.opset_import.push_back({"", c.opset});
    onnx::NodeProto n;
    n.op_type = c.op, n.name = "n", n.attribute = c.attrs;
    for (std::size_t k = 0; k < c.ins.size(); ++k) {
        n.input.push_back("x" + std::to_string(k));
        m.graph.input.push_back(info(n.input.back(), c.ins[k].type));
    }
    for (std::size_t k = 0; k < c.outs; ++k) {
        n.output.push_back("y" + std::to_string(k));
        m.graph.output.push_back(info(n.output.back(), DataType::float32));  // outputs' types are not checked
    }
    m.graph.node.push_back(n);
    return m;
}

std::vector<Value> run(const OneNode& c) {
    const onnx::Runtime rt(model_of(c));
    onnx::NamedValues in;
    for (std::size_t k = 0; k < c.ins.size(); ++k) in.emplace_back("x" + std::to_string(k), c.ins[k]);
    std::vector<Value> out;
    for (auto& [name, v] : rt.run_values(in)) out.push_back(v);
    return out;
}
Value run1(const OneNode& c) { return run(c).at(0); }

Value ints(std::vector<std::int64_t> v, Shape s = {}, DataType t = DataType::int64) {
    if (s.empty() && v.size() != 1) s = {static_cast<std::int64_t>(v.size())};
    return Value::of_ints(std::move(v), s, t);
}
Value floats(std::vector<float> v, Shape s = {}) {
    if (s.empty()) s = {static_cast<std::int64_t>(v.size())};
    return Value::of(nt::tensor(v, s));
}
Value doubles(std::vector<double> v) {
    const Shape s{static_cast<std::int64_t>(v.size())};
    return Value::of_doubles(std::move(v), s);
}
Value bools(std::vector<std::int64_t> v, Shape s = {}) { return ints(std::move(v), std::move(s), DataType::boolean); }

void check_ints(const Value& v, DataType t, const Shape& s, const std::vector<std::int64_t>& want) {
    CHECK(onnx::dtype_name(v.type) == onnx::dtype_name(t));
    CHECK(v.shape == s);
    REQUIRE(v.is_int);
    CHECK(v.i == want);
}
// tol: relative to max(1, |want|); 0 = exact.
void check_floats(const Value& v, const Shape& s, const std::vector<float>& want, float tol = 0.0f) {
    REQUIRE(v.is_float());
    CHECK(v.shape == s);
    const std::vector<float> got = v.f.to_vector();
    REQUIRE(got.size() == want.size());
    for (std::size_t k = 0; k < want.size(); ++k) {
        CAPTURE(k);
        if (std::isnan(want[k])) CHECK(std::isnan(got[k]));
        else if (tol == 0.0f) CHECK(got[k] == want[k]);
        else CHECK(std::fabs(got[k] - want[k]) <= tol * std::max(1.0f, std::fabs(want[k])));
    }
}

std::string error_of(const OneNode& c) {
    try {
        run(c);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("Cast and CastLike between FLOAT, DOUBLE, the integer types and BOOL: truncation, wrapping, != 0") {
    auto cast = [](Value x, DataType to) {
        return run1({"Cast", {std::move(x)}, {attr_i("to", static_cast<std::int64_t>(to))}});
    };
    // float -> integer truncates toward zero; NaN becomes 0; integers wrap to the target width.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    check_ints(cast(floats({-2.7f, -0.5f, 0.5f, 2.7f, nan}), DataType::int64), DataType::int64, {5}, {-2, 0, 0, 2, 0});
    check_ints(cast(ints({255, 256, -1, 300}), DataType::uint8), DataType::uint8, {4}, {255, 0, 255, 44});
    check_ints(cast(ints({127, 128, -129}), DataType::int8), DataType::int8, {3}, {127, -128, 127});
    check_ints(cast(ints({std::int64_t(1) << 31}), DataType::int32), DataType::int32, {}, {-(std::int64_t(1) << 31)});
    check_ints(cast(floats({0.0f, -0.0f, 0.25f, nan}), DataType::boolean), DataType::boolean, {4}, {0, 0, 1, 1});
    check_floats(cast(bools({1, 0}), DataType::float32), {2}, {1, 0});
    // DOUBLE keeps what FLOAT cannot: 0.1 and 2^53 + 1 survive a DOUBLE -> INT64 round trip.
    const Value d = cast(ints({(std::int64_t(1) << 53) - 1}), DataType::float64);
    REQUIRE(d.is_double());
    CHECK(d.d[0] == 9007199254740991.0);
    check_floats(cast(doubles({0.1, 1e300}), DataType::float32), {2}, {0.1f, std::numeric_limits<float>::infinity()});
    // Opset 1-5: 'to' is a string.
    onnx::AttributeProto to_s;
    to_s.name = "to", to_s.type = onnx::AttributeType::string, to_s.s = "INT32";
    check_ints(run1({"Cast", {floats({3.9f})}, {to_s}, 5}), DataType::int32, {1}, {3});
    // CastLike takes the type of its second input.
    check_ints(run1({"CastLike", {floats({-1.5f, 7.0f}), ints({0}, {1}, DataType::int16)}}), DataType::int16, {2},
               {-1, 7});
    // A target nanotorch does not represent is refused at load, naming the node.
    CHECK(contains(error_of({"Cast", {floats({1})}, {attr_i("to", 10)}}), "cast to FLOAT16"));
    CHECK(contains(error_of({"Cast", {floats({1})}, {attr_i("to", 8)}}), "cast to STRING"));
}

TEST_CASE("an int64 shape subgraph as exporters write it: Shape, Size, ConstantOfShape, Expand, Range, Where") {
    // ConstantOfShape: zeros of FLOAT by default, or the value attribute's element type.
    check_floats(run1({"ConstantOfShape", {ints({2, 3})}}), {2, 3}, {0, 0, 0, 0, 0, 0});
    onnx::AttributeProto value;
    value.name = "value", value.type = onnx::AttributeType::tensor;
    const std::int64_t seven = 7;
    value.t.push_back(onnx::make_int64_tensor("v", {1}, &seven));
    check_ints(run1({"ConstantOfShape", {ints({3})}, {value}}), DataType::int64, {3}, {7, 7, 7});
    check_ints(run1({"ConstantOfShape", {ints({0})}, {value}}), DataType::int64, {0}, {});
    // Expand broadcasts both ways: [3, 1] to [2, 1, 4] gives [2, 3, 4].
    const Value e = run1({"Expand", {ints({1, 2, 3}, {3, 1}), ints({2, 1, 4})}});
    CHECK(e.shape == Shape{2, 3, 4});
    CHECK(e.i[0] == 1);
    CHECK(e.i[4] == 2);
    CHECK(e.i[12 + 11] == 3);
    check_floats(run1({"Expand", {floats({5}), ints({2})}}), {2}, {5, 5});
    // Range on int64, int32 (negative delta) and FLOAT.
    check_ints(run1({"Range", {ints({1}), ints({10}), ints({3})}}), DataType::int64, {3}, {1, 4, 7});
    check_ints(run1({"Range", {ints({10}, {}, DataType::int32), ints({6}, {}, DataType::int32),
                               ints({-3}, {}, DataType::int32)}}),
               DataType::int32, {2}, {10, 7});
    check_floats(run1({"Range", {floats({1}, {}), floats({2}, {}), floats({0.25f}, {})}}), {4}, {1, 1.25f, 1.5f, 1.75f});
    check_ints(run1({"Range", {ints({5}), ints({1}), ints({1})}}), DataType::int64, {0}, {});
    // Where broadcasts condition, x and y; any element type for x and y.
    check_ints(run1({"Where", {bools({1, 0, 1}), ints({1, 2, 3}), ints({-1}, {1})}}), DataType::int64, {3}, {1, -1, 3});
    check_floats(run1({"Where", {bools({1, 0}, {2, 1}), floats({1, 2}), floats({9})}}), {2, 2}, {1, 2, 9, 9});
    // Size counts elements; Shape then Gather/Equal is the usual pattern.
    check_ints(run1({"Size", {floats({1, 2, 3, 4, 5, 6}, {2, 3})}}), DataType::int64, {}, {6});
    check_ints(run1({"Shape", {floats({1, 2, 3, 4, 5, 6}, {2, 3})}}), DataType::int64, {2}, {2, 3});
}

TEST_CASE("comparisons and logic broadcast and return BOOL: Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or, Xor, Not") {
    const Value a = floats({1, 2, 3}), b = floats({2}, {1});
    check_ints(run1({"Equal", {a, b}}), DataType::boolean, {3}, {0, 1, 0});
    check_ints(run1({"Less", {a, b}}), DataType::boolean, {3}, {1, 0, 0});
    check_ints(run1({"Greater", {a, b}}), DataType::boolean, {3}, {0, 0, 1});
    check_ints(run1({"LessOrEqual", {a, b}}), DataType::boolean, {3}, {1, 1, 0});
    check_ints(run1({"GreaterOrEqual", {a, b}}), DataType::boolean, {3}, {0, 1, 1});
    // int64 compares exactly beyond 2^53, where doubles would not.
    const std::int64_t big = (std::int64_t(1) << 53) + 1;
    check_ints(run1({"Equal", {ints({big}), ints({big - 1})}}), DataType::boolean, {}, {0});
    const Value p = bools({1, 1, 0, 0}, {2, 2}), q = bools({1, 0}, {2});
    check_ints(run1({"And", {p, q}}), DataType::boolean, {2, 2}, {1, 0, 0, 0});
    check_ints(run1({"Or", {p, q}}), DataType::boolean, {2, 2}, {1, 1, 1, 0});
    check_ints(run1({"Xor", {p, q}}), DataType::boolean, {2, 2}, {0, 1, 1, 0});
    check_ints(run1({"Not", {q}}), DataType::boolean, {2}, {0, 1});
    // Mixed types and non-BOOL logic are malformed, and named.
    CHECK(contains(error_of({"Equal", {a, ints({1})}}), "element types FLOAT and INT64"));
    CHECK(contains(error_of({"And", {floats({1}), q}}), "must be BOOL, got FLOAT"));
}

TEST_CASE("integer and DOUBLE arithmetic keep their type: Add, Sub, Mul, Div, Neg, Abs, Sign, Mod, Pow, Clip") {
    const auto u8 = DataType::uint8;
    check_ints(run1({"Add", {ints({250, 3}, {2}, u8), ints({10, 4}, {2}, u8)}}), u8, {2}, {4, 7});  // wraps mod 256
    check_ints(run1({"Sub", {ints({1}, {1}, u8), ints({2}, {1}, u8)}}), u8, {1}, {255});
    check_ints(run1({"Mul", {ints({100}, {1}, DataType::int8), ints({2}, {1}, DataType::int8)}}), DataType::int8, {1},
               {-56});
    check_ints(run1({"Div", {ints({7, -7}), ints({2})}}), DataType::int64, {2}, {3, -3});  // truncates
    CHECK(contains(error_of({"Div", {ints({1}), ints({0})}}), "integer division by zero"));
    const Value dd = run1({"Add", {doubles({0.1}), doubles({0.2})}});
    REQUIRE(dd.is_double());
    CHECK(dd.d[0] == 0.1 + 0.2);
    check_ints(run1({"Neg", {ints({-128, 5}, {2}, DataType::int8)}}), DataType::int8, {2}, {-128, -5});
    check_ints(run1({"Abs", {ints({-3, 4}, {2}, DataType::int32)}}), DataType::int32, {2}, {3, 4});
    check_floats(run1({"Abs", {floats({-1.5f, 0, 2})}}), {3}, {1.5f, 0, 2});
    check_floats(run1({"Sign", {floats({-1.5f, 0, 2})}}), {3}, {-1, 0, 1});
    // Mod: Python's sign rule by default, C's fmod with fmod = 1 (required for floats).
    check_ints(run1({"Mod", {ints({-7, 7}), ints({3, -3})}}), DataType::int64, {2}, {2, -2});
    check_ints(run1({"Mod", {ints({-7, 7}), ints({3, -3})}, {attr_i("fmod", 1)}}), DataType::int64, {2}, {-1, 1});
    check_floats(run1({"Mod", {floats({-7.5f}), floats({2})}, {attr_i("fmod", 1)}}), {1}, {-1.5f});
    CHECK(contains(error_of({"Mod", {floats({1}), floats({2})}}), "fmod = 1"));
    // Pow: the result has the base's type.
    check_ints(run1({"Pow", {ints({2, 3}), floats({3, 2})}}), DataType::int64, {2}, {8, 9});
    // Clip on integers (exporters clamp int64 indices) with bounds of the same type; either optional.
    check_ints(run1({"Clip", {ints({-5, 0, 5}), ints({-1}, {}), ints({3}, {})}}), DataType::int64, {3}, {-1, 0, 3});
    onnx::ModelProto clip = model_of({"Clip", {ints({-128, 100}, {2}, DataType::int8), ints({50}, {}, DataType::int8)}});
    clip.graph.node[0].input = {"x0", "", "x1"};  // no lower bound
    const auto clipped = onnx::Runtime(clip).run_values({{"x0", ints({-128, 100}, {2}, DataType::int8)},
                                                           {"x1", ints({50}, {}, DataType::int8)}});
    check_ints(clipped[0].second, DataType::int8, {2}, {-128, 50});
    check_ints(run1({"Clip", {ints({-5, 5}), ints({0}, {})}}), DataType::int64, {2}, {0, 5});  // no upper bound
    CHECK(contains(error_of({"Clip", {ints({1}), floats({0}, {})}}), "element types INT64 and FLOAT"));
    check_floats(run1({"Pow", {floats({2, 3}), ints({3, 2})}}), {2}, {8, 9});
}

TEST_CASE("variadic Max, Min, Sum and Mean broadcast over any number of inputs and types") {
    const Value a = floats({1, 5, 3}), b = floats({4}, {1}), c = floats({0, 0, 9});
    check_floats(run1({"Max", {a, b, c}}), {3}, {4, 5, 9});
    check_floats(run1({"Min", {a, b, c}}), {3}, {0, 0, 3});
    check_floats(run1({"Sum", {a, b, c}}), {3}, {5, 9, 16});
    check_floats(run1({"Mean", {a, b, c}}), {3}, {5.0f / 3, 3, 16.0f / 3}, 1e-6f);
    check_floats(run1({"Sum", {a}}), {3}, {1, 5, 3});  // one input is the identity
    const float nan = std::numeric_limits<float>::quiet_NaN();
    check_floats(run1({"Max", {floats({nan, 1}), floats({0, 2})}}), {2}, {nan, 2});  // NaN propagates
    check_ints(run1({"Max", {ints({-1, 7}, {2}, DataType::int8), ints({3}, {1}, DataType::int8)}}), DataType::int8, {2},
               {3, 7});
    check_ints(run1({"Min", {ints({200, 7}, {2}, DataType::uint8), ints({100}, {1}, DataType::uint8)}}), DataType::uint8,
               {2}, {100, 7});
    CHECK(contains(error_of({"Mean", {ints({1}), ints({2})}}), "Mean on INT64"));
}

TEST_CASE("Tile, Split and Trilu move elements of any type") {
    check_ints(run1({"Tile", {ints({1, 2, 3, 4}, {2, 2}), ints({1, 2})}}), DataType::int64, {2, 4},
               {1, 2, 1, 2, 3, 4, 3, 4});
    check_floats(run1({"Tile", {floats({1, 2}), ints({2})}}), {4}, {1, 2, 1, 2});
    // Split: equal parts, the split attribute (before 13) and the split input (13+).
    const auto parts = run({"Split", {floats({1, 2, 3, 4, 5, 6})}, {}, 17, 3});
    REQUIRE(parts.size() == 3);
    check_floats(parts[2], {2}, {5, 6});
    const auto attr = run({"Split", {ints({1, 2, 3, 4, 5})}, {attr_ints("split", {2, 3})}, 11, 2});
    check_ints(attr[1], DataType::int64, {3}, {3, 4, 5});
    const auto input = run({"Split", {floats({1, 2, 3, 4}, {2, 2}), ints({1, 1})}, {attr_i("axis", 1)}, 13, 2});
    check_floats(input[0], {2, 1}, {1, 3});
    CHECK(contains(error_of({"Split", {floats({1, 2, 3}), ints({1, 1})}, {}, 13, 2}), "do not add up to 3"));
    // Trilu: upper (default) and lower, with a diagonal offset k.
    const Value m = ints({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3});
    check_ints(run1({"Trilu", {m}}), DataType::int64, {3, 3}, {1, 2, 3, 0, 5, 6, 0, 0, 9});
    check_ints(run1({"Trilu", {m, ints({-1}, {})}, {attr_i("upper", 0)}}), DataType::int64, {3, 3},
               {0, 0, 0, 4, 0, 0, 7, 8, 0});
    check_floats(run1({"Trilu", {floats({1, 2, 3, 4}, {2, 2}), ints({1}, {})}}), {2, 2}, {0, 2, 0, 0});
}

TEST_CASE("ArgMax and ArgMin: axis, keepdims and select_last_index") {
    const Value x = floats({1, 3, 3, 0, 2, 0}, {2, 3});
    check_ints(run1({"ArgMax", {x}, {attr_i("axis", 1)}}), DataType::int64, {2, 1}, {1, 1});
    check_ints(run1({"ArgMax", {x}, {attr_i("axis", 1), attr_i("select_last_index", 1)}}), DataType::int64, {2, 1},
               {2, 1});
    check_ints(run1({"ArgMin", {x}, {attr_i("axis", -1), attr_i("keepdims", 0)}}), DataType::int64, {2}, {0, 0});
    check_ints(run1({"ArgMin", {x}, {attr_i("axis", -1), attr_i("keepdims", 0), attr_i("select_last_index", 1)}}),
               DataType::int64, {2}, {0, 2});
    check_ints(run1({"ArgMax", {ints({5, -1, 9}, {3}, DataType::int32)}}), DataType::int64, {1}, {2});
    CHECK(contains(error_of({"ArgMax", {x}, {attr_i("axis", 2)}}), "out of range"));
}

TEST_CASE("float ops with no training op: Floor, Ceil, Round, Reciprocal, Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Softsign, IsNaN, IsInf, ThresholdedRelu, Shrink, Celu") {
    const Value x = floats({-1.5f, -0.5f, 0.5f, 2.5f});
    check_floats(run1({"Floor", {x}}), {4}, {-2, -1, 0, 2});
    check_floats(run1({"Ceil", {x}}), {4}, {-1, -0.0f, 1, 3});
    check_floats(run1({"Round", {x}}), {4}, {-2, -0.0f, 0, 2});  // halves to even
    check_floats(run1({"Reciprocal", {x}}), {4}, {-2.0f / 3, -2, 2, 0.4f}, 1e-6f);
    check_floats(run1({"Softsign", {x}}), {4}, {-0.6f, -1.0f / 3, 1.0f / 3, 2.5f / 3.5f}, 1e-6f);
    const Value u = floats({0.0f, 0.5f});
    // Values from libm in double, rounded to float (1e-6 relative covers one float rounding).
    check_floats(run1({"Sin", {u}}), {2}, {0, 0.47942554f}, 1e-6f);
    check_floats(run1({"Cos", {u}}), {2}, {1, 0.87758256f}, 1e-6f);
    check_floats(run1({"Tan", {u}}), {2}, {0, 0.54630249f}, 1e-6f);
    check_floats(run1({"Asin", {u}}), {2}, {0, 0.52359878f}, 1e-6f);
    check_floats(run1({"Acos", {u}}), {2}, {1.5707964f, 1.0471976f}, 1e-6f);
    check_floats(run1({"Atan", {u}}), {2}, {0, 0.46364761f}, 1e-6f);
    check_floats(run1({"Sinh", {u}}), {2}, {0, 0.52109531f}, 1e-6f);
    check_floats(run1({"Cosh", {u}}), {2}, {1, 1.1276260f}, 1e-6f);
    check_floats(run1({"Asinh", {u}}), {2}, {0, 0.48121183f}, 1e-6f);
    check_floats(run1({"Acosh", {floats({1, 2})}}), {2}, {0, 1.3169579f}, 1e-6f);
    check_floats(run1({"Atanh", {u}}), {2}, {0, 0.54930614f}, 1e-6f);
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const Value s = floats({inf, -inf, nan, 1});
    check_ints(run1({"IsNaN", {s}}), DataType::boolean, {4}, {0, 0, 1, 0});
    check_ints(run1({"IsInf", {s}}), DataType::boolean, {4}, {1, 1, 0, 0});
    check_ints(run1({"IsInf", {s}, {attr_i("detect_negative", 0)}}), DataType::boolean, {4}, {1, 0, 0, 0});
    check_floats(run1({"ThresholdedRelu", {x}, {attr_f("alpha", 0.5f)}}), {4}, {0, 0, 0, 2.5f});
    check_floats(run1({"Shrink", {x}, {attr_f("lambd", 1.0f), attr_f("bias", 0.5f)}}), {4}, {-1, 0, 0, 2});
    check_floats(run1({"Celu", {floats({-1, 2})}, {attr_f("alpha", 2.0f)}}), {2}, {2 * (std::exp(-0.5f) - 1), 2},
                 1e-6f);
    // DOUBLE is accepted, integers are not (a clear error, not garbage).
    const Value fd = run1({"Floor", {doubles({-0.5, 1e17 + 0.0})}});
    REQUIRE(fd.is_double());
    CHECK(fd.d == std::vector<double>{-1, 1e17});
    CHECK(contains(error_of({"Floor", {ints({1})}}), "Floor on INT64 input"));
}

TEST_CASE("Selu and PRelu run nanotorch's elu and relu") {
    // Selu = gamma * elu(x, alpha): equal to those two ops bit for bit.
    const nt::Tensor x = nt::tensor({-2, -0.5f, 0, 1.5f});
    const Value y = run1({"Selu", {Value::of(x)}, {attr_f("alpha", 1.5f), attr_f("gamma", 2.0f)}});
    CHECK(y.f.to_vector() == nt::mul(nt::elu(x, 1.5f), 2.0f).to_vector());
    // PRelu with a per-channel slope broadcast over [N, C, L].
    check_floats(run1({"PRelu", {floats({-1, 2, -3, 4}, {1, 2, 2}), floats({0.5f, 0.25f}, {2, 1})}}), {1, 2, 2},
                 {-0.5f, 2, -0.75f, 4});
    CHECK(contains(error_of({"PRelu", {floats({1, 2}), floats({1, 2, 3})}}), "PRelu"));
}

TEST_CASE("reductions: ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp, GlobalMaxPool") {
    const Value x = floats({1, -2, 3, 4, 5, -6}, {2, 3});
    auto red = [&](const std::string& op, std::vector<onnx::AttributeProto> attrs) { return run1({op, {x}, attrs}); };
    check_floats(red("ReduceMin", {attr_ints("axes", {1})}), {2, 1}, {-2, -6});
    check_floats(red("ReduceMin", {attr_i("keepdims", 0)}), {}, {-6});
    check_floats(red("ReduceProd", {attr_ints("axes", {0}), attr_i("keepdims", 0)}), {3}, {4, -10, -18});
    check_floats(red("ReduceL1", {attr_ints("axes", {-1}), attr_i("keepdims", 0)}), {2}, {6, 15});
    check_floats(red("ReduceSumSquare", {attr_ints("axes", {1}), attr_i("keepdims", 0)}), {2}, {14, 77});
    check_floats(red("ReduceL2", {attr_ints("axes", {1}), attr_i("keepdims", 0)}), {2}, {std::sqrt(14.0f), std::sqrt(77.0f)},
                 1e-6f);
    check_floats(run1({"ReduceLogSum", {floats({1, 2, 3, 4})}, {attr_i("keepdims", 0)}}), {}, {std::log(10.0f)}, 1e-6f);
    check_floats(run1({"ReduceLogSumExp", {floats({0, 0})}, {attr_i("keepdims", 0)}}), {}, {std::log(2.0f)}, 1e-6f);
    CHECK(contains(error_of({"ReduceProd", {x}, {attr_ints("axes", {1, -1})}}), "listed twice"));
    check_floats(run1({"GlobalMaxPool", {floats({1, 7, 3, 4, -1, -5, -2, -3}, {1, 2, 2, 2})}}), {1, 2, 1, 1}, {7, -1});
}

TEST_CASE("LayerNormalization, InstanceNormalization, LRN and Hardmax by hand") {
    // [1, 3] normalised: mean 2, biased variance 2/3; eps 0 keeps the hand values simple.
    const auto ln = run({"LayerNormalization", {floats({1, 2, 3}, {1, 3}), floats({2, 2, 2}), floats({1, 1, 1})},
                         {attr_f("epsilon", 0.0f)}, 17, 3});
    const float inv = 1.0f / std::sqrt(2.0f / 3);
    check_floats(ln[0], {1, 3}, {1 - 2 * inv, 1, 1 + 2 * inv}, 1e-6f);
    check_floats(ln[1], {1, 1}, {2});
    check_floats(ln[2], {1, 1}, {inv}, 1e-6f);
    CHECK(contains(error_of({"LayerNormalization", {floats({1, 2}), floats({1, 1})}, {}, 16}), "from opset 17"));
    // InstanceNormalization over [1, 2, 2]: each channel of two values becomes -1, 1 (eps 0).
    check_floats(run1({"InstanceNormalization", {floats({1, 3, 10, 20}, {1, 2, 2}), floats({1, 2}), floats({0, 5})},
                       {attr_f("epsilon", 0.0f)}}),
                 {1, 2, 2}, {-1, 1, 3, 7});
    // LRN size 3 over 2 channels of one pixel: each sees both channels' squares (1 + 4 = 5).
    const float d = std::pow(1.0f + 0.3f / 3 * 5, 0.5f);
    check_floats(run1({"LRN", {floats({1, 2}, {1, 2, 1})}, {attr_i("size", 3), attr_f("alpha", 0.3f), attr_f("beta", 0.5f)}}),
                 {1, 2, 1}, {1 / d, 2 / d}, 1e-6f);
    CHECK(contains(error_of({"LRN", {floats({1, 2}, {1, 2, 1})}}), "'size' must be given"));
    // Hardmax marks the first maximum along the axis.
    check_floats(run1({"Hardmax", {floats({1, 3, 3, 2, 0, 1}, {2, 3})}}), {2, 3}, {0, 1, 0, 1, 0, 0});
}

TEST_CASE("Resize and Upsample: nearest rounding rules and linear coordinate modes") {
    const Value x = floats({1, 2, 3, 4}, {1, 1, 2, 2});
    const Value none = Value::of(nt::tensor(std::vector<float>{}, {0}));
    // Nearest x2 (asymmetric + floor, Upsample's rule): every pixel repeated.
    check_floats(run1({"Upsample", {x, floats({1, 1, 2, 2})}, {}, 9}), {1, 1, 4, 4},
                 {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
    // Linear x2 along the last dim of [1, 3], half_pixel: source (o + 0.5)/2 − 0.5, clamped at the ends.
    onnx::AttributeProto linear;
    linear.name = "mode", linear.type = onnx::AttributeType::string, linear.s = "linear";
    check_floats(run1({"Resize", {floats({0, 4, 8}, {1, 3}), none, floats({1, 2})}, {linear}, 13}), {1, 6},
                 {0, 1, 3, 5, 7, 8});
    // align_corners maps the ends onto each other: 3 -> 5 samples at 0, 0.5, 1, 1.5, 2.
    onnx::AttributeProto corners;
    corners.name = "coordinate_transformation_mode", corners.type = onnx::AttributeType::string, corners.s = "align_corners";
    check_floats(run1({"Resize", {floats({0, 4, 8}, {1, 3}), none, none, ints({1, 5})}, {linear, corners}, 13}), {1, 5},
                 {0, 2, 4, 6, 8});
    // Nearest downsampling by sizes with round_prefer_ceil: 4 -> 3, half_pixel sources 1/6, 3/2, 17/6.
    onnx::AttributeProto ceil_rule;
    ceil_rule.name = "nearest_mode", ceil_rule.type = onnx::AttributeType::string, ceil_rule.s = "round_prefer_ceil";
    check_floats(run1({"Resize", {floats({10, 11, 12, 13}, {1, 4}), none, none, ints({1, 3})}, {ceil_rule}, 13}), {1, 3},
                 {10, 12, 13});
    // Refused features and absurd sizes are named.
    onnx::AttributeProto cubic;
    cubic.name = "mode", cubic.type = onnx::AttributeType::string, cubic.s = "cubic";
    CHECK(contains(error_of({"Resize", {x, none, floats({1, 1, 2, 2})}, {cubic}, 13}), "mode 'cubic'"));
    CHECK(contains(error_of({"Resize", {x, none, floats({1, 1, 1e6f, 1e6f})}, {}, 13}), "more than 2^30"));
    CHECK(contains(error_of({"Resize", {x, none, floats({1, 2})}, {}, 13}), "2 scales for rank 4"));
}

TEST_CASE("ConvTranspose: strides, pads, output_padding, output_shape, groups and 1-D") {
    // 1-D, stride 2, kernel [1, 2]: x = [1, 2] scatters to y[2i] += x, y[2i+1] += 2x -> [1, 2, 2, 4].
    const Value x = floats({1, 2}, {1, 1, 2});
    const Value w = floats({1, 2}, {1, 1, 2});
    check_floats(run1({"ConvTranspose", {x, w}, {attr_ints("strides", {2})}}), {1, 1, 4}, {1, 2, 2, 4});
    // pads crop the full result at both ends; output_padding adds zeros at the end.
    check_floats(run1({"ConvTranspose", {x, w}, {attr_ints("strides", {2}), attr_ints("pads", {1, 1})}}), {1, 1, 2},
                 {2, 2});
    check_floats(run1({"ConvTranspose", {x, w}, {attr_ints("strides", {2}), attr_ints("output_padding", {1})}}),
                 {1, 1, 5}, {1, 2, 2, 4, 0});
    // output_shape 3 from a full length 4: one pad, at the end... split as ONNX does (begin total/2).
    check_floats(run1({"ConvTranspose", {x, w}, {attr_ints("strides", {2}), attr_ints("output_shape", {3})}}), {1, 1, 3},
                 {1, 2, 2});
    // Two groups, each one channel in and one out, plus a bias: channels stay separate.
    const Value x2 = floats({1, 2}, {1, 2, 1});
    const Value w2 = floats({10, 100}, {2, 1, 1});
    check_floats(run1({"ConvTranspose", {x2, w2, floats({1, 2})}, {attr_i("group", 2)}}), {1, 2, 1}, {11, 202});
    // 2-D 1x1 input with a 2x2 kernel reproduces the kernel times x.
    check_floats(run1({"ConvTranspose", {floats({3}, {1, 1, 1, 1}), floats({1, 2, 3, 4}, {1, 1, 2, 2})}}), {1, 1, 2, 2},
                 {3, 6, 9, 12});
    CHECK(contains(error_of({"ConvTranspose", {x, floats({1, 2}, {2, 1, 1})}}), "do not fit"));
    CHECK(contains(error_of({"ConvTranspose", {x, w}, {attr_ints("strides", {std::int64_t(1) << 40})}}), "1..2^20"));
}

TEST_CASE("MaxPool's Indices output: max_pool2d_with_indices, flattened over the input as ONNX counts") {
    // The op: the same values as max_pool2d, the positions inside each plane, and the same gradient.
    nt::Tensor x = nt::tensor({1, 9, 2, 3, 4, 8, 7, 6, 0, 5, 9, 1, 2, 2, 3, 4}, {1, 1, 4, 4});
    x.requires_grad_();
    const auto [y, idx] = nt::max_pool2d_with_indices(x, 2, 2);
    CHECK(y.to_vector() == nt::max_pool2d(x, 2, 2).to_vector());
    CHECK(idx == std::vector<std::int64_t>{1, 6, 9, 10});  // 9 at (0,1), 7 at (1,2), 5 at (2,1), 9 at (2,2)
    nt::sum(y).backward();
    const std::vector<float> g = x.grad().to_vector();
    x.zero_grad();
    nt::sum(nt::max_pool2d(x, 2, 2)).backward();
    CHECK(g == x.grad().to_vector());
    // The ONNX node: two planes, so the second plane's indices are offset by 16.
    Value two = floats({1, 9, 2, 3, 4, 8, 7, 6, 0, 5, 9, 1, 2, 2, 3, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0},
                       {1, 2, 4, 4});
    const auto out = run({"MaxPool", {two}, {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2})}, 12, 2});
    check_floats(out[0], {1, 2, 2, 2}, {9, 7, 5, 9, 0, 1, 2, 0});  // ties (all zeros) keep the first
    check_ints(out[1], DataType::int64, {1, 2, 2, 2}, {1, 6, 9, 10, 16, 19, 28, 26});
    // storage_order = 1 counts column-major within each plane: (h, w) -> w * H + h.
    const auto col = run({"MaxPool", {two}, {attr_ints("kernel_shape", {2, 2}), attr_ints("strides", {2, 2}),
                                             attr_i("storage_order", 1)}, 12, 2});
    check_ints(col[1], DataType::int64, {1, 2, 2, 2}, {4, 9, 6, 10, 16, 28, 19, 26});
    // SAME_LOWER pads one before (explicit, asymmetric): windows [-1, 1] and [1, 3] of a 1-D input
    // both pick the 5 at position 1; the padding is subtracted from the positions again.
    onnx::AttributeProto lower;
    lower.name = "auto_pad", lower.type = onnx::AttributeType::string, lower.s = "SAME_LOWER";
    const auto same = run({"MaxPool", {floats({1, 5, 3, 2}, {1, 1, 4})},
                           {attr_ints("kernel_shape", {3}), attr_ints("strides", {2}), lower}, 12, 2});
    check_floats(same[0], {1, 1, 2}, {5, 5});
    check_ints(same[1], DataType::int64, {1, 1, 2}, {1, 1});
    CHECK(contains(error_of({"MaxPool", {two}, {attr_ints("kernel_shape", {2, 2}), attr_i("storage_order", 2)}, 12, 2}),
                   "storage_order 2"));
}

TEST_CASE("MaxPool with dilations: each window reads every d-th element") {
    // 1-D [0..6], kernel 2, dilation 3, stride 1: windows {x0, x3}, {x1, x4}, {x2, x5}, {x3, x6}.
    const Value x = floats({5, 1, 7, 2, 9, 0, 3}, {1, 1, 7});
    check_floats(run1({"MaxPool", {x}, {attr_ints("kernel_shape", {2}), attr_ints("dilations", {3})}}), {1, 1, 4},
                 {5, 9, 7, 3});
    // 2-D 4x4, kernel 2x2, dilation 2: window (r, c) reads (r, c), (r, c+2), (r+2, c), (r+2, c+2).
    const Value m = floats({100, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {1, 1, 4, 4});
    check_floats(run1({"MaxPool", {m}, {attr_ints("kernel_shape", {2, 2}), attr_ints("dilations", {2, 2})}}),
                 {1, 1, 2, 2}, {100, 12, 15, 16});
    // ceil_mode, 6 elements, kernel 2, dilation 2 (extent 3), stride 2: a third window starts at 4
    // and reads x4 and the −inf end pad.
    check_floats(run1({"MaxPool", {floats({1, 2, 3, 4, 5, 6}, {1, 1, 6})},
                       {attr_ints("kernel_shape", {2}), attr_ints("dilations", {2}), attr_ints("strides", {2}),
                        attr_i("ceil_mode", 1)}}),
                 {1, 1, 3}, {3, 5, 5});
    // Dilated AveragePool (opset 19) is refused by name.
    CHECK(contains(error_of({"AveragePool", {x}, {attr_ints("kernel_shape", {2}), attr_ints("dilations", {2})}}),
                   "dilations != 1 in AveragePool"));
}

TEST_CASE("MaxPool with dilations and the Indices output: the dilated choices, flattened as ONNX counts") {
    // The 1-D case above over two planes (the second reversed): windows {x0, x3}, {x1, x4}, {x2, x5},
    // {x3, x6} pick positions 0, 4, 2, 6 and, in [3, 0, 9, 2, 7, 1, 5], 0, 4, 2, 6 again (+7 for the plane).
    const Value x = floats({5, 1, 7, 2, 9, 0, 3, 3, 0, 9, 2, 7, 1, 5}, {1, 2, 7});
    const auto out = run({"MaxPool", {x}, {attr_ints("kernel_shape", {2}), attr_ints("dilations", {3})}, 12, 2});
    check_floats(out[0], {1, 2, 4}, {5, 9, 7, 3, 3, 7, 9, 5});
    check_ints(out[1], DataType::int64, {1, 2, 4}, {0, 4, 2, 6, 7, 11, 9, 13});
    // The values are the ones without the Indices output asks for.
    check_floats(run1({"MaxPool", {x}, {attr_ints("kernel_shape", {2}), attr_ints("dilations", {3})}}), {1, 2, 4},
                 {5, 9, 7, 3, 3, 7, 9, 5});
    // 2-D 4x4, kernel 2x2, dilation 2: 100 at (0,0), 12 at (2,3), 15 at (3,2), 16 at (3,3);
    // storage_order = 1 counts them column-major: (h, w) -> w * 4 + h.
    const Value m = floats({100, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {1, 1, 4, 4});
    const auto m2 = run({"MaxPool", {m}, {attr_ints("kernel_shape", {2, 2}), attr_ints("dilations", {2, 2})}, 12, 2});
    check_floats(m2[0], {1, 1, 2, 2}, {100, 12, 15, 16});
    check_ints(m2[1], DataType::int64, {1, 1, 2, 2}, {0, 11, 14, 15});
    const auto col = run({"MaxPool", {m}, {attr_ints("kernel_shape", {2, 2}), attr_ints("dilations", {2, 2}),
                                           attr_i("storage_order", 1)}, 12, 2});
    check_ints(col[1], DataType::int64, {1, 1, 2, 2}, {0, 14, 11, 15});
    // ceil_mode: the third window starts at 4 and reads x4 and the −inf end pad, so it picks x4;
    // with pads 1 the first window reads the −inf begin pad and x1: positions are of the input.
    const Value six = floats({1, 2, 3, 4, 5, 6}, {1, 1, 6});
    const auto ceil = run({"MaxPool", {six}, {attr_ints("kernel_shape", {2}), attr_ints("dilations", {2}),
                                              attr_ints("strides", {2}), attr_i("ceil_mode", 1)}, 12, 2});
    check_floats(ceil[0], {1, 1, 3}, {3, 5, 5});
    check_ints(ceil[1], DataType::int64, {1, 1, 3}, {2, 4, 4});
    const auto padded = run({"MaxPool", {six}, {attr_ints("kernel_shape", {2}), attr_ints("dilations", {2}),
                                                attr_ints("strides", {2}), attr_ints("pads", {1, 1})}, 12, 2});
    check_floats(padded[0], {1, 1, 3}, {2, 4, 6});
    check_ints(padded[1], DataType::int64, {1, 1, 3}, {1, 3, 5});
}

TEST_CASE("opsets 1-6: legacy broadcast and axis, Reshape's shape attribute, Concat's default axis, is_test") {
    // Add-6 with broadcast = 1 and axis = 1 aligns B [2] with A's dimension 1 (not the last one).
    check_floats(run1({"Add", {floats({1, 2, 3, 4, 5, 6}, {1, 2, 3}), floats({10, 20})},
                       {attr_i("broadcast", 1), attr_i("axis", 1)}, 6}),
                 {1, 2, 3}, {11, 12, 13, 24, 25, 26});
    // Without 'broadcast' the shapes must be equal, as the old spec says.
    CHECK(contains(error_of({"Mul", {floats({1, 2}), floats({2}, {1})}, {}, 6}), "'broadcast' is not set"));
    // Without 'axis', B aligns at the end (NumPy-style suffix).
    check_floats(run1({"Sub", {floats({1, 2, 3, 4}, {2, 2}), floats({1, 2})}, {attr_i("broadcast", 1)}, 1}), {2, 2},
                 {0, 0, 2, 2});
    // Reshape-1..4 take the shape as an attribute; Concat-1..3 default to axis 1.
    check_floats(run1({"Reshape", {floats({1, 2, 3, 4})}, {attr_ints("shape", {2, -1})}, 4}), {2, 2}, {1, 2, 3, 4});
    check_floats(run1({"Concat", {floats({1, 2}, {1, 2}), floats({3}, {1, 1})}, {}, 3}), {1, 3}, {1, 2, 3});
    // Relu-1's consumed_inputs is an in-place hint: ignored.
    check_floats(run1({"Relu", {floats({-1, 1})}, {attr_ints("consumed_inputs", {0})}, 1}), {2}, {0, 1});
    // Training-mode BatchNormalization and Dropout (is_test = 0, the old default) are refused.
    const Value c = floats({1});
    CHECK(contains(error_of({"BatchNormalization", {floats({1}, {1, 1}), c, c, c, c}, {}, 6}), "is_test = 0"));
    CHECK(contains(error_of({"Dropout", {c}, {}, 6}), "is_test = 0"));
    check_floats(run1({"Dropout", {c}, {attr_i("is_test", 1)}, 6}), {1}, {1});
    // An operator whose old form differs (or did not exist) is refused naming the opset.
    CHECK(contains(error_of({"Upsample", {floats({1}, {1, 1}), floats({1, 2})}, {}, 6}), "Upsample at opset 6"));
}

TEST_CASE("typed ops refuse absurd sizes and wrong types with clear errors") {
    const std::string huge = error_of({"ConstantOfShape", {ints({1 << 20, 1 << 20})}});
    CHECK(contains(huge, "more than 2^30 elements"));
    CHECK(contains(error_of({"ConstantOfShape", {ints({-1})}}), "out of range"));
    CHECK(contains(error_of({"Expand", {floats({1}), ints({1 << 16, 1 << 16})}}), "more than 2^30"));
    CHECK(contains(error_of({"Tile", {floats({1, 2}), ints({std::int64_t(1) << 40})}}), "out of range"));
    CHECK(contains(error_of({"Range", {ints({0}), ints({std::int64_t(1) << 40}), ints({1})}}), "more than 2^30"));
    CHECK(contains(error_of({"Range", {floats({0}, {}), floats({1}, {}), floats({0}, {})}}), "delta is 0"));
    CHECK(contains(error_of({"Where", {floats({1}), floats({1}), floats({2})}}), "must be BOOL"));
    // A float-only operator on another element type is an unsupported feature, found at load
    // (element types flow from the declared inputs through every node) and named with the node.
    const std::string relu = error_of({"Relu", {ints({1, -1}, {2}, DataType::int8)}});
    CHECK(contains(relu, "node 'n' (Relu): Relu on INT8 input 'x0' (nanotorch runs it on FLOAT only)"));
    onnx::ModelProto chain = model_of({"Shape", {floats({1, 2})}});
    onnx::NodeProto exp_node;
    exp_node.op_type = "Exp", exp_node.name = "e", exp_node.input = {"y0"}, exp_node.output = {"z"};
    chain.graph.node.push_back(exp_node);
    const auto found = onnx::Runtime::unsupported_features(chain);  // Shape's output is INT64
    REQUIRE(found.size() == 1);
    CHECK(found[0].where == "node 'e' (Exp)");
    CHECK(found[0].reason == "Exp on INT64 input 'y0' (nanotorch runs it on FLOAT only)");
    CHECK(contains(error_of({"Floor", {ints({1})}}), "FLOAT and DOUBLE only"));
    // Graph inputs of UINT64 and FLOAT16 are refused at load, naming each.
    onnx::ModelProto m = model_of({"Identity", {floats({1})}});
    m.graph.input[0].elem_type = static_cast<std::int32_t>(DataType::float16);
    const auto issues = onnx::Runtime::unsupported_features(m);
    REQUIRE(issues.size() == 1);
    CHECK(issues[0].reason == "element type FLOAT16");
}

TEST_CASE("Values of every runtime type round-trip through TensorProto") {
    for (const DataType t : {DataType::int8, DataType::uint8, DataType::int16, DataType::uint16, DataType::int32,
                             DataType::uint32, DataType::int64, DataType::boolean}) {
        CAPTURE(onnx::dtype_name(t));
        std::vector<std::int64_t> v = {0, 1, 127};
        if (t == DataType::boolean) v = {0, 1, 1};
        if (t == DataType::int8 || t == DataType::int16 || t == DataType::int32 || t == DataType::int64) v[0] = -5;
        const Value x = Value::of_ints(v, {3}, t);
        const std::vector<unsigned char> bytes = onnx::encode_tensor(onnx::value_to_proto("x", x));
        const Value back = onnx::value_from_proto(onnx::decode_tensor(bytes.data(), bytes.size()));
        check_ints(back, t, {3}, v);
    }
    const Value d = doubles({0.1, -1e300});
    const Value back = onnx::value_from_proto(onnx::value_to_proto("d", d));
    REQUIRE(back.is_double());
    CHECK(back.d == d.d);
}
