// nanotorch/core/trace.hpp — the hook through which ops describe themselves to an exporter.
//
// While a Tracer is active on the calling thread (TraceGuard), every op that runs reports the
// ONNX node(s) that compute exactly what it just computed: op type, inputs, outputs and
// attributes, in ONNX vocabulary and for the tracer's opset. The op writes that mapping right
// next to its forward and backward (trace::active() checks), so export can never drift from
// training. This header defines only the interface; onnx/export.hpp implements it.
//
// Tensors are identified by their TensorImpl, so the tracer keeps every tensor it is shown
// alive until tracing ends (an address can then never be reused for another tensor).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/core/tensor.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::trace {

/// One ONNX attribute value: exactly one of the members is meaningful, as `kind` says.
struct Attr {
    enum class Kind { Int, Float, Ints, Floats, String };
    std::string name;
    Kind kind = Kind::Int;
    std::int64_t i = 0;
    float f = 0.0f;
    std::vector<std::int64_t> ints;
    std::vector<float> floats;
    std::string s;
};

inline Attr attr(std::string name, std::int64_t v) {
    Attr a;
    a.name = std::move(name);
    a.kind = Attr::Kind::Int;
    a.i = v;
    return a;
}
inline Attr attr(std::string name, float v) {
    Attr a;
    a.name = std::move(name);
    a.kind = Attr::Kind::Float;
    a.f = v;
    return a;
}
inline Attr attr(std::string name, std::vector<std::int64_t> v) {
    Attr a;
    a.name = std::move(name);
    a.kind = Attr::Kind::Ints;
    a.ints = std::move(v);
    return a;
}
inline Attr attr(std::string name, std::vector<float> v) {
    Attr a;
    a.name = std::move(name);
    a.kind = Attr::Kind::Floats;
    a.floats = std::move(v);
    return a;
}
inline Attr attr(std::string name, std::string v) {
    Attr a;
    a.name = std::move(name);
    a.kind = Attr::Kind::String;
    a.s = std::move(v);
    return a;
}

/// A node input: a traced tensor (a graph input, a parameter or an earlier op's output), a
/// constant (float tensor or int64 values, stored as an initializer), or an omitted optional.
struct Input {
    enum class Kind { Tensor, FloatConstant, Int64Constant, Omitted };
    Kind kind = Kind::Omitted;
    nanotorch::Tensor tensor;            // Tensor or FloatConstant
    std::vector<std::int64_t> ints;      // Int64Constant values
    Shape ints_shape;                    // Int64Constant dims ({} = scalar)
};

inline Input value(const nanotorch::Tensor& t) {
    Input in;
    in.kind = t.defined() ? Input::Kind::Tensor : Input::Kind::Omitted;
    in.tensor = t;
    return in;
}
/// A float constant with t's values (t is copied; later changes to t do not affect it).
inline Input float_constant(const nanotorch::Tensor& t) {
    Input in;
    in.kind = Input::Kind::FloatConstant;
    in.tensor = tensor(t.to_vector(), t.shape());
    return in;
}
inline Input scalar_constant(float v) { return float_constant(scalar_tensor(v)); }
/// A 1-D int64 constant (shapes, axes, starts/ends).
inline Input int64_constant(std::vector<std::int64_t> values) {
    Input in;
    in.kind = Input::Kind::Int64Constant;
    in.ints_shape = {static_cast<std::int64_t>(values.size())};
    in.ints = std::move(values);
    return in;
}
/// A 0-D int64 constant (a Gather index).
inline Input int64_scalar(std::int64_t v) {
    Input in;
    in.kind = Input::Kind::Int64Constant;
    in.ints = {v};
    return in;
}

class Tracer {
public:
    virtual ~Tracer() = default;
    /// The default-domain opset the graph is written for.
    virtual std::int64_t opset() const = 0;
    /// Appends one node computing `outputs` from `inputs`.
    virtual void emit(const std::string& op_type, const std::vector<Input>& inputs,
                      const std::vector<nanotorch::Tensor>& outputs, std::vector<Attr> attrs = {}) = 0;
    /// Records that `output` is the same value as `input` (an op that changed nothing, e.g.
    /// contiguous() on a contiguous tensor, or a view the graph does not need).
    virtual void alias(const nanotorch::Tensor& output, const nanotorch::Tensor& input) = 0;
    /// Called by an op that cannot be expressed; throws unsupported_error naming it and `why`.
    [[noreturn]] virtual void unsupported(const std::string& op, const std::string& why) {
        throw unsupported_error("ONNX export: " + op + " cannot be exported: " + why);
    }
};

namespace detail {
inline Tracer*& active_slot() {
    thread_local Tracer* t = nullptr;
    return t;
}
}  // namespace detail

/// The tracer active on this thread, or null (the common case: one pointer test per op).
inline Tracer* active() { return detail::active_slot(); }

/// RAII: makes `t` the active tracer for the calling thread until the end of the scope.
class TraceGuard {
public:
    explicit TraceGuard(Tracer& t) : prev_(detail::active_slot()) { detail::active_slot() = &t; }
    ~TraceGuard() { detail::active_slot() = prev_; }
    TraceGuard(const TraceGuard&) = delete;
    TraceGuard& operator=(const TraceGuard&) = delete;

private:
    Tracer* prev_;
};

/// RAII: suspends tracing, for ops implemented with other ops whose nodes must not appear.
class PauseGuard {
public:
    PauseGuard() : prev_(detail::active_slot()) { detail::active_slot() = nullptr; }
    ~PauseGuard() { detail::active_slot() = prev_; }
    PauseGuard(const PauseGuard&) = delete;
    PauseGuard& operator=(const PauseGuard&) = delete;

private:
    Tracer* prev_;
};

}  // namespace nanotorch::trace
