// tests/support/gradcheck.hpp — finite-difference gradient checks for differentiable ops.
//
// For an op f and inputs X, the check fixes random weights W of f(X)'s shape and the scalar
// L(X) = Σ f(X)·W (accumulated in double). The analytic gradient is what backward(W) leaves in
// each input's .grad; the numeric one is the central difference (L(x+h) − L(x−h)) / 2h for
// every element. They must agree within atol + rtol·|numeric| at every element.
//
// Why these tolerances: everything runs in float32, where f(X) carries a relative rounding
// error of about 1e-7 per element; divided by 2h that becomes ~1e-7·|L|/h, and the O(h²)
// truncation error adds to it. With h = 1e-2 and |L| of order 10 both stay below ~1e-3, so the
// default atol = rtol = 1e-2 leaves an order of magnitude of margin while still catching any
// wrong formula (a wrong factor or a wrong index is an O(1) error). Ops with kinks (relu at 0,
// max ties) are checked on inputs kept at least 2h away from the kink; each test says how.
#pragma once

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <nanotorch/nanotorch.hpp>

namespace nanotorch::testing {

struct GradcheckOptions {
    float eps = 1e-2f;   // finite-difference step h
    double atol = 1e-2;  // absolute tolerance
    double rtol = 1e-2;  // relative tolerance (to |numeric|)
    std::uint64_t seed = 1234;
};

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

namespace detail {
inline double weighted_sum(const Tensor& y, const std::vector<float>& w) {
    const std::vector<float> v = y.to_vector();
    double s = 0.0;
    for (std::size_t i = 0; i < v.size(); ++i) s += static_cast<double>(v[i]) * w[i];
    return s;
}
}  // namespace detail

/// Checks d/dX of f at `inputs` for every input with requires_grad(). Inputs must be
/// contiguous leaves. Records one doctest CHECK per checked input; returns false on mismatch.
inline bool gradcheck(const std::string& name, const OpFn& f, std::vector<Tensor> inputs,
                      GradcheckOptions opt = {}) {
    Generator gen(opt.seed);
    std::vector<float> w;
    Shape out_shape;
    {
        NoGradGuard ng;
        const Tensor y = f(inputs);
        out_shape = y.shape();
        w.resize(static_cast<std::size_t>(y.numel()));
        for (auto& v : w) v = gen.uniform(-1.0f, 1.0f);
    }
    // Analytic gradients.
    for (auto& x : inputs) x.zero_grad();
    const Tensor y = f(inputs);
    REQUIRE_MESSAGE(y.requires_grad(), name, ": output does not require grad");
    y.backward(tensor(w, out_shape));

    bool all_ok = true;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        Tensor& x = inputs[k];
        if (!x.requires_grad()) continue;
        REQUIRE_MESSAGE(x.is_contiguous(), name, ": gradcheck needs contiguous inputs");
        const Tensor g = x.grad();
        REQUIRE_MESSAGE(g.defined(), name, ": input ", k, " received no gradient");
        REQUIRE(g.shape() == x.shape());
        const std::vector<float> analytic = g.to_vector();
        float* data = x.data_ptr();
        std::ostringstream first_bad;
        int bad = 0;
        double worst = 0.0;
        {
            NoGradGuard ng;
            for (std::int64_t i = 0; i < x.numel(); ++i) {
                const float orig = data[i];
                data[i] = orig + opt.eps;
                const double lp = detail::weighted_sum(f(inputs), w);
                data[i] = orig - opt.eps;
                const double lm = detail::weighted_sum(f(inputs), w);
                data[i] = orig;
                const double numeric = (lp - lm) / (2.0 * static_cast<double>(opt.eps));
                const double err = std::fabs(numeric - analytic[static_cast<std::size_t>(i)]);
                const double allowed = opt.atol + opt.rtol * std::fabs(numeric);
                worst = std::max(worst, err / allowed);
                if (err > allowed && bad++ == 0)
                    first_bad << "element " << i << ": analytic " << analytic[static_cast<std::size_t>(i)]
                              << " vs numeric " << numeric;
            }
        }
        INFO(name, " input ", k, " shape ", shape_str(x.shape()), ": ", bad, " mismatches; ", first_bad.str(),
             "; worst error/allowed = ", worst);
        CHECK(bad == 0);
        all_ok = all_ok && bad == 0;
    }
    return all_ok;
}

/// Random input in [lo, hi) with requires_grad set.
inline Tensor grad_input(const Shape& shape, Generator& gen, float lo = -1.0f, float hi = 1.0f) {
    Tensor t = uniform(shape, lo, hi, gen);
    t.requires_grad_();
    return t;
}

/// Random input whose values are all at least `gap` apart and away from 0 by `gap`: used for
/// ops with kinks (relu at 0, max/max_pool ties), so x ± h never crosses a kink.
inline Tensor distinct_input(const Shape& shape, Generator& gen, float gap = 0.05f) {
    const std::int64_t n = shape_numel(shape);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = (static_cast<float>(i) - n / 2.0f + 0.5f) * gap;
    for (std::int64_t i = n - 1; i > 0; --i)
        std::swap(v[static_cast<std::size_t>(i)], v[static_cast<std::size_t>(gen.randint(static_cast<std::uint64_t>(i + 1)))]);
    Tensor t = tensor(v, shape);
    t.requires_grad_();
    return t;
}

}  // namespace nanotorch::testing
