// nanotorch/onnx/fold.hpp — fold_batchnorm: merge each inference-form BatchNormalization into
// the Conv that feeds it, as torch.onnx.export does in eval mode.
//
// For Conv → BatchNormalization with every weight a FLOAT initializer, BN(conv(x, W, b)) is
// conv(x, W', b') with, per output channel o,
//   a_o = scale_o / √(var_o + eps),   W'[o, ...] = W[o, ...]·a_o,   b'_o = (b_o − mean_o)·a_o + B_o
// (computed in double, rounded once to float). The folded graph is one node shorter per pair and
// does the same arithmetic up to float rounding (README, "BatchNorm", gives the measured
// difference). Only a rewrite of an exported GraphProto: it never touches the module, and the
// folded weights get new names (<conv weight or bias>_bn_folded) so that load_onnx_weights cannot mistake
// them for the module's own conv weights. Pairs it cannot fold are left as they are: a Conv output
// that something else also reads (or that is the graph output), a weight shared with another
// node, or a statistic that is not a constant initializer.
#pragma once

#include <cmath>  // std::sqrt
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/onnx/model.hpp>
#include <nanotorch/onnx/proto.hpp>

namespace nanotorch::onnx {

/// Folds every foldable Conv → BatchNormalization pair of `g` in place (see the file comment) and
/// returns how many it folded. Throws parse_error / unsupported_error only for an initializer
/// whose payload does not match its dims (tensor_to_floats), which export never writes.
NANOTORCH_ONNX_API int fold_batchnorm(GraphProto& g)
#if !NANOTORCH_ONNX_BODIES
    ;
#else
{
    std::map<std::string, std::size_t> init;  // initializer name -> index
    for (std::size_t i = 0; i < g.initializer.size(); ++i) init[g.initializer[i].name] = i;
    std::map<std::string, int> uses;  // value name -> number of node inputs and graph outputs reading it
    for (const auto& n : g.node)
        for (const auto& s : n.input)
            if (!s.empty()) ++uses[s];
    for (const auto& o : g.output) ++uses[o.name];
    std::map<std::string, std::size_t> producer;
    for (std::size_t k = 0; k < g.node.size(); ++k)
        for (const auto& s : g.node[k].output) producer[s] = k;
    auto float_init = [&](const std::string& name) -> const TensorProto* {
        auto it = init.find(name);
        if (it == init.end()) return nullptr;
        const TensorProto& t = g.initializer[it->second];
        return t.data_type == static_cast<std::int32_t>(DataType::float32) ? &t : nullptr;
    };

    std::set<std::size_t> removed;  // folded BatchNormalization nodes
    int folded = 0;
    for (std::size_t k = 0; k < g.node.size(); ++k) {
        const NodeProto& bn = g.node[k];
        if (bn.op_type != "BatchNormalization" || bn.input.size() != 5 || bn.output.size() != 1) continue;
        auto p = producer.find(bn.input[0]);
        if (p == producer.end() || uses[bn.input[0]] != 1) continue;
        NodeProto& conv = g.node[p->second];
        if (conv.op_type != "Conv" || conv.input.size() < 2 || conv.output.size() != 1) continue;
        const bool has_bias = conv.input.size() > 2 && !conv.input[2].empty();
        const TensorProto* w = float_init(conv.input[1]);
        const TensorProto* b = has_bias ? float_init(conv.input[2]) : nullptr;
        if (!w || uses[conv.input[1]] != 1 || w->dims.empty() || (has_bias && (!b || uses[conv.input[2]] != 1)))
            continue;
        const TensorProto* st[4];  // scale, B, mean, var
        bool ok = true;
        for (std::size_t i = 0; i < 4; ++i) ok = ok && (st[i] = float_init(bn.input[i + 1])) != nullptr;
        if (!ok) continue;
        const std::int64_t O = w->dims[0];
        std::vector<float> v[4];
        for (std::size_t i = 0; i < 4; ++i) {
            v[i] = tensor_to_floats(*st[i]);
            ok = ok && static_cast<std::int64_t>(v[i].size()) == O;
        }
        std::vector<float> wv = tensor_to_floats(*w);
        std::vector<float> bv = b ? tensor_to_floats(*b) : std::vector<float>(static_cast<std::size_t>(O), 0.0f);
        if (!ok || O <= 0 || bv.size() != static_cast<std::size_t>(O) || wv.size() % static_cast<std::size_t>(O) != 0)
            continue;
        double eps = 1e-5;
        for (const auto& a : bn.attribute)
            if (a.name == "epsilon") eps = a.f;
        const std::size_t per = wv.size() / static_cast<std::size_t>(O);
        for (std::size_t o = 0; o < static_cast<std::size_t>(O); ++o) {
            // The variance and eps are added in float, as batch_norm's eval mode does.
            const double a = v[0][o] / std::sqrt(static_cast<double>(v[3][o] + static_cast<float>(eps)));
            for (std::size_t i = 0; i < per; ++i) wv[o * per + i] = static_cast<float>(wv[o * per + i] * a);
            bv[o] = static_cast<float>((static_cast<double>(bv[o]) - v[2][o]) * a + v[1][o]);
        }
        const std::string wname = conv.input[1] + "_bn_folded";
        const std::string bname = has_bias ? conv.input[2] + "_bn_folded" : conv.input[1] + "_bn_folded_bias";
        g.initializer.push_back(make_float_tensor(wname, w->dims, wv.data()));
        g.initializer.push_back(make_float_tensor(bname, {O}, bv.data()));
        // (w, b and st point into g.initializer: not used past this point.)
        for (std::size_t i = 0; i < 4; ++i) --uses[bn.input[i + 1]];
        --uses[conv.input[1]];
        if (has_bias) --uses[conv.input[2]];
        conv.input.resize(3);
        conv.input[1] = wname;
        conv.input[2] = bname;
        conv.output[0] = bn.output[0];
        removed.insert(k);
        ++folded;
    }
    if (folded == 0) return 0;
    std::vector<NodeProto> nodes;
    for (std::size_t k = 0; k < g.node.size(); ++k)
        if (!removed.count(k)) nodes.push_back(std::move(g.node[k]));
    g.node = std::move(nodes);
    std::vector<TensorProto> kept;  // drop the initializers nothing reads any more
    std::set<std::string> read;
    for (const auto& n : g.node)
        for (const auto& s : n.input) read.insert(s);
    for (auto& t : g.initializer)
        if (read.count(t.name)) kept.push_back(std::move(t));
    g.initializer = std::move(kept);
    return folded;
}
#endif

}  // namespace nanotorch::onnx
