// The op table: one row per ONNX op type that the runtime runs (onnx::rt_detail::op_table()) or
// the exporter emits (onnx::exported_op_types()), naming the test cases that prove it: the
// gradient check of the nanotorch op the runtime calls, the export test (trace, then run the
// exported node back), and the import test (a hand-built node in the runtime). The suite fails
// when an op type is in the runtime table or the exporter's list without a row, when a row names
// a test case that does not exist (the test sources are read and their TEST_CASE names matched),
// when a named test is skipped or does not mention what it is said to test, and when a row has
// gone stale. "none: <reason>" stands for a test that cannot exist, with the reason: an op that
// has no gradient (Shape) or that the exporter never emits (Flatten; it exports Reshape).
// docs/ADDING_AN_OP.md says how to add a row.
#include <doctest/doctest.h>

#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nanotorch/nanotorch.hpp>

namespace {

struct Row {
    const char* op_type;    // ONNX op type
    const char* op;         // the nanotorch function the runtime calls (its gradient check names it)
    const char* gradcheck;  // "suite: test case" or "none: why"
    const char* exported;   // "suite: test case" or "none: why"
    const char* imported;   // "suite: test case"
};

// Test cases used by several rows.
#define BINARY_GRAD "test_elementwise: gradcheck: binary ops with broadcasting and scalars"
#define UNARY_GRAD "test_elementwise: gradcheck: unary functions"
#define LAYOUT_GRAD "test_elementwise: gradcheck: layout ops"
#define SOFTMAX_GRAD "test_loss: softmax/log_softmax gradcheck over dims 0, 1 and -1 of a 3-D tensor"
#define SEED_EXPORT "test_onnx_export: the seed's InferenceNet exports as the seed describes"
#define EVERY_EXPORT "test_onnx_export: every op the exporter emits runs in the runtime with the same result"
#define BY_HAND "test_onnx_runtime: pointwise ops, Transpose, MatMul and reductions by hand: one node each"
#define CNN_IMPORT "test_onnx_runtime: a Conv-Relu-MaxPool-Reshape-Gemm-Softmax graph equals the same nanotorch calls, bit for bit"
#define PLUMBING_IMPORT "test_onnx_runtime: Constant, Identity, Dropout (inference), Squeeze/Unsqueeze by opset, ReduceSum noop"
#define INT64_IMPORT "test_onnx_runtime: int64 shape arithmetic: Shape -> Gather -> Unsqueeze -> Concat -> Reshape (a torch-style flatten)"
#define GEMM_IMPORT "test_onnx_runtime: Gemm with alpha, beta, transA and a broadcast C; BatchNormalization, Clip and LeakyRelu by hand"
#define SOFTMAX_IMPORT "test_onnx_runtime: Softmax and LogSoftmax follow the opset: 2-D coercion before 13, one axis from 13"
#define ACT_GRAD "test_activation: gradcheck: every activation, away from its kinks"
#define ACT_EXPORT "test_activation: export: graphs per opset, and the runtime computes the module's forward"
#define ACT_IMPORT "test_activation: import: Elu, HardSigmoid, Softplus and LeakyRelu follow the ONNX spec, attribute defaults included"
#define ACT_BACKEND_IMPORT "test_activation: import: the ONNX backend node tests of these operators run through the ops"
#define BN_EXPORT "test_norm: export: BatchNormalization in both profiles; the runtime's result equals the module's bit for bit"
#define NO_GRAPH_OP "none: passes a value through or makes one; no arithmetic to differentiate"
#define RUNTIME_ONLY "none: a runtime-only op (onnx/ops_math.hpp): training has no such op yet, so nothing to differentiate"
#define TYPED_ONLY "none: a runtime op on int/bool/double values (onnx/ops_typed.hpp); no float gradient to check"
#define NOT_EXPORTED "none: the exporter never emits it"
#define CAST_IMPORT "test_onnx_typed: Cast and CastLike between FLOAT, DOUBLE, the integer types and BOOL: truncation, wrapping, != 0"
#define SHAPE_IMPORT "test_onnx_typed: an int64 shape subgraph as exporters write it: Shape, Size, ConstantOfShape, Expand, Range, Where"
#define LOGIC_IMPORT "test_onnx_typed: comparisons and logic broadcast and return BOOL: Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or, Xor, Not"
#define INT_ARITH_IMPORT "test_onnx_typed: integer and DOUBLE arithmetic keep their type: Add, Sub, Mul, Div, Neg, Abs, Sign, Mod, Pow, Clip"
#define VARIADIC_IMPORT "test_onnx_typed: variadic Max, Min, Sum and Mean broadcast over any number of inputs and types"
#define MOVE_IMPORT "test_onnx_typed: Tile, Split and Trilu move elements of any type"
#define ARG_IMPORT "test_onnx_typed: ArgMax and ArgMin: axis, keepdims and select_last_index"
#define MATH_IMPORT "test_onnx_typed: float ops with no training op: Floor, Ceil, Round, Reciprocal, Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Softsign, IsNaN, IsInf, ThresholdedRelu, Shrink, Celu"
#define SELU_IMPORT "test_onnx_typed: Selu and PRelu run nanotorch's elu and relu"
#define REDUCE_IMPORT "test_onnx_typed: reductions: ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp, GlobalMaxPool"
#define RESIZE_IMPORT "test_onnx_typed: Resize and Upsample: nearest rounding rules and linear coordinate modes"
#define CONVT_IMPORT "test_onnx_typed: ConvTranspose: strides, pads, output_padding, output_shape, groups and 1-D"
#define NORM_IMPORT "test_onnx_typed: LayerNormalization, InstanceNormalization, LRN and Hardmax by hand"

// Sorted by op type.
const Row rows[] = {
    {"Abs", "", TYPED_ONLY, NOT_EXPORTED, INT_ARITH_IMPORT},
    {"Acos", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Acosh", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Add", "add", BINARY_GRAD, SEED_EXPORT, PLUMBING_IMPORT},
    {"And", "", TYPED_ONLY, NOT_EXPORTED, LOGIC_IMPORT},
    {"ArgMax", "", "none: its output is int64 indices, not differentiable", NOT_EXPORTED, ARG_IMPORT},
    {"ArgMin", "", "none: its output is int64 indices, not differentiable", NOT_EXPORTED, ARG_IMPORT},
    {"Asin", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Asinh", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Atan", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Atanh", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"AveragePool", "avg_pool2d", "test_conv: gradcheck: avg_pool2d", SEED_EXPORT,
     "test_onnx_runtime: pooling and Conv with asymmetric or SAME padding pad explicitly, as ONNX specifies"},
    {"BatchNormalization", "batch_norm",
     "test_norm: batch_norm gradient checks: input, weight and bias on 2-D, 3-D and 4-D inputs, both modes", BN_EXPORT,
     "test_norm: the runtime's BatchNormalization is batch_norm: rank 2, 3 and 5 inputs, errors from the op"},
    {"Cast", "", TYPED_ONLY, NOT_EXPORTED, CAST_IMPORT},
    {"CastLike", "", TYPED_ONLY, NOT_EXPORTED, CAST_IMPORT},
    {"Ceil", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Celu", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Clip", "clamp", "test_indexing: clamp: gradient passes inside [min, max] (bounds included), 0 outside; gradcheck",
     "test_indexing: clamp exports as Clip (attributes at opset 9, inputs from 11) and runs back identically",
     GEMM_IMPORT},
    {"Concat", "cat", LAYOUT_GRAD, EVERY_EXPORT, INT64_IMPORT},
    {"Constant", "", NO_GRAPH_OP, "none: constants are exported as initializers", PLUMBING_IMPORT},
    {"ConstantOfShape", "", NO_GRAPH_OP, NOT_EXPORTED, SHAPE_IMPORT},
    {"Conv", "conv2d", "test_conv: gradcheck: conv2d w.r.t. input, weight and bias", SEED_EXPORT, CNN_IMPORT},
    {"ConvTranspose", "", RUNTIME_ONLY, NOT_EXPORTED, CONVT_IMPORT},
    {"Cos", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Cosh", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Div", "div", BINARY_GRAD, EVERY_EXPORT, BY_HAND},
    {"Dropout", "", "none: the runtime runs inference-mode Dropout, the identity",
     "none: eval-mode dropout leaves no node, training-mode dropout cannot be exported", PLUMBING_IMPORT},
    {"Elu", "elu", ACT_GRAD, ACT_EXPORT, ACT_IMPORT},
    {"Equal", "", "none: its output is BOOL, not differentiable", NOT_EXPORTED, LOGIC_IMPORT},
    {"Erf", "erf", ACT_GRAD, ACT_EXPORT, ACT_BACKEND_IMPORT},
    {"Exp", "exp", UNARY_GRAD, EVERY_EXPORT, BY_HAND},
    {"Expand", "", TYPED_ONLY, NOT_EXPORTED, SHAPE_IMPORT},
    {"Flatten", "reshape", LAYOUT_GRAD, "none: flatten exports as Reshape",
     "test_onnx_runtime: zero-size tensors flow through Flatten, pre-13 Softmax, BatchNormalization and Concat"},
    {"Floor", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Gather", "index_select", "test_indexing: index_select: gradient sums repeated rows; gradcheck",
     "test_indexing: index_select exports as Gather and runs back identically", INT64_IMPORT},
    {"Gemm", "linear", "test_linalg: gradcheck: linear", SEED_EXPORT, GEMM_IMPORT},
    {"GlobalAveragePool", "adaptive_avg_pool2d", "test_conv_groups: gradcheck: ceil_mode pooling and adaptive_avg_pool2d",
     "test_conv_groups: export: adaptive_avg_pool2d as GlobalAveragePool, AveragePool, or refused naming the shapes",
     BY_HAND},
    {"GlobalMaxPool", "max", "test_reduce: gradcheck: max", NOT_EXPORTED, REDUCE_IMPORT},
    {"Greater", "", "none: its output is BOOL, not differentiable", NOT_EXPORTED, LOGIC_IMPORT},
    {"GreaterOrEqual", "", "none: its output is BOOL, not differentiable", NOT_EXPORTED, LOGIC_IMPORT},
    {"HardSigmoid", "hardsigmoid", ACT_GRAD, ACT_EXPORT, ACT_IMPORT},
    {"HardSwish", "hardswish", ACT_GRAD, ACT_EXPORT, ACT_BACKEND_IMPORT},
    {"Hardmax", "", "none: a one-hot of the maximum, piecewise constant", NOT_EXPORTED, NORM_IMPORT},
    {"Identity", "", NO_GRAPH_OP, EVERY_EXPORT, PLUMBING_IMPORT},
    {"InstanceNormalization", "mean", "test_reduce: gradcheck: mean", NOT_EXPORTED, NORM_IMPORT},
    {"IsInf", "", "none: its output is BOOL, not differentiable", NOT_EXPORTED, MATH_IMPORT},
    {"IsNaN", "", "none: its output is BOOL, not differentiable", NOT_EXPORTED, MATH_IMPORT},
    {"LRN", "", RUNTIME_ONLY, NOT_EXPORTED, NORM_IMPORT},
    {"LayerNormalization", "mean", "test_reduce: gradcheck: mean", NOT_EXPORTED, NORM_IMPORT},
    {"LeakyRelu", "leaky_relu", ACT_GRAD, ACT_EXPORT, ACT_IMPORT},
    {"Less", "", "none: its output is BOOL, not differentiable", NOT_EXPORTED, LOGIC_IMPORT},
    {"LessOrEqual", "", "none: its output is BOOL, not differentiable", NOT_EXPORTED, LOGIC_IMPORT},
    {"Log", "log", UNARY_GRAD, EVERY_EXPORT, BY_HAND},
    {"LogSoftmax", "log_softmax", SOFTMAX_GRAD, SEED_EXPORT, SOFTMAX_IMPORT},
    {"MatMul", "matmul", "test_linalg: gradcheck: matmul, every rank combination", EVERY_EXPORT, BY_HAND},
    {"Max", "", TYPED_ONLY, NOT_EXPORTED, VARIADIC_IMPORT},
    {"MaxPool", "max_pool2d", "test_conv: gradcheck: max_pool2d", SEED_EXPORT, CNN_IMPORT},
    {"Mean", "add", BINARY_GRAD, NOT_EXPORTED, VARIADIC_IMPORT},
    {"Min", "", TYPED_ONLY, NOT_EXPORTED, VARIADIC_IMPORT},
    {"Mod", "", TYPED_ONLY, NOT_EXPORTED, INT_ARITH_IMPORT},
    {"Mul", "mul", BINARY_GRAD, SEED_EXPORT, INT64_IMPORT},
    {"Neg", "neg", BINARY_GRAD, EVERY_EXPORT, BY_HAND},
    {"Not", "", TYPED_ONLY, NOT_EXPORTED, LOGIC_IMPORT},
    {"Or", "", TYPED_ONLY, NOT_EXPORTED, LOGIC_IMPORT},
    {"PRelu", "relu", UNARY_GRAD, NOT_EXPORTED, SELU_IMPORT},
    {"Pad", "pad", "test_indexing: pad: gradients of all three modes (reflected and replicated borders sum); gradcheck",
     "test_indexing: pad exports as Pad (attributes at opset 9, inputs from 11) and runs back identically",
     "test_onnx_runtime: Pad: constant (attribute and input forms), reflect and edge, and cropping"},
    {"Pow", "pow", UNARY_GRAD, EVERY_EXPORT, BY_HAND},
    {"Range", "", NO_GRAPH_OP, NOT_EXPORTED, SHAPE_IMPORT},
    {"Reciprocal", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"ReduceL1", "", RUNTIME_ONLY, NOT_EXPORTED, REDUCE_IMPORT},
    {"ReduceL2", "sum", "test_reduce: gradcheck: sum", NOT_EXPORTED, REDUCE_IMPORT},
    {"ReduceLogSum", "sum", "test_reduce: gradcheck: sum", NOT_EXPORTED, REDUCE_IMPORT},
    {"ReduceLogSumExp", "sum", "test_reduce: gradcheck: sum", NOT_EXPORTED, REDUCE_IMPORT},
    {"ReduceMax", "max", "test_reduce: gradcheck: max", EVERY_EXPORT, BY_HAND},
    {"ReduceMean", "mean", "test_reduce: gradcheck: mean", EVERY_EXPORT, BY_HAND},
    {"ReduceMin", "max", "test_reduce: gradcheck: max", NOT_EXPORTED, REDUCE_IMPORT},
    {"ReduceProd", "", RUNTIME_ONLY, NOT_EXPORTED, REDUCE_IMPORT},
    {"ReduceSum", "sum", "test_reduce: gradcheck: sum",
     "test_onnx_export: opset-dependent encodings: Slice and ReduceSum move attributes to inputs", PLUMBING_IMPORT},
    {"ReduceSumSquare", "sum", "test_reduce: gradcheck: sum", NOT_EXPORTED, REDUCE_IMPORT},
    {"Relu", "relu", UNARY_GRAD, SEED_EXPORT, CNN_IMPORT},
    {"Reshape", "reshape", LAYOUT_GRAD, SEED_EXPORT,
     "test_onnx_runtime: Reshape: 0 copies the input dimension, -1 is inferred, allowzero keeps a literal 0"},
    {"Resize", "", RUNTIME_ONLY, NOT_EXPORTED, RESIZE_IMPORT},
    {"Round", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Selu", "elu", ACT_GRAD, NOT_EXPORTED, SELU_IMPORT},
    {"Shape", "", "none: its output is int64 sizes, not differentiable", "none: no op emits it", INT64_IMPORT},
    {"Shrink", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Sigmoid", "sigmoid", UNARY_GRAD, EVERY_EXPORT, BY_HAND},
    {"Sign", "", "none: piecewise constant", NOT_EXPORTED, INT_ARITH_IMPORT},
    {"Sin", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Sinh", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Size", "", "none: its output is an int64 count, not differentiable", NOT_EXPORTED, SHAPE_IMPORT},
    {"Slice", "narrow", LAYOUT_GRAD, SEED_EXPORT,
     "test_onnx_runtime: Slice: attributes before opset 10, inputs after, with clamping and negative steps"},
    {"Softmax", "softmax", SOFTMAX_GRAD, SEED_EXPORT, SOFTMAX_IMPORT},
    {"Softplus", "softplus", ACT_GRAD, ACT_EXPORT, ACT_IMPORT},
    {"Softsign", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Split", "narrow", LAYOUT_GRAD, NOT_EXPORTED, MOVE_IMPORT},
    {"Sqrt", "sqrt", UNARY_GRAD, EVERY_EXPORT, BY_HAND},
    {"Squeeze", "reshape", LAYOUT_GRAD, BN_EXPORT, PLUMBING_IMPORT},
    {"Sub", "sub", BINARY_GRAD, EVERY_EXPORT, BY_HAND},
    {"Sum", "add", BINARY_GRAD, NOT_EXPORTED, VARIADIC_IMPORT},
    {"Tan", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Tanh", "tanh", UNARY_GRAD, EVERY_EXPORT, BY_HAND},
    {"ThresholdedRelu", "", RUNTIME_ONLY, NOT_EXPORTED, MATH_IMPORT},
    {"Tile", "", TYPED_ONLY, NOT_EXPORTED, MOVE_IMPORT},
    {"Transpose", "permute", LAYOUT_GRAD, EVERY_EXPORT, BY_HAND},
    {"Trilu", "", TYPED_ONLY, NOT_EXPORTED, MOVE_IMPORT},
    {"Unsqueeze", "reshape", LAYOUT_GRAD, BN_EXPORT, PLUMBING_IMPORT},
    {"Upsample", "", RUNTIME_ONLY, NOT_EXPORTED, RESIZE_IMPORT},
    {"Where", "", TYPED_ONLY, NOT_EXPORTED, SHAPE_IMPORT},
    {"Xor", "", TYPED_ONLY, NOT_EXPORTED, LOGIC_IMPORT},
};

// ---- reading the test sources ----

// The directory of this file: the test sources sit next to it.
std::string tests_dir() {
    const std::string f = __FILE__;
    const auto slash = f.find_last_of('/');
    return slash == std::string::npos ? "." : f.substr(0, slash);
}

struct TestCase {
    std::string body;  // from its TEST_CASE line to the next one
    bool skipped = false;
};

// suite -> test case name -> TestCase, for the suites named in tests/suites.txt.
const std::map<std::string, std::map<std::string, TestCase>>& test_cases() {
    static const auto cases = [] {
        std::map<std::string, std::map<std::string, TestCase>> out;
        std::ifstream list(tests_dir() + "/suites.txt");
        REQUIRE_MESSAGE(list, "cannot read ", tests_dir(), "/suites.txt");
        for (std::string suite; std::getline(list, suite);) {
            if (suite.empty() || suite[0] == '#') continue;
            std::ifstream in(tests_dir() + "/" + suite + ".cpp");
            REQUIRE_MESSAGE(in, "cannot read the sources of suite ", suite);
            auto& cases_of = out[suite];
            TestCase* current = nullptr;
            for (std::string line; std::getline(in, line);) {
                const std::string head = "TEST_CASE(\"";
                if (line.compare(0, head.size(), head) == 0) {
                    std::string name;
                    std::size_t i = head.size();
                    for (; i < line.size() && line[i] != '"'; ++i) name += line[i] == '\\' ? line[++i] : line[i];
                    current = &cases_of[name];
                    current->skipped = line.find("doctest::skip", i) != std::string::npos;
                }
                if (current) current->body += line + "\n";
            }
        }
        return out;
    }();
    return cases;
}

// True when `word` occurs in `text` with no identifier character on either side.
bool has_word(const std::string& text, const std::string& word) {
    auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    for (std::size_t p = text.find(word); p != std::string::npos; p = text.find(word, p + 1))
        if ((p == 0 || !ident(text[p - 1])) && (p + word.size() >= text.size() || !ident(text[p + word.size()])))
            return true;
    return false;
}

bool is_none(const std::string& ref) { return ref.compare(0, 5, "none:") == 0; }

// Checks that `ref` ("suite: name") is an existing, not skipped test case whose body contains
// every word of `must_mention`.
void check_ref(const std::string& op_type, const std::string& column, const std::string& ref,
               const std::vector<std::string>& must_mention) {
    CAPTURE(op_type);
    CAPTURE(column);
    CAPTURE(ref);
    const auto colon = ref.find(": ");
    CHECK_MESSAGE(colon != std::string::npos, "a reference is \"suite: test case name\"");
    if (colon == std::string::npos) return;
    const std::string suite = ref.substr(0, colon), name = ref.substr(colon + 2);
    const auto s = test_cases().find(suite);
    CHECK_MESSAGE(s != test_cases().end(), "no suite ", suite, " in tests/suites.txt");
    if (s == test_cases().end()) return;
    const auto c = s->second.find(name);
    CHECK_MESSAGE(c != s->second.end(), "suite ", suite, " has no TEST_CASE(\"", name, "\")");
    if (c == s->second.end()) return;
    CHECK_MESSAGE(!c->second.skipped, "the test case is skipped");
    for (const std::string& w : must_mention)
        CHECK_MESSAGE(has_word(c->second.body, w), "the test case never mentions ", w);
}

}  // namespace

TEST_CASE("every op type the runtime runs or the exporter emits has exactly one row, in order") {
    std::set<std::string> wanted;
    for (const auto& kv : nanotorch::onnx::rt_detail::op_table()) wanted.insert(kv.first);
    for (const std::string& t : nanotorch::onnx::exported_op_types()) wanted.insert(t);
    std::set<std::string> have;
    std::string previous;
    for (const Row& r : rows) {
        const std::string op_type = r.op_type;
        CAPTURE(op_type);
        CHECK_MESSAGE(previous < r.op_type, "rows are sorted by op type, each once");
        previous = r.op_type;
        have.insert(r.op_type);
        CHECK_MESSAGE(wanted.count(r.op_type), "a stale row: neither the runtime nor the exporter knows this op type");
    }
    for (const std::string& t : wanted) {
        CAPTURE(t);
        CHECK_MESSAGE(have.count(t), "no row in tests/test_op_table.cpp (see docs/ADDING_AN_OP.md)");
    }
}

TEST_CASE("every row names existing test cases that mention what they prove") {
    const auto& runtime = nanotorch::onnx::rt_detail::op_table();
    const auto& exported = nanotorch::onnx::exported_op_types();
    for (const Row& r : rows) {
        const std::string op_type = r.op_type;
        CAPTURE(op_type);
        // Import: every op type the exporter emits must also run in the runtime.
        CHECK_MESSAGE(runtime.count(r.op_type), "the runtime cannot run this op type");
        check_ref(r.op_type, "import", r.imported, {r.op_type});
        // Export: a test exactly when the exporter emits it.
        if (exported.count(r.op_type))
            check_ref(r.op_type, "export", r.exported, {r.op_type});
        else
            CHECK_MESSAGE(is_none(r.exported), "the exporter does not emit it: the export column is \"none: why\"");
        // Gradient: a gradcheck of the op the runtime calls, or a reason why there is none.
        if (is_none(r.gradcheck)) {
            CHECK(std::string(r.gradcheck).size() > 6);  // a reason follows "none:"
        } else {
            CHECK_MESSAGE(std::string(r.op).size() > 0, "a gradient check needs the op it checks");
            check_ref(r.op_type, "gradcheck", r.gradcheck, {"gradcheck", r.op});
        }
        if (is_none(r.exported)) CHECK(std::string(r.exported).size() > 6);
    }
}
