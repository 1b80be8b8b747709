// nanotorch/onnx/export.hpp — export_onnx: trace a module's forward into an ONNX model, the way
// torch.onnx.export does.
//
// The module runs once on a dummy input in eval mode with grad off and a Tracer active; every
// op reports the ONNX node(s) that compute exactly what it computed (the mapping lives next to
// each op, see core/trace.hpp). Parameters become initializers named by their dotted names
// (conv1.weight), constants become initializers named const_<k>, intermediate values take
// their node's name (Conv_0). Eval-mode dropout returns its input and so leaves no node.
//
// Profiles: opset 9 (IR 4, the default) is the ONNX.js-compatible profile: only operators
// ONNX.js 0.1.8 implements are allowed, so LogSoftmax is refused with a message that names the
// fix. Opsets 10..17 (IR version to match) are for onnxruntime and other full runtimes.
#pragma once

#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/core/trace.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/nn/module.hpp>
#include <nanotorch/onnx/fold.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/proto.hpp>

namespace nanotorch::onnx {

struct ExportOptions {
    /// Default-domain opset. 9 = ONNX.js-compatible profile (IR 4); 10..17 for onnxruntime.
    std::int64_t opset = 9;
    /// Names of the graph's input and output values.
    std::string input_name = "input";
    std::string output_name = "output";
    /// Write the first dimension of input and output as the symbol "batch" instead of a number.
    /// (Reshape targets are written as traced, so use -1 for the batch in view()/reshape().)
    bool dynamic_batch = false;
    /// Print the traced graph to std::cout, like torch.onnx.export(verbose=True).
    bool verbose = false;
    /// Merge each BatchNormalization into the Conv before it (onnx/fold.hpp), as torch.onnx does
    /// in eval mode. Off by default: the folded graph differs from the module's forward by float
    /// rounding (measured in README, "BatchNorm"), the unfolded one not at all.
    bool fold_batchnorm = false;
    std::string graph_name = "nanotorch";
    std::string doc_string;
};

/// The IR version that goes with an opset (the oldest IR that defines it, so that older
/// runtimes accept the file). Any opset is accepted here; trace_module checks the range.
inline std::int64_t ir_version_for_opset(std::int64_t opset) {
    if (opset <= 9) return 4;
    if (opset == 10) return 5;
    if (opset == 11) return 6;
    if (opset <= 14) return 7;
    return 8;
}

/// Every ONNX op type a nanotorch op may emit when traced (its `trace::active()->emit(...)`).
/// The exporter refuses any other with an unsupported_error, so an op that starts emitting a new
/// type fails its export test until the type is listed here; tests/test_op_table.cpp then asks
/// for its export, import and gradient tests (docs/ADDING_AN_OP.md).
inline const std::set<std::string>& exported_op_types() {
    static const std::set<std::string> ops = {
        "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Conv", "Div", "Elu", "Erf", "Exp",
        "Gather", "Gemm", "GlobalAveragePool", "HardSigmoid", "HardSwish", "Identity", "LeakyRelu", "Log",
        "LogSoftmax", "MatMul", "MaxPool", "Mul", "Neg", "Pad", "Pow", "ReduceMax", "ReduceMean", "ReduceSum",
        "Relu", "Reshape", "Sigmoid", "Slice", "Softmax", "Softplus", "Sqrt", "Squeeze", "Sub", "Tanh",
        "Transpose", "Unsqueeze"};
    return ops;
}

/// Operators ONNX.js 0.1.8 resolves (its operator list), for the opset-9 profile.
inline const std::set<std::string>& onnxjs_operators() {
    static const std::set<std::string> ops = {
        "Abs", "Acos", "Add", "And", "ArgMax", "Asin", "Atan", "AveragePool", "BatchNormalization", "Ceil", "Clip",
        "Concat", "Conv", "Cos", "Div", "Dropout", "Elu", "Equal", "Exp", "Flatten", "Floor", "Gather", "Gemm",
        "GlobalAveragePool", "GlobalMaxPool", "Greater", "Identity", "ImageScaler", "LeakyRelu", "Less", "Log", "LRN",
        "MatMul", "MaxPool", "Mul", "Neg", "Not", "Or", "Pad", "PRelu", "Reshape", "ReduceLogSumExp", "ReduceMax",
        "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Sigmoid", "Sin", "Slice",
        "Softmax", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh", "Tile", "Transpose", "Unsqueeze", "Xor"};
    return ops;
}

namespace detail {

inline AttributeProto to_attribute(const trace::Attr& a) {
    AttributeProto p;
    p.name = a.name;
    switch (a.kind) {
        case trace::Attr::Kind::Int: p.type = AttributeType::int_; p.i = a.i; break;
        case trace::Attr::Kind::Float: p.type = AttributeType::float_; p.f = a.f; break;
        case trace::Attr::Kind::Ints: p.type = AttributeType::ints; p.ints = a.ints; break;
        case trace::Attr::Kind::Floats: p.type = AttributeType::floats; p.floats = a.floats; break;
        case trace::Attr::Kind::String: p.type = AttributeType::string; p.s = a.s; break;
    }
    return p;
}

/// The Tracer that builds a GraphProto.
class GraphBuilder : public trace::Tracer {
public:
    GraphBuilder(const ExportOptions& options, const nn::Module& module) : options_(options) {
        for (const auto& [name, t] : module.named_parameters()) params_[t.unsafe_impl()] = {name, t};
        for (const auto& [name, t] : module.named_buffers()) params_[t.unsafe_impl()] = {name, t};
    }

    std::int64_t opset() const override { return options_.opset; }

    void add_input(const Tensor& t) {
        keep(t);
        names_[t.unsafe_impl()] = options_.input_name;
        graph_.input.push_back(value_info(options_.input_name, t.shape()));
    }

    void emit(const std::string& op_type, const std::vector<trace::Input>& inputs, const std::vector<Tensor>& outputs,
              std::vector<trace::Attr> attrs) override {
        if (!exported_op_types().count(op_type))
            throw unsupported_error("ONNX export: op type " + op_type +
                                    " is not listed in onnx::exported_op_types(); an op that emits it must be "
                                    "listed there, with its tests in tests/test_op_table.cpp");
        if (options_.opset <= 9 && !onnxjs_operators().count(op_type)) {
            std::string fix = op_type == "LogSoftmax"
                                  ? "end the inference model in softmax (F::softmax) instead, "
                                    "or export with ExportOptions::opset = 13 for onnxruntime only"
                                  : "export with ExportOptions::opset = 13 for onnxruntime only";
            throw unsupported_error("ONNX export: " + op_type +
                                    " is not available in the ONNX.js-compatible profile (opset 9): " + fix);
        }
        NodeProto node;
        node.op_type = op_type;
        node.name = op_type + "_" + std::to_string(graph_.node.size());
        std::size_t used = inputs.size();
        while (used > 0 && inputs[used - 1].kind == trace::Input::Kind::Omitted) --used;  // drop trailing optionals
        for (std::size_t i = 0; i < used; ++i) node.input.push_back(resolve(inputs[i], op_type));
        for (std::size_t k = 0; k < outputs.size(); ++k) {
            const std::string out = outputs.size() == 1 ? node.name : node.name + "_" + std::to_string(k);
            keep(outputs[k]);
            names_[outputs[k].unsafe_impl()] = out;
            node.output.push_back(out);
        }
        for (const auto& a : attrs) node.attribute.push_back(to_attribute(a));
        graph_.node.push_back(std::move(node));
    }

    void alias(const Tensor& output, const Tensor& input) override {
        const std::string name = resolve(trace::value(input), "alias");
        keep(output);
        names_[output.unsafe_impl()] = name;
    }

    /// Completes the graph with `out` as its output.
    GraphProto finish(const Tensor& out) {
        auto it = names_.find(out.unsafe_impl());
        std::string produced = it == names_.end() ? std::string() : it->second;
        const bool is_node_output = std::any_of(graph_.node.begin(), graph_.node.end(), [&](const NodeProto& n) {
            return std::find(n.output.begin(), n.output.end(), produced) != n.output.end();
        });
        if (!is_node_output) {  // the forward returned its input or a parameter unchanged
            emit("Identity", {trace::value(out)}, {out}, {});
            produced = names_[out.unsafe_impl()];
        }
        for (auto& n : graph_.node) {  // give the final value its public name
            for (auto& s : n.output)
                if (s == produced) s = options_.output_name;
            for (auto& s : n.input)
                if (s == produced) s = options_.output_name;
        }
        graph_.output.push_back(value_info(options_.output_name, out.shape()));
        graph_.name = options_.graph_name;
        return std::move(graph_);
    }

private:
    void keep(const Tensor& t) { alive_.push_back(t); }

    ValueInfoProto value_info(const std::string& name, const Shape& shape) const {
        ValueInfoProto v;
        v.name = name;
        v.elem_type = static_cast<std::int32_t>(DataType::float32);
        v.has_shape = true;
        for (std::size_t i = 0; i < shape.size(); ++i) {
            Dimension d;
            if (i == 0 && options_.dynamic_batch) {
                d.param = "batch";
            } else {
                d.has_value = true;
                d.value = shape[i];
            }
            v.shape.push_back(d);
        }
        return v;
    }

    std::string add_constant(TensorProto t) {
        t.name = "const_" + std::to_string(constants_++);
        graph_.initializer.push_back(t);
        return graph_.initializer.back().name;
    }

    std::string resolve(const trace::Input& in, const std::string& op_type) {
        switch (in.kind) {
            case trace::Input::Kind::Omitted: return "";
            case trace::Input::Kind::Int64Constant:
                return add_constant(make_int64_tensor("", in.ints_shape, in.ints.data()));
            case trace::Input::Kind::FloatConstant: {
                const std::vector<float> v = in.tensor.to_vector();
                return add_constant(make_float_tensor("", in.tensor.shape(), v.data()));
            }
            case trace::Input::Kind::Tensor: break;
        }
        const TensorImpl* key = in.tensor.unsafe_impl();
        if (auto it = names_.find(key); it != names_.end()) return it->second;
        if (auto p = params_.find(key); p != params_.end()) {  // first use of a parameter
            const std::vector<float> v = p->second.second.to_vector();
            graph_.initializer.push_back(make_float_tensor(p->second.first, p->second.second.shape(), v.data()));
            names_[key] = p->second.first;
            return p->second.first;
        }
        // A tensor made inside forward (not the input, a parameter or an op's result): its
        // current values become a constant, as torch.onnx.export does.
        (void)op_type;
        keep(in.tensor);
        const std::vector<float> v = in.tensor.to_vector();
        const std::string name = add_constant(make_float_tensor("", in.tensor.shape(), v.data()));
        names_[key] = name;
        return name;
    }

    ExportOptions options_;
    GraphProto graph_;
    std::unordered_map<const TensorImpl*, std::string> names_;
    std::unordered_map<const TensorImpl*, std::pair<std::string, Tensor>> params_;
    std::vector<Tensor> alive_;  // every traced tensor stays alive, so no address is reused
    int constants_ = 0;
};

}  // namespace detail

/// A readable listing of a graph, one node per line (what verbose export prints). Throws nothing
/// of nanotorch's.
NANOTORCH_ONNX_API std::string format_graph(const ModelProto& m)
#if !NANOTORCH_ONNX_BODIES
    ;
#else
{
    std::ostringstream os;
    auto dims = [](const ValueInfoProto& v) {
        std::string s;
        for (std::size_t i = 0; i < v.shape.size(); ++i)
            s += (i ? ", " : "") + (v.shape[i].has_value ? std::to_string(v.shape[i].value) : v.shape[i].param);
        return s;
    };
    os << "graph " << m.graph.name << " (ir_version " << m.ir_version << ", opset " << m.default_opset() << ")\n";
    for (const auto& v : m.graph.input) os << "  input  %" << v.name << " : Float(" << dims(v) << ")\n";
    for (const auto& t : m.graph.initializer) {
        std::string d;
        for (std::size_t i = 0; i < t.dims.size(); ++i) d += (i ? ", " : "") + std::to_string(t.dims[i]);
        os << "  init   %" << t.name << " : (" << d << ")\n";
    }
    for (const auto& n : m.graph.node) {
        os << "  %";
        for (std::size_t i = 0; i < n.output.size(); ++i) os << (i ? ", %" : "") << n.output[i];
        os << " = " << n.op_type;
        if (!n.attribute.empty()) {
            os << '[';
            for (std::size_t i = 0; i < n.attribute.size(); ++i) {
                const auto& a = n.attribute[i];
                os << (i ? ", " : "") << a.name << '=';
                if (a.type == AttributeType::int_) os << a.i;
                else if (a.type == AttributeType::float_) os << a.f;
                else if (a.type == AttributeType::string) os << '"' << a.s << '"';
                else if (a.type == AttributeType::ints) {
                    os << '[';
                    for (std::size_t k = 0; k < a.ints.size(); ++k) os << (k ? ", " : "") << a.ints[k];
                    os << ']';
                } else {
                    os << "...";
                }
            }
            os << ']';
        }
        os << '(';
        for (std::size_t i = 0; i < n.input.size(); ++i) os << (i ? ", " : "") << '%' << n.input[i];
        os << ")\n";
    }
    for (const auto& v : m.graph.output) os << "  output %" << v.name << " : Float(" << dims(v) << ")\n";
    return os.str();
}
#endif

/// Traces module.forward(dummy_input) into a ModelProto (see the file comment). The module is
/// run in eval mode and its previous mode is restored, also when tracing throws.
/// @throws value_error when options.opset is outside 9..17 or dummy_input (or the forward's
///   result) is undefined; unsupported_error naming the op when an op cannot be expressed in the
///   chosen profile (at opset 9 any operator outside ONNX.js's list, e.g. LogSoftmax; a softmax
///   over a non-last dim below opset 13; linear on a non-2-D input; pooling on a 3-D input);
///   and whatever module.forward(dummy_input) throws (e.g. shape_error for a wrong input shape).
NANOTORCH_ONNX_API ModelProto trace_module(nn::Module& module, const Tensor& dummy_input, const ExportOptions& options = {})
#if !NANOTORCH_ONNX_BODIES
    ;
#else
{
    NANOTORCH_CHECK(options.opset >= 9 && options.opset <= 17, value_error, "export_onnx: opset ", options.opset,
                    " is not supported (9 for ONNX.js and onnxruntime, up to 17 for onnxruntime)");
    NANOTORCH_CHECK(dummy_input.defined(), value_error, "export_onnx: the dummy input is undefined");
    struct ModeRestore {
        nn::Module& m;
        bool training;
        ~ModeRestore() { m.train(training); }
    } restore{module, module.is_training()};
    module.eval();
    NoGradGuard no_grad;
    detail::GraphBuilder builder(options, module);
    builder.add_input(dummy_input);
    Tensor out;
    {
        trace::TraceGuard guard(builder);
        out = module.forward(dummy_input);
    }
    ModelProto model;
    model.ir_version = ir_version_for_opset(options.opset);
    model.opset_import.push_back(OperatorSetIdProto{"", options.opset});
    model.producer_name = "nanotorch";
    model.producer_version = NANOTORCH_VERSION_STRING;
    model.doc_string = options.doc_string;
    model.graph = builder.finish(out);
    if (options.fold_batchnorm) fold_batchnorm(model.graph);
    if (options.verbose) std::cout << format_graph(model);
    return model;
}
#endif

/// torch.onnx.export for nanotorch: traces `module` on `dummy_input` and writes the model to `path`.
/// Example: onnx::export_onnx(model, zeros({1, 1, 28, 28}), "onnx_model.onnx");
/// @throws what trace_module throws, and io_error naming `path` when the file cannot be written.
inline void export_onnx(nn::Module& module, const Tensor& dummy_input, const std::string& path,
                        const ExportOptions& options = {}) {
    write_model(trace_module(module, dummy_input, options), path);
}

/// Overload for module holders (nn::Sequential, NANOTORCH_MODULE types).
/// @throws value_error for an empty holder, else as above.
template <class Holder, class = decltype(std::declval<Holder&>().ptr())>
void export_onnx(const Holder& module, const Tensor& dummy_input, const std::string& path,
                 const ExportOptions& options = {}) {
    export_onnx(*module, dummy_input, path, options);  // operator* refuses an empty holder
}

/// export_onnx in memory: the bytes the file would hold (for a browser, where there is no file
/// to write). @throws what trace_module throws.
inline std::vector<unsigned char> export_onnx_bytes(nn::Module& module, const Tensor& dummy_input,
                                                    const ExportOptions& options = {}) {
    return encode_model(trace_module(module, dummy_input, options));
}

}  // namespace nanotorch::onnx
