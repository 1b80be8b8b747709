// nanotorch/onnx/runtime.hpp — run an ONNX graph on nanotorch's ops: Runtime (alias
// InferenceSession), load_onnx(path) and load_onnx_weights(module, path).
//
// A Runtime is built from a decoded ModelProto and validates everything before it will run: the
// graph must be wired (each node reads graph inputs, initializers or outputs of *earlier* nodes,
// value_error naming the node otherwise), and every feature it uses must be implemented (default
// domain opset 1..17 (before 7 only the operators whose old forms op_table.hpp follows), the
// element types of onnx/value.hpp (FLOAT, DOUBLE, BOOL, INT8..INT64, UINT8..UINT32), no external
// data, and the operators and
// attributes of onnx/op_table.hpp). All unsupported features are reported together in one
// unsupported_error, one "where: reason" per node, so a user sees the whole gap at once. run()
// binds named inputs (checking them against the declared types and shapes), executes the nodes in
// order under NoGradGuard, frees intermediate values after their last use, and returns the graph
// outputs. At load it also fuses each Conv with the inference-form BatchNormalization, residual
// Add or 2x2 MaxPool, and/or Relu that alone read its output, and each Gemm, MaxPool and
// AveragePool with such a Relu (RuntimeOptions::fuse;
// same bits as running them one by one), and resolves the windows of Conv and pooling nodes once
// (plan_windows), so that a run does not look up and copy their attributes again.
// Deliberately not here: other graph optimisation, shape inference, subgraphs (If/Loop),
// training, and FLOAT16/BFLOAT16/UINT64/STRING values.
#pragma once

#include <algorithm>  // std::max
#include <cstdint>
#include <map>
#include <memory>  // std::shared_ptr (fused steps stay copyable)
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/grad_mode.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/kernels/pointwise.hpp>  // parallel_relu_forward (a Relu fused into a Gemm)
#include <nanotorch/nn/module.hpp>
#include <nanotorch/nn/serialize.hpp>  // load_state_dict(module, entries, strict, source)
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/op_table.hpp>
#include <nanotorch/onnx/op_types.hpp>
#include <nanotorch/onnx/proto.hpp>

namespace nanotorch::onnx {

/// The default-domain opsets the runtime implements.
inline constexpr std::int64_t runtime_min_opset = 1;  // before 7 only the operators of oldest_opset()
inline constexpr std::int64_t runtime_max_opset = 17;

/// How a Runtime prepares and runs a model.
///  - fuse: run each Conv together with the nodes that alone read its output, in this order,
///    each optional: an inference-form BatchNormalization, an Add of a value computed before the
///    Conv (a residual block's shortcut) or a 2x2 stride-2 MaxPool (its planes pooled as they
///    are written, nanotorch::conv2d_max_pool2x2), a Relu (nanotorch::conv2d_fused), and after
///    a Relu not preceded by either, a 2x2 MaxPool; and each Gemm,
///    MaxPool and AveragePool with the Relu that alone reads its output. That gives the same bits
///    as running the nodes one by one and saves their passes over the output.
///  - max_work: a bound on one run's work, for models from sources you do not trust (0, the
///    default: none). A file of a few hundred bytes can legitimately ask for a 1024x1024 Conv
///    kernel over a tensor it made with Expand; the codec's limits bound memory, this bounds time.
///    Units: every element a node reads or writes (for an empty value, the product of its
///    non-zero extents: an op's loops may still visit those), plus the multiply-adds of Conv,
///    ConvTranspose, Gemm and MatMul, the window taps of the pools and the terms of LRN's sums
///    (rt_detail::WorkMeter). A run that would pass it throws limit_error naming the node, before
///    that node's loops start. The count depends only on the graph, the input shapes and `fuse`
///    (a node fused into its Conv is not charged apart). A node's output is counted once written,
///    so one node may still write up to the runtime's 2^30-element result cap (Expand, Tile, Pad)
///    before the bound trips; memory is what that cap bounds.
///  - prepack: pack the weight of each Conv whose weight is an initializer, once at load, in the
///    layout of the convolution kernel for small planes (output channels across the vector
///    lanes; nanotorch::pack_conv_weight), instead of on every run: 4 % of a batch-1 ResNet8
///    run. Costs one more copy of those weights (rounded up to 16 output channels per group, 8
///    on AVX2; not packed where that would more than double them); only where that kernel can
///    run (AVX-512 and AVX2 builds; 16 or more taps per output; not depthwise or 1x1 stride 1). The outputs
///    are the same bits either way.
struct RuntimeOptions {
    bool fuse = true;
    std::int64_t max_work = 0;
    bool prepack = true;
};

/// Named inputs/outputs of run() and run_values(), in graph order for outputs.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using NamedValues = std::vector<std::pair<std::string, Value>>;

/// One unsupported feature: where it is ("node 'conv1' (Conv)", "initializer 'w'", "input 'x'",
/// "model"), the node's op_type ("" for non-nodes) and why ("group = 2 (only 1)").
struct Issue {
    std::string where;
    std::string op;
    std::string reason;
};

namespace rt_detail {

inline std::string node_label(const NodeProto& n, std::size_t index) {
    return (n.name.empty() ? "node #" + std::to_string(index) : "node '" + n.name + "'") + " (" + n.op_type + ")";
}

inline bool supported_elem_type(std::int32_t t) { return runtime_type(t); }

inline std::string shape_text(const ValueInfoProto& v) {
    std::string s = "[";
    for (std::size_t d = 0; d < v.shape.size(); ++d)
        s += (d ? ", " : "") + (v.shape[d].has_value ? std::to_string(v.shape[d].value)
                                : v.shape[d].param.empty() ? std::string("?") : v.shape[d].param);
    return s + "]";
}

// Re-throws e with `context: ` in front of its message, keeping the exception's type.
[[noreturn]] inline void rethrow_with(const std::string& context) {
    try {
        throw;
    } catch (const shape_error& e) {
        throw shape_error(context + ": " + e.what());
    } catch (const value_error& e) {
        throw value_error(context + ": " + e.what());
    } catch (const unsupported_error& e) {
        throw unsupported_error(context + ": " + e.what());
    } catch (const limit_error& e) {
        throw limit_error(context + ": " + e.what());
    } catch (const parse_error&) {
        throw;  // already carries its own location
    } catch (const error& e) {
        throw error(context + ": " + e.what());
    }
}

}  // namespace rt_detail

class Runtime {
public:
    /// Validates `model` and prepares it for run(). Throws value_error (naming the node) when the
    /// graph reads an unknown value, is not in topological order, or defines a value twice;
    /// unsupported_error listing every unsupported feature (see unsupported_features()); the
    /// codec's parse_error when an initializer's payload does not match its dims.
    explicit Runtime(ModelProto model, RuntimeOptions options = {});

    /// How many BatchNormalization, Add and Relu nodes run inside the Conv or Gemm before them
    /// (RuntimeOptions).
    std::size_t fused_nodes() const { return fused_nodes_; }
    /// How many Conv weights were packed at load (RuntimeOptions::prepack).
    std::size_t packed_weights() const { return packed_weights_; }

    /// Every unsupported feature of `model` (empty when the runtime can run it). Does not check
    /// the graph's wiring (the constructor does).
    static std::vector<Issue> unsupported_features(const ModelProto& model);

    /// Runs the graph on float inputs, by graph-input name; returns the graph outputs in order
    /// (outputs of other element types converted to float). Outputs may share storage with the inputs or the
    /// model's weights (Identity, Reshape are views): clone() one before modifying it in place.
    /// Thread-safe: run() keeps all per-call state local. Throws value_error for a missing,
    /// unknown, repeated or wrongly typed input, shape_error naming the input when its shape
    /// contradicts the model's declaration, and errors from the ops prefixed with the failing node.
    /// Example: rt.run({{"input", images}})[0].second.
    NamedTensors run(const NamedTensors& inputs) const {
        NamedValues vs;
        for (const auto& [name, t] : inputs) vs.emplace_back(name, Value::of(t));
        NamedTensors out;
        for (auto& [name, v] : run_values(vs)) out.emplace_back(name, v.to_tensor());
        return out;
    }

    /// run() on Values, for models with inputs or outputs of other element types (INT64, BOOL,
    /// DOUBLE, ...: onnx/value.hpp); their outputs stay exact.
    NamedValues run_values(const NamedValues& inputs) const;

    /// The inputs run() takes (graph inputs; those with an initializer are optional overrides).
    const std::vector<ValueInfoProto>& inputs() const { return inputs_; }
    /// The graph inputs that have no initializer, i.e. the ones run() requires.
    std::vector<ValueInfoProto> required_inputs() const {
        std::vector<ValueInfoProto> r;
        for (std::size_t k = 0; k < inputs_.size(); ++k)
            if (!has_default_[k]) r.push_back(inputs_[k]);
        return r;
    }
    const std::vector<ValueInfoProto>& outputs() const { return model_.graph.output; }
    std::int64_t opset() const { return opset_; }
    const ModelProto& model() const { return model_; }

private:
    struct Step {
        const rt_detail::OpSpec* spec = nullptr;
        std::vector<int> in, out;       // slot per node input/output; -1 = omitted
        std::vector<int> release;       // slots whose last reader is this node
        bool precomputed = false;       // Constant: evaluated once at construction
        std::shared_ptr<const rt_detail::ConvFusion> fusion;  // a Conv running the nodes after it
        bool fused_away = false;        // a node a Conv or Gemm before it runs (its releases still apply)
        bool relu_after = false;        // a Gemm or pool whose sole reader, a Relu, it runs on its own result
        std::shared_ptr<const rt_detail::Window> window;  // a Conv's or pool's window, resolved at load
        std::shared_ptr<const PackedConvWeight> packed;    // a Conv's constant weight, packed at load
    };

    // A Conv step with the nodes fused into it. When the fused Add's other operand does not fit
    // the epilogue (a broadcast, another element type: known only now), the Conv runs with its
    // BatchNormalization alone and the Add and Relu nodes run here as they are, on their own ops.
    std::vector<Value> run_fused(const rt_detail::OpArgs& args, const rt_detail::ConvFusion& fusion) const;

    // The load-time fusion (RuntimeOptions::fuse): a Conv takes over the chain of nodes that
    // alone read its output, each part optional, in this order: an inference-form
    // BatchNormalization with constant statistics; an Add of a value that exists before the Conv
    // runs (a graph input, a constant, or an earlier node's output: a residual block's shortcut);
    // a Relu. The Conv step then writes the last fused node's output, and reads the Add's other
    // operand as its input #3. Chains it cannot prove safe are left as they are: an intermediate
    // value that is a graph output or read twice, statistics that are not constants or do not
    // make a per-channel map (batch_norm_eval_affine throws), an Add operand computed after the Conv.
    void fuse_conv_chains();

    // The Relu fused into a Gemm, MaxPool or AveragePool: relu's own kernel over the node's
    // result, which run_gemm (linear, mul, add) and run_pool (max_pool2d, avg_pool2d, their
    // explicit-padding and dilated forms, a 1-D result's reshape of its 2-D one) always allocate
    // afresh, so nothing else sees it change; the same bits as the Relu node's new tensor.
    static void relu_in_place(Value& v) {
        Tensor& t = v.f;
        NANOTORCH_CHECK(v.is_float() && t.defined() && t.is_contiguous(), value_error,
                        "a fused Relu needs its node's float result in one piece");
        kernels::parallel_relu_forward(t.data_ptr(), t.data_ptr(), t.numel());
    }

    // Assigns a slot to every value and checks the wiring; throws value_error naming the node.
    void build_plan();

    // Evaluates Constant nodes once, so run() only copies their handles.
    void prepare_constants();

    // Resolves the windows of Conv (with a constant weight), MaxPool and AveragePool nodes once
    // (rt_detail::static_window), so that a run does not look their attributes up and copy them.
    void plan_windows();

    // Packs the constant weight of each Conv whose window plan_windows resolved
    // (RuntimeOptions::prepack; nanotorch::pack_conv_weight).
    void prepack_weights();

    void bind(std::vector<Value>& local, std::vector<const Value*>& at, std::vector<bool>& bound,
              const std::string& name, const Value& v) const;

    ModelProto model_;
    std::int64_t max_work_ = 0;  // RuntimeOptions::max_work
    std::int64_t opset_ = 0;
    std::map<std::string, int> slot_of_;
    std::vector<Value> prefilled_;          // initializers and Constant outputs; empty elsewhere
    std::vector<unsigned char> is_constant_;  // per slot: 1 when prefilled_ holds its value
    std::size_t max_node_inputs_ = 0;
    std::set<int> constant_slots_;
    std::vector<ValueInfoProto> inputs_;
    std::vector<bool> has_default_;
    std::vector<int> input_slots_, output_slots_;
    std::vector<Step> steps_;
    std::size_t fused_nodes_ = 0;
    std::size_t packed_weights_ = 0;
};

// Runtime's heavy members, defined outside the class so that NANOTORCH_ONNX_EXTERN (config.hpp) can
// leave them to one translation unit.
#if NANOTORCH_ONNX_BODIES

NANOTORCH_ONNX_API Runtime::Runtime(ModelProto model, RuntimeOptions options)
    : model_(std::move(model)), max_work_(options.max_work) {
    NANOTORCH_CHECK(max_work_ >= 0, value_error, "RuntimeOptions::max_work must be >= 0 (0: no bound), got ",
                    max_work_);
    opset_ = model_.default_opset();
    build_plan();
    const std::vector<Issue> issues = unsupported_features(model_);
    if (!issues.empty()) {
        std::string msg = "ONNX model uses " + std::to_string(issues.size()) +
                          " feature(s) nanotorch does not support: ";
        for (std::size_t k = 0; k < issues.size(); ++k)
            msg += (k ? "; " : "") + issues[k].where + ": " + issues[k].reason;
        throw unsupported_error(msg);
    }
    prepare_constants();
    // Slots whose value is fixed at construction (initializers, Constant outputs). Kept as
    // flags, not pointers into prefilled_, so that copying a Runtime stays correct.
    is_constant_.assign(prefilled_.size(), 0);
    for (const int slot : constant_slots_) is_constant_[static_cast<std::size_t>(slot)] = 1;
    for (const Step& s : steps_) {
        if (s.precomputed && !s.out.empty() && s.out[0] >= 0) is_constant_[static_cast<std::size_t>(s.out[0])] = 1;
    }
    plan_windows();
    if (options.prepack) prepack_weights();
    if (options.fuse) fuse_conv_chains();
    for (const Step& s : steps_) max_node_inputs_ = std::max(max_node_inputs_, s.in.size());  // fused: + 1
}

NANOTORCH_ONNX_API std::vector<Issue> Runtime::unsupported_features(const ModelProto& model) {
    using namespace rt_detail;
    std::vector<Issue> out;
    const std::int64_t opset = model.default_opset();
    if (opset == 0)
        out.push_back({"model", "", "does not import the default ONNX operator set"});
    else if (opset < runtime_min_opset || opset > runtime_max_opset)
        out.push_back({"model", "", str_cat("default-domain opset ", opset, " (supported: ", runtime_min_opset,
                                            "..", runtime_max_opset, ")")});
    for (const auto& t : model.graph.initializer) {
        if (t.data_location == 1) out.push_back({"initializer '" + t.name + "'", "", "external data"});
        if (!supported_elem_type(t.data_type))
            out.push_back({"initializer '" + t.name + "'", "", "element type " + dtype_name(t.data_type)});
    }
    std::set<std::string> inits;
    for (const auto& t : model.graph.initializer) inits.insert(t.name);
    auto check_io = [&](const std::vector<ValueInfoProto>& vs, const char* kind) {
        for (const auto& v : vs)
            if (!inits.count(v.name) && !supported_elem_type(v.elem_type))
                out.push_back({std::string(kind) + " '" + v.name + "'", "",
                               v.elem_type == 0 ? std::string("not a tensor (sequence, map or optional type)")
                                                : "element type " + dtype_name(v.elem_type)});
    };
    check_io(model.graph.input, "input");
    check_io(model.graph.output, "output");
    const auto& table = op_table();
    std::map<std::string, DataType> types;  // element types known at load (onnx/op_types.hpp)
    for (const auto& v : model.graph.input) types[v.name] = static_cast<DataType>(v.elem_type);
    for (const auto& t : model.graph.initializer) types[t.name] = static_cast<DataType>(t.data_type);
    for (std::size_t k = 0; k < model.graph.node.size(); ++k) {
        const NodeProto& n = model.graph.node[k];
        const std::string where = node_label(n, k);
        std::vector<DataType> in_types;
        for (const auto& name : n.input) {
            const auto t = types.find(name);
            in_types.push_back(t == types.end() ? DataType::undefined : t->second);
        }
        for (std::size_t j = 0; j < n.output.size(); ++j) types[n.output[j]] = output_type(n, opset, in_types, j);
        if (!n.domain.empty() && n.domain != "ai.onnx") {
            out.push_back({where, n.op_type, "operator domain '" + n.domain + "'"});
            continue;
        }
        const auto it = table.find(n.op_type);
        if (it == table.end()) {
            out.push_back({where, n.op_type, "operator not implemented"});
            continue;
        }
        const OpSpec& spec = it->second;
        std::size_t outputs = n.output.size();
        while (outputs > 0 && n.output[outputs - 1].empty()) --outputs;  // trailing "" = not requested
        std::string why;
        if (opset >= 1 && opset < oldest_opset(n.op_type))
            why = str_cat(n.op_type, " at opset ", opset, " (nanotorch implements it from opset ",
                          oldest_opset(n.op_type), ")");
        if (why.empty() && (n.input.size() < spec.min_inputs || n.input.size() > spec.max_inputs)) {
            why = str_cat(n.input.size(), " inputs (expected ", spec.min_inputs, "..", spec.max_inputs, ")");
        }
        if (why.empty() && spec.check && opset >= runtime_min_opset && opset <= runtime_max_opset) {
            try {
                why = spec.check(n, opset);
            } catch (const error& e) {  // a malformed attribute is reported, not thrown, here
                why = e.what();
            }
        }
        if (why.empty()) why = check_input_type(n, opset, in_types.empty() ? DataType::undefined : in_types[0]);
        if (why.empty() && outputs > spec.max_outputs)
            why = str_cat("optional output #", outputs, " ('", n.output[outputs - 1], "') is not implemented");
        if (!why.empty()) out.push_back({where, n.op_type, why});
    }
    return out;
}

NANOTORCH_ONNX_API NamedValues Runtime::run_values(const NamedValues& inputs) const {
    using namespace rt_detail;
    NoGradGuard no_grad;
    // Per-call state: `local` holds the values this call computes or binds; `at` points at
    // every live value, starting from the constants, which are read in place and never copied.
    std::vector<Value> local(prefilled_.size());
    std::vector<const Value*> at(prefilled_.size(), nullptr);
    for (std::size_t k = 0; k < at.size(); ++k)
        if (is_constant_[k]) at[k] = &prefilled_[k];
    std::vector<bool> bound(inputs_.size(), false);
    for (const auto& [name, v] : inputs) bind(local, at, bound, name, v);
    for (std::size_t k = 0; k < inputs_.size(); ++k)
        NANOTORCH_CHECK(bound[k] || has_default_[k], value_error, "run: missing input '", inputs_[k].name, "'");
    std::vector<const Value*> in;  // one buffer for every node's input list
    in.reserve(max_node_inputs_);
    WorkMeter meter(max_work_);
    for (std::size_t k = 0; k < steps_.size(); ++k) {
        const Step& s = steps_[k];
        const NodeProto& n = model_.graph.node[k];
        if (!s.precomputed && !s.fused_away) {
            in.clear();
            for (const int slot : s.in) in.push_back(slot < 0 ? nullptr : at[static_cast<std::size_t>(slot)]);
            OpArgs args{n, opset_, std::move(in), &meter, s.window.get(), s.packed.get()};
            std::vector<Value> outs;
            try {
                for (const Value* v : args.in)
                    if (v) meter.charge(extent_work(v->shape));
                outs = s.fusion ? run_fused(args, *s.fusion) : s.spec->run(args);
                if (s.relu_after) relu_in_place(outs[0]);
                for (const Value& v : outs) {
                    // Every op bounds its result; this makes it a property of every value the
                    // next node can see, empty ones included (see check_result_size).
                    check_result_size(v.shape, n.op_type);
                    meter.charge(extent_work(v.shape));
                }
            } catch (const error&) {
                rethrow_with(node_label(n, k));
            }
            in = std::move(args.in);
            for (std::size_t j = 0; j < s.out.size() && j < outs.size(); ++j) {
                if (s.out[j] < 0) continue;
                const auto slot = static_cast<std::size_t>(s.out[j]);
                local[slot] = std::move(outs[j]);
                at[slot] = &local[slot];
            }
        }
        for (const int slot : s.release) {
            local[static_cast<std::size_t>(slot)] = Value();
            at[static_cast<std::size_t>(slot)] = nullptr;
        }
    }
    NamedValues out;
    out.reserve(model_.graph.output.size());
    for (std::size_t k = 0; k < model_.graph.output.size(); ++k) {
        const Value* v = at[static_cast<std::size_t>(output_slots_[k])];
        NANOTORCH_CHECK(v != nullptr, value_error, "graph output '", model_.graph.output[k].name,
                        "' was not produced (its node returned fewer outputs)");
        out.emplace_back(model_.graph.output[k].name, *v);
        Value& o = out.back().second;  // a Slice or Reshape view: hand out row-major data
        if (o.is_float() && !o.f.is_contiguous()) o.f = o.f.contiguous();
    }
    return out;
}

NANOTORCH_ONNX_API std::vector<Value> Runtime::run_fused(const rt_detail::OpArgs& args,
                                                     const rt_detail::ConvFusion& fusion) const {
    using namespace rt_detail;
    bool tail_left = false;
    std::vector<Value> y = run_conv_fused(args, fusion, &tail_left);
    if (!tail_left) return y;
    const auto node_run = [&](std::size_t k, std::vector<const Value*> in) {
        const NodeProto& n = model_.graph.node[k];
        try {
            return steps_[k].spec->run(OpArgs{n, opset_, std::move(in), args.meter});
        } catch (const error&) {
            rethrow_with(node_label(n, k));
        }
    };
    const Value* r = args.in[fusion.residual_input];
    y = node_run(fusion.add_node, fusion.residual_first ? std::vector<const Value*>{r, &y[0]}
                                                         : std::vector<const Value*>{&y[0], r});
    if (fusion.relu) y = node_run(fusion.relu_node, {&y[0]});
    return y;
}

NANOTORCH_ONNX_API void Runtime::fuse_conv_chains() {
    using namespace rt_detail;
    std::map<int, int> reads;  // slot -> number of node inputs reading it
    std::map<int, std::size_t> reader;
    for (std::size_t k = 0; k < steps_.size(); ++k)
        for (const int slot : steps_[k].in)
            if (slot >= 0) {
                ++reads[slot];
                reader[slot] = k;
            }
    for (const int slot : output_slots_) reads[slot] += 2;  // a graph output is never fused away
    std::map<int, std::size_t> producer;  // slot -> the node computing it (none: input, initializer)
    for (std::size_t k = 0; k < steps_.size(); ++k)
        for (const int slot : steps_[k].out)
            if (slot >= 0) producer[slot] = k;
    const auto sole_reader = [&](int slot) -> Step* {
        if (slot < 0 || reads[slot] != 1) return nullptr;
        Step& r = steps_[reader[slot]];
        return r.precomputed || r.fused_away || r.fusion ? nullptr : &r;
    };
    const auto single_output = [&](const Step& st, const NodeProto& n) {
        std::size_t outs = n.output.size();
        while (outs > 0 && n.output[outs - 1].empty()) --outs;
        return outs == 1 && st.out[0] >= 0;
    };
    const auto node_of = [&](const Step& st) -> const NodeProto& {
        return model_.graph.node[static_cast<std::size_t>(&st - steps_.data())];
    };
    const auto is_default_domain = [](const NodeProto& n) { return n.domain.empty() || n.domain == "ai.onnx"; };
    for (Step& conv : steps_) {
        const NodeProto& cn = node_of(conv);
        if (cn.op_type != "Conv" || !is_default_domain(cn) || conv.precomputed || conv.fused_away ||
            !single_output(conv, cn))
            continue;
        ConvFusion f;
        Step* bn = nullptr;
        Step* last = nullptr;
        Step* next = sole_reader(conv.out[0]);
        if (next && node_of(*next).op_type == "BatchNormalization" && is_default_domain(node_of(*next)) &&
            next->in.size() == 5 && next->in[0] == conv.out[0] && single_output(*next, node_of(*next))) {
            bool constant = true;
            for (std::size_t i = 1; i < 5; ++i)
                constant = constant && next->in[i] >= 0 && is_constant_[static_cast<std::size_t>(next->in[i])] &&
                           prefilled_[static_cast<std::size_t>(next->in[i])].is_float();
            if (constant) {
                const auto t = [&](std::size_t i) { return prefilled_[static_cast<std::size_t>(next->in[i])].f; };
                try {
                    auto ab = batch_norm_eval_affine(t(3), t(4), t(1), t(2),
                                                     attr_float(node_of(*next), "epsilon", 1e-5f));
                    f.scale = std::move(ab.first);
                    f.shift = std::move(ab.second);
                    bn = last = next;
                } catch (const error&) {  // left to the BatchNormalization node's own checks
                }
            }
        }
        // A 2x2 MaxPool next (LeNet's conv -> pool -> relu): the planes pooled as they are written;
        // no Add after it (the epilogue adds residuals before any pooling).
        // Only after a Conv whose weight is a 4-D constant: a 2-D convolution, as the 2x2 window needs
        // (a 1-D Conv's error stays the MaxPool node's own).
        const int wslot = conv.in.size() > 1 ? conv.in[1] : -1;
        const bool conv_2d = wslot >= 0 && is_constant_[static_cast<std::size_t>(wslot)] &&
                             prefilled_[static_cast<std::size_t>(wslot)].shape.size() == 4;
        const auto pool2x2 = [&](Step* st) {
            return conv_2d && st && is_pool2x2_node(node_of(*st)) && is_default_domain(node_of(*st)) &&
                   st->in.size() == 1 && single_output(*st, node_of(*st));
        };
        Step* pool = sole_reader(last ? last->out[0] : conv.out[0]);
        if (pool2x2(pool)) {
            f.max_pool2x2 = true;
            last = pool;
        } else {
            pool = nullptr;
        }
        Step* add = pool ? nullptr : sole_reader(last ? last->out[0] : conv.out[0]);
        if (add && node_of(*add).op_type == "Add" && is_default_domain(node_of(*add)) && add->in.size() == 2 &&
            single_output(*add, node_of(*add))) {
            const int mine = last ? last->out[0] : conv.out[0];
            const bool first = add->in[1] == mine;  // the other operand is the Add's first
            const int other = add->in[first ? 0 : 1];
            const auto made = producer.find(other);
            const auto conv_index = static_cast<std::size_t>(&conv - steps_.data());
            if (other >= 0 && (made == producer.end() || made->second < conv_index)) {
                f.residual = true;
                f.residual_first = first;
                f.add_node = static_cast<std::size_t>(add - steps_.data());
                conv.in.resize(ConvFusion::residual_input, -1);
                conv.in.push_back(other);
                last = add;
            } else {
                add = nullptr;
            }
        } else {
            add = nullptr;
        }
        Step* relu = sole_reader(last ? last->out[0] : conv.out[0]);
        if (relu && node_of(*relu).op_type == "Relu" && is_default_domain(node_of(*relu)) && relu->in.size() == 1 &&
            single_output(*relu, node_of(*relu))) {
            f.relu = true;
            f.relu_node = static_cast<std::size_t>(relu - steps_.data());
            last = relu;
        } else {
            relu = nullptr;
        }
        if (relu && !pool && !add) {  // Conv -> Relu -> 2x2 MaxPool (VGG's order): the relu first
            Step* after = sole_reader(relu->out[0]);
            if (pool2x2(after)) {
                f.max_pool2x2 = true;
                f.relu_before_pool = true;
                pool = last = after;
            }
        }
        if (!last) continue;
        for (Step* st : {bn, pool, add, relu})
            if (st) {
                st->fused_away = true;
                ++fused_nodes_;
            }
        conv.out[0] = last->out[0];
        conv.fusion = std::make_shared<const ConvFusion>(std::move(f));
    }
    // A Gemm, MaxPool or AveragePool and the Relu that alone reads its output (a classifier's
    // hidden layer; the seed net's pool -> relu): the ReLU runs over the node's fresh result in
    // place (relu_in_place), one pass and one tensor fewer.
    for (Step& producer : steps_) {
        const NodeProto& pn = node_of(producer);
        const bool producer_ok = pn.op_type == "Gemm" || pn.op_type == "MaxPool" || pn.op_type == "AveragePool";
        if (!producer_ok || !is_default_domain(pn) || producer.precomputed || producer.fused_away ||
            !single_output(producer, pn))
            continue;
        Step* relu = sole_reader(producer.out[0]);
        if (!relu || node_of(*relu).op_type != "Relu" || !is_default_domain(node_of(*relu)) || relu->in.size() != 1 ||
            !single_output(*relu, node_of(*relu)))
            continue;
        relu->fused_away = true;
        ++fused_nodes_;
        producer.relu_after = true;
        producer.out[0] = relu->out[0];
    }
}

NANOTORCH_ONNX_API void Runtime::build_plan() {
    using namespace rt_detail;
    const GraphProto& g = model_.graph;
    std::map<std::string, std::size_t> producer;  // value -> index of the node producing it
    for (std::size_t k = 0; k < g.node.size(); ++k)
        for (const auto& o : g.node[k].output)
            if (!o.empty() && !producer.count(o)) producer[o] = k;
    auto new_slot = [&](const std::string& name, const std::string& who) {
        NANOTORCH_CHECK(!slot_of_.count(name), value_error, who, " defines '", name,
                        "', which is already defined (ONNX values are assigned once)");
        slot_of_[name] = static_cast<int>(prefilled_.size());
        prefilled_.emplace_back();
        return slot_of_[name];
    };
    std::map<std::string, Value> inits;
    for (const auto& t : g.initializer) {
        NANOTORCH_CHECK(!inits.count(t.name), value_error, "initializer '", t.name, "' appears twice");
        inits[t.name] = supported_elem_type(t.data_type) && t.data_location != 1 ? value_from_proto(t) : Value();
    }
    for (const auto& in : g.input) {
        inputs_.push_back(in);
        has_default_.push_back(inits.count(in.name) > 0);
        input_slots_.push_back(new_slot(in.name, "graph input '" + in.name + "'"));
    }
    for (auto& [name, v] : inits) {
        const auto it = slot_of_.find(name);
        const int slot = it != slot_of_.end() ? it->second : new_slot(name, "initializer '" + name + "'");
        prefilled_[static_cast<std::size_t>(slot)] = std::move(v);
        constant_slots_.insert(slot);
    }
    const auto& table = op_table();
    std::map<int, std::size_t> last_read;
    for (std::size_t k = 0; k < g.node.size(); ++k) {
        const NodeProto& n = g.node[k];
        Step s;
        const auto it = table.find(n.op_type);
        s.spec = it == table.end() ? nullptr : &it->second;
        s.precomputed = n.op_type == "Constant";
        for (const auto& name : n.input) {
            if (name.empty()) {
                s.in.push_back(-1);
                continue;
            }
            const auto found = slot_of_.find(name);
            if (found == slot_of_.end()) {
                const auto p = producer.find(name);
                NANOTORCH_CHECK(p == producer.end(), value_error, node_label(n, k), " reads '", name,
                                "' before ", node_label(g.node[p->second], p->second),
                                " produces it: nodes must be in topological order");
                throw value_error(node_label(n, k) + " reads '" + name +
                                  "', which is not a graph input, an initializer or the output of any node");
            }
            s.in.push_back(found->second);
            last_read[found->second] = k;
        }
        for (const auto& name : n.output) s.out.push_back(name.empty() ? -1 : new_slot(name, node_label(n, k)));
        steps_.push_back(std::move(s));
    }
    std::set<int> kept(constant_slots_);
    for (const auto& o : g.output) {
        const auto found = slot_of_.find(o.name);
        NANOTORCH_CHECK(found != slot_of_.end(), value_error, "graph output '", o.name,
                        "' is not produced by any node, input or initializer");
        output_slots_.push_back(found->second);
        kept.insert(found->second);
    }
    for (const auto& [slot, k] : last_read)
        if (!kept.count(slot)) steps_[k].release.push_back(slot);
    for (std::size_t k = 0; k < steps_.size(); ++k)  // outputs nobody reads: dropped at once
        for (const int slot : steps_[k].out)
            if (slot >= 0 && !kept.count(slot) && !last_read.count(slot)) steps_[k].release.push_back(slot);
}

NANOTORCH_ONNX_API void Runtime::prepare_constants() {
    for (std::size_t k = 0; k < steps_.size(); ++k) {
        Step& s = steps_[k];
        if (!s.precomputed) continue;
        const NodeProto& n = model_.graph.node[k];
        try {
            std::vector<Value> v = s.spec->run(rt_detail::OpArgs{n, opset_, {}});
            if (s.out[0] >= 0) prefilled_[static_cast<std::size_t>(s.out[0])] = std::move(v[0]);
        } catch (const error&) {
            rt_detail::rethrow_with(rt_detail::node_label(n, k));
        }
    }
}

NANOTORCH_ONNX_API void Runtime::plan_windows() {
    using namespace rt_detail;
    for (std::size_t k = 0; k < steps_.size(); ++k) {
        Step& s = steps_[k];
        const NodeProto& n = model_.graph.node[k];
        if (s.precomputed || !(n.domain.empty() || n.domain == "ai.onnx")) continue;
        std::optional<Window> w;
        const bool constant_weight =
            s.in.size() >= 2 && s.in[1] >= 0 && is_constant_[static_cast<std::size_t>(s.in[1])];
        if (n.op_type == "Conv" && constant_weight) {
            const Value& weight = prefilled_[static_cast<std::size_t>(s.in[1])];
            if (!weight.is_float() || weight.shape.size() < 3) continue;  // the run reports it
            const Shape kernel(weight.shape.begin() + 2, weight.shape.end());
            const AttributeProto* ks = find_attr(n, "kernel_shape");
            if (ks && ks->ints != kernel) continue;  // likewise
            w = static_window(n, kernel);
        } else if (n.op_type == "MaxPool" || n.op_type == "AveragePool") {
            if (const AttributeProto* ks = find_attr(n, "kernel_shape")) w = static_window(n, ks->ints);
        }
        if (w) s.window = std::make_shared<const Window>(std::move(*w));
    }
}

NANOTORCH_ONNX_API void Runtime::prepack_weights() {
    using namespace rt_detail;
    for (std::size_t k = 0; k < steps_.size(); ++k) {
        Step& s = steps_[k];
        const NodeProto& n = model_.graph.node[k];
        if (!s.window || n.op_type != "Conv") continue;  // plan_windows: a Conv with a constant float weight
        const Window& w = *s.window;
        const Tensor& weight = prefilled_[static_cast<std::size_t>(s.in[1])].f;
        const std::size_t sp = w.kernel.size();
        if ((sp != 1 && sp != 2) || weight.dim() != static_cast<std::int64_t>(sp) + 2 || !weight.is_contiguous())
            continue;  // the run reports what is wrong
        const auto pick = [&](const Shape& v, std::int64_t one_d) {
            return sp == 1 ? Pair2d(one_d, v[0]) : Pair2d(v[0], v[1]);
        };
        Shape pads(sp);
        for (std::size_t d = 0; d < sp; ++d) pads[d] = std::max(w.pad_begin[d], w.pad_end[d]);
        try {
            // The packing rounds each group's output channels up to 16: at most twice the weight
            // (a file's 1-channel Conv with a huge kernel must not make load allocate 16 times it).
            const std::int64_t group = attr_int(n, "group", 1), out = weight.size(0);
            if (group < 1 || out % group != 0 || (out / group + 15) / 16 * 16 * group > 2 * out) continue;
            const Tensor w4 = sp == 1 ? reshape(weight, {weight.size(0), weight.size(1), 1, weight.size(2)}) : weight;
            PackedConvWeight p = pack_conv_weight(w4, group, pick(w.stride, 1), pick(pads, 0), pick(w.dilation, 1));
            if (!p.data.defined()) continue;
            s.packed = std::make_shared<const PackedConvWeight>(std::move(p));
            ++packed_weights_;
        } catch (const error&) {  // left to the node's own checks at run time
        }
    }
}

NANOTORCH_ONNX_API void Runtime::bind(std::vector<Value>& local, std::vector<const Value*>& at,
                                      std::vector<bool>& bound, const std::string& name, const Value& v) const {
    using namespace rt_detail;
    std::size_t k = 0;
    while (k < inputs_.size() && inputs_[k].name != name) ++k;
    if (k == inputs_.size()) {
        std::string names;
        for (const auto& in : inputs_) names += (names.empty() ? "" : ", ") + in.name;
        throw value_error("run: '" + name + "' is not an input of the model (inputs: " + names + ")");
    }
    NANOTORCH_CHECK(!bound[k], value_error, "run: input '", name, "' given twice");
    const ValueInfoProto& info = inputs_[k];
    NANOTORCH_CHECK(static_cast<std::int32_t>(v.type) == info.elem_type, value_error, "run: input '", name,
                    "' must be ", dtype_name(info.elem_type), ", got ", dtype_name(v.type));
    NANOTORCH_CHECK(!v.is_float() || v.f.defined(), value_error, "run: input '", name, "' is an undefined tensor");
    if (info.has_shape) {
        bool ok = v.shape.size() == info.shape.size();
        for (std::size_t d = 0; ok && d < v.shape.size(); ++d)
            ok = !info.shape[d].has_value || info.shape[d].value == v.shape[d];
        NANOTORCH_CHECK(ok, shape_error, "run: input '", name, "' has shape ", shape_str(v.shape),
                        " but the model declares ", shape_text(info));
    }
    bound[k] = true;
    const auto slot = static_cast<std::size_t>(input_slots_[k]);
    local[slot] = v;
    at[slot] = &local[slot];
}

#endif  // NANOTORCH_ONNX_BODIES

/// The ONNX Runtime-style name for the same class.
using InferenceSession = Runtime;

/// Reads and validates the model at `path`. Throws io_error / parse_error from the codec, then as
/// Runtime's constructor.
inline Runtime load_onnx(const std::string& path, const Limits& limits = {}, RuntimeOptions options = {}) {
    return Runtime(read_model(path, limits), options);
}

/// Copies the FLOAT initializers of the model at `path` into `module`'s parameters and buffers of
/// the same dotted names (conv1.weight ...), as nn::load_state_dict does: with `strict`, a
/// parameter the file lacks is a value_error listing all of them (BatchNorm's num_batches_tracked
/// excepted: ONNX files never hold it, so it keeps its value); a shape mismatch is a
/// shape_error naming the parameter; nothing is changed on error. Initializers that name no
/// parameter are the graph's constants (Reshape shapes, normalisation scalars) and are skipped.
/// Throws io_error / parse_error / unsupported_error (external data) from reading.
inline void load_onnx_weights(nn::Module& module, const ModelProto& model, bool strict = true,
                              const std::string& source = "ONNX model");

inline void load_onnx_weights(nn::Module& module, const std::string& path, bool strict = true,
                              const Limits& limits = {}) {
    load_onnx_weights(module, read_model(path, limits), strict, path);
}

/// The same for a model already in memory (decode_model on bytes from a browser, say); `source`
/// labels the errors in place of a path. Throws value_error / shape_error as above.
inline void load_onnx_weights(nn::Module& module, const ModelProto& model, bool strict, const std::string& source) {
    std::set<std::string> wanted;
    for (const auto& e : nn::state_dict(module)) wanted.insert(e.first);
    NamedTensors entries;
    std::set<std::string> found;
    for (const auto& t : model.graph.initializer)
        if (t.data_type == static_cast<std::int32_t>(DataType::float32) && wanted.count(t.name)) {
            entries.emplace_back(t.name, value_from_proto(t).f);
            found.insert(t.name);
        }
    // BatchNorm's num_batches_tracked is training state, not an inference weight, and no exporter
    // writes it (torch.onnx neither): the module keeps its own value.
    const std::string counter = "num_batches_tracked";
    for (const auto& e : nn::state_dict(module))
        if (!found.count(e.first) && e.first.size() >= counter.size() &&
            e.first.compare(e.first.size() - counter.size(), counter.size(), counter) == 0 &&
            (e.first.size() == counter.size() || e.first[e.first.size() - counter.size() - 1] == '.'))
            entries.emplace_back(e.first, e.second.detach());
    nn::load_state_dict(module, entries, strict, source);
}

}  // namespace nanotorch::onnx
