// tests/test_loss.cpp — softmax, log_softmax, nll_loss, cross_entropy (with class weights,
// ignore_index, label smoothing), mse_loss, binary_cross_entropy_with_logits: hand-computed values,
// PyTorch 1.13's values (tests/data/activation_baseline.hpp), numerical stability, gradchecks and
// error messages.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nanotorch/ops/loss.hpp>
#include <nanotorch/ops/loss_pointwise.hpp>

#include "data/activation_baseline.hpp"

#include "support/gradcheck.hpp"

using namespace nanotorch;
using nanotorch::testing::gradcheck;
using nanotorch::testing::grad_input;

namespace {

// Float32 results of O(1) quantities carry a relative rounding error of a few 1e-8 per
// operation; 1e-6 leaves a wide margin yet catches any wrong formula.
constexpr double kTol = 1e-6;

void check_close(const std::vector<float>& got, const std::vector<double>& want, double tol = kTol) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element ", i, ": got ", got[i], ", want ", want[i]);
        CHECK(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol);
    }
}

std::string message_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const error& e) {
        return e.what();
    }
    return "(no exception)";
}

}  // namespace

TEST_CASE("softmax: hand-computed values") {
    // e^1 = 2.7182818, e^2 = 7.3890561, e^3 = 20.0855369; sum = 30.1928748
    // → [2.7182818, 7.3890561, 20.0855369] / 30.1928748 = [0.0900306, 0.2447285, 0.6652410]
    const Tensor y = softmax(tensor({1, 2, 3}), 0);
    check_close(y.to_vector(), {0.09003057317038046, 0.24472847105479767, 0.6652409557748219});
    // The method form and dim -1 give the same result.
    check_close(tensor({1, 2, 3}).softmax(-1).to_vector(), {0.09003057317038046, 0.24472847105479767, 0.6652409557748219});

    SUBCASE("shift invariance: softmax(x + 1000) == softmax(x), no overflow") {
        check_close(softmax(tensor({1001, 1002, 1003}), 0).to_vector(),
                    {0.09003057317038046, 0.24472847105479767, 0.6652409557748219});
    }
    SUBCASE("2-D, along dim 0 (columns) and dim 1 (rows)") {
        // [[1, 2], [1, 4]]: columns → [0.5, 0.5] and softmax(2, 4) = [1/(1+e^2), e^2/(1+e^2)]
        //   = [0.1192029, 0.8807971]; rows → softmax(1, 2) = [0.2689414, 0.7310586],
        //   softmax(1, 4) = [1/(1+e^3), e^3/(1+e^3)] = [0.0474259, 0.9525741].
        const Tensor x = tensor({1, 2, 1, 4}, {2, 2});
        check_close(softmax(x, 0).to_vector(), {0.5, 0.11920292202211755, 0.5, 0.8807970779778823});
        check_close(softmax(x, 1).to_vector(),
                    {0.2689414213699951, 0.7310585786300049, 0.04742587317756678, 0.9525741268224334});
    }
    SUBCASE("0-D input: softmax of a scalar is 1, log_softmax 0") {
        CHECK(softmax(scalar_tensor(3.5f), 0).item() == 1.0f);
        CHECK(log_softmax(scalar_tensor(3.5f), -1).item() == 0.0f);
    }
}

TEST_CASE("log_softmax: hand-computed values and stability") {
    SUBCASE("[1000, 0] is exactly [0, -1000]") {
        // max = 1000 → shifted [0, -1000]; exp gives [1, 0] in float, log(1) = 0.
        const std::vector<float> y = log_softmax(tensor({1000, 0}), 0).to_vector();
        CHECK(y[0] == 0.0f);
        CHECK(y[1] == -1000.0f);
        CHECK(std::isfinite(y[0]));
    }
    SUBCASE("[1, 2, 3] = x - log(sum exp x)") {
        // log(30.1928748) = 3.4076060 → [1, 2, 3] − 3.4076060
        check_close(log_softmax(tensor({1, 2, 3}), 0).to_vector(),
                    {1 - 3.4076059644443803, 2 - 3.4076059644443803, 3 - 3.4076059644443803});
        check_close(tensor({1, 2, 3}).log_softmax(0).to_vector(),
                    {1 - 3.4076059644443803, 2 - 3.4076059644443803, 3 - 3.4076059644443803});
    }
    SUBCASE("very negative logits stay finite") {
        const std::vector<float> y = log_softmax(tensor({-1e4f, 0, 1e4f}), 0).to_vector();
        for (float v : y) CHECK(std::isfinite(v));
        CHECK(y[2] == 0.0f);
    }
}

TEST_CASE("softmax/log_softmax: every line sums to one, any dim, non-contiguous input") {
    Generator gen(3);
    const Tensor x = uniform({3, 4, 5}, -3.0f, 3.0f, gen);
    for (std::int64_t dim : {0, 1, 2, -1, -3}) {
        CAPTURE(dim);
        const Tensor y = softmax(x, dim);
        const Tensor ly = log_softmax(x, dim);
        const std::int64_t d = dim < 0 ? dim + 3 : dim;
        // Sum over `dim` for every other index: 1 up to float rounding of ≤ 5 terms.
        for (std::int64_t a = 0; a < 3; ++a)
            for (std::int64_t b = 0; b < 4; ++b)
                for (std::int64_t c = 0; c < 5; ++c) {
                    Shape idx{a, b, c};
                    if (idx[static_cast<std::size_t>(d)] != 0) continue;
                    double s = 0.0;
                    for (std::int64_t k = 0; k < x.shape()[static_cast<std::size_t>(d)]; ++k) {
                        idx[static_cast<std::size_t>(d)] = k;
                        s += y.at(idx);
                        // exp(log_softmax) == softmax to float precision
                        CHECK(std::fabs(std::exp(ly.at(idx)) - y.at(idx)) <= 1e-6);
                    }
                    CHECK(std::fabs(s - 1.0) <= 1e-6);
                }
    }
    // A transposed (non-contiguous) input gives the same values as its contiguous copy.
    const Tensor xt = x.transpose(0, 2);
    REQUIRE_FALSE(xt.is_contiguous());
    CHECK(softmax(xt, 1).to_vector() == softmax(xt.contiguous(), 1).to_vector());
    CHECK(log_softmax(xt, -1).to_vector() == log_softmax(xt.contiguous(), -1).to_vector());
}

TEST_CASE("softmax: dim out of range is a value_error") {
    const Tensor x = zeros({2, 3});
    CHECK_THROWS_AS(softmax(x, 2), value_error);
    CHECK_THROWS_AS(log_softmax(x, -3), value_error);
    CHECK(message_of([&] { softmax(x, 2); }).find("softmax") != std::string::npos);
}

TEST_CASE("softmax: results do not depend on the thread count") {
    Generator gen(11);
    const Tensor x = uniform({64, 33, 40}, -5.0f, 5.0f, gen);
    const int saved = get_num_threads();
    set_num_threads(1);
    const auto a0 = softmax(x, 1).to_vector(), b0 = log_softmax(x, -1).to_vector();
    set_num_threads(4);
    const auto a1 = softmax(x, 1).to_vector(), b1 = log_softmax(x, -1).to_vector();
    set_num_threads(saved);
    CHECK(a0 == a1);  // bit-identical: lines are independent and summed in a fixed order
    CHECK(b0 == b1);
}

TEST_CASE("softmax/log_softmax gradcheck over dims 0, 1 and -1 of a 3-D tensor") {
    Generator gen(5);
    for (std::int64_t dim : {0, 1, -1}) {
        CAPTURE(dim);
        gradcheck("softmax", [dim](const std::vector<Tensor>& in) { return softmax(in[0], dim); },
                  {grad_input({2, 3, 4}, gen, -2.0f, 2.0f)});
        gradcheck("log_softmax", [dim](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); },
                  {grad_input({2, 3, 4}, gen, -2.0f, 2.0f)});
    }
}

TEST_CASE("softmax backward: hand-computed") {
    // y = softmax([0, 0]) = [0.5, 0.5]; with upstream g = [1, 0]: Σ g·y = 0.5,
    // dx = y·(g − 0.5) = [0.25, −0.25]. log_softmax: dx = g − y·Σg = [1 − 0.5, 0 − 0.5].
    Tensor x = zeros({2});
    x.requires_grad_();
    softmax(x, 0).backward(tensor({1, 0}));
    check_close(x.grad().to_vector(), {0.25, -0.25});
    x.zero_grad();
    log_softmax(x, 0).backward(tensor({1, 0}));
    check_close(x.grad().to_vector(), {0.5, -0.5});
}

TEST_CASE("nll_loss: a 2x3 example by hand") {
    // log_probs = [[-0.5, -1.0, -2.0], [-1.5, -0.25, -3.0]], target = {2, 1}
    // per-sample losses: -(-2.0) = 2.0, -(-0.25) = 0.25; sum = 2.25; mean = 1.125 (all exact in float)
    const Tensor lp = tensor({-0.5f, -1.0f, -2.0f, -1.5f, -0.25f, -3.0f}, {2, 3});
    const std::vector<std::int64_t> t{2, 1};
    const Tensor none = nll_loss(lp, t, Reduction::None);
    CHECK(none.shape() == Shape{2});
    CHECK(none.to_vector() == std::vector<float>{2.0f, 0.25f});
    const Tensor sum = nll_loss(lp, t, Reduction::Sum);
    CHECK(sum.dim() == 0);
    CHECK(sum.item() == 2.25f);
    CHECK(nll_loss(lp, t).item() == 1.125f);  // Mean is the default

    SUBCASE("gradient of the mean: -1/N at each target, 0 elsewhere") {
        Tensor x = lp.detach();
        x.requires_grad_();
        nll_loss(x, t).backward();
        CHECK(x.grad().to_vector() == std::vector<float>{0, 0, -0.5f, 0, -0.5f, 0});
        x.zero_grad();
        nll_loss(x, t, Reduction::Sum).backward();
        CHECK(x.grad().to_vector() == std::vector<float>{0, 0, -1, 0, -1, 0});
        x.zero_grad();
        nll_loss(x, t, Reduction::None).backward(tensor({3, 5}));
        CHECK(x.grad().to_vector() == std::vector<float>{0, 0, -3, 0, -5, 0});
    }
}

TEST_CASE("nll_loss: empty batch") {
    const Tensor lp = zeros({0, 4});
    CHECK(nll_loss(lp, {}, Reduction::None).shape() == Shape{0});
    CHECK(nll_loss(lp, {}, Reduction::Sum).item() == 0.0f);
    CHECK(std::isnan(nll_loss(lp, {}, Reduction::Mean).item()));  // 0/0, as in PyTorch
}

TEST_CASE("cross_entropy: hand-computed values and gradient") {
    // logits [1, 2, 3], target 2: loss = -log(0.6652410) = 0.4076060;
    // gradient = softmax − onehot = [0.0900306, 0.2447285, 0.6652410 − 1].
    Tensor x = tensor({1, 2, 3}, {1, 3});
    x.requires_grad_();
    const Tensor loss = cross_entropy(x, {2});
    CHECK(std::fabs(loss.item() - 0.4076059644443803) <= kTol);
    loss.backward();
    check_close(x.grad().to_vector(), {0.09003057317038046, 0.24472847105479767, 0.6652409557748219 - 1.0});

    // Two equal logits: loss = log 2 = 0.6931472 whichever class is the target.
    CHECK(std::fabs(cross_entropy(zeros({1, 2}), {1}).item() - 0.6931471805599453) <= kTol);
    // Huge logits stay finite: [1000, 0] with target 0 → loss 0; target 1 → 1000.
    const Tensor big = tensor({1000, 0, 1000, 0}, {2, 2});
    CHECK(cross_entropy(big, {0, 1}, Reduction::None).to_vector() == std::vector<float>{0.0f, 1000.0f});
}

TEST_CASE("cross_entropy equals nll_loss(log_softmax) to 1e-6") {
    Generator gen(21);
    const Tensor logits = uniform({8, 5}, -3.0f, 3.0f, gen);
    const std::vector<std::int64_t> t{0, 4, 2, 2, 1, 3, 0, 4};
    for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
        const auto fused = cross_entropy(logits, t, r).to_vector();
        const auto composed = nll_loss(log_softmax(logits, 1), t, r).to_vector();
        REQUIRE(fused.size() == composed.size());
        // Losses here are below ~7 and Sum adds 8 of them: float rounding stays below ~1e-6
        // relative to the value; compare relative to max(1, |value|).
        for (std::size_t i = 0; i < fused.size(); ++i)
            CHECK(std::fabs(fused[i] - composed[i]) <= 1e-6 * std::max(1.0f, std::fabs(composed[i])));
    }
    // Gradients agree too.
    Tensor a = logits.detach(), b = ops::detail::contiguous_copy(logits);
    a.requires_grad_();
    b.requires_grad_();
    cross_entropy(a, t).backward();
    nll_loss(log_softmax(b, 1), t).backward();
    const auto ga = a.grad().to_vector(), gb = b.grad().to_vector();
    for (std::size_t i = 0; i < ga.size(); ++i) CHECK(std::fabs(ga[i] - gb[i]) <= 1e-6);
}

TEST_CASE("nll_loss/cross_entropy gradcheck for mean, sum and none") {
    Generator gen(8);
    const std::vector<std::int64_t> t{1, 0, 3, 3, 2};
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
        CAPTURE(static_cast<int>(r));
        gradcheck("nll_loss", [&t, r](const std::vector<Tensor>& in) { return nll_loss(in[0], t, r); },
                  {grad_input({5, 4}, gen)});
        gradcheck("cross_entropy", [&t, r](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, r); },
                  {grad_input({5, 4}, gen, -2.0f, 2.0f)});
    }
}

TEST_CASE("nll_loss/cross_entropy: bad targets and shapes") {
    const Tensor x = zeros({2, 3});
    for (const char* op : {"nll_loss", "cross_entropy"}) {
        CAPTURE(op);
        const bool nll = std::string(op) == "nll_loss";
        auto call = [nll](const Tensor& in, const std::vector<std::int64_t>& t) {
            return nll ? nll_loss(in, t) : cross_entropy(in, t);
        };
        {  // target out of range names the index and the value (plain blocks: SUBCASE in a loop misbehaves)
            CHECK_THROWS_AS(call(x, {0, 3}), value_error);
            CHECK_THROWS_AS(call(x, {-1, 0}), value_error);
            const std::string m = message_of([&] { call(x, {0, 7}); });
            CHECK(m.find(op) != std::string::npos);
            CHECK(m.find("target[1] = 7") != std::string::npos);
            CHECK(m.find("3 classes") != std::string::npos);
        }
        {  // target size must equal N
            CHECK_THROWS_AS(call(x, {0}), shape_error);
            CHECK_THROWS_AS(call(x, {0, 1, 2}), shape_error);
            CHECK(message_of([&] { call(x, {0}); }).find("1 entries") != std::string::npos);
        }
        {  // input must be [N, C]
            CHECK_THROWS_AS(call(zeros({3}), {0}), shape_error);
            CHECK_THROWS_AS(call(zeros({1, 2, 3}), {0}), shape_error);
            CHECK(message_of([&] { call(zeros({3}), {0}); }).find("[3]") != std::string::npos);
        }
    }
}

// ---- PyTorch 1.13 fixtures: weighted / smoothed / ignored cross_entropy, nll_loss, mse, bce ----
namespace {

Reduction reduction_of(const std::string& case_name) {
    if (case_name.size() >= 5 && case_name.compare(case_name.size() - 5, 5, "_none") == 0) return Reduction::None;
    if (case_name.size() >= 4 && case_name.compare(case_name.size() - 4, 4, "_sum") == 0) return Reduction::Sum;
    return Reduction::Mean;
}

// PyTorch sums in float (in its own order) where nanotorch sums in double: values agree to a few
// float ulp of the result, i.e. 1e-5 relative to O(1)..O(30) values, plus 1e-6 absolute for
// values near 0 (gradients that are small differences).
void check_torch(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO(what, " element ", i, ": got ", got[i], ", want ", want[i]);
        CHECK(std::fabs(static_cast<double>(got[i]) - want[i]) <= 1e-6 + 1e-5 * std::fabs(static_cast<double>(want[i])));
    }
}

std::vector<std::int64_t> targets(const std::vector<long long>& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("cross_entropy with weights, label smoothing and ignore_index matches PyTorch 1.13") {
    namespace B = activation_baseline;
    struct Setup {
        std::vector<long long> target;
        bool weighted;
        float eps;
        std::int64_t ignore;
    };
    const std::map<std::string, Setup> setups = {  // CE_CASES in tests/data/make_activation_baseline.py
        {"plain", {B::CT, false, 0.0f, -100}},
        {"weighted", {B::CT, true, 0.0f, -100}},
        {"smooth", {B::CT, false, 0.1f, -100}},
        {"smooth_weighted", {B::CT, true, 0.2f, -100}},
        {"ignored_smooth_weighted", {B::CT_IGN, true, 0.1f, -100}},
        {"ignore_index_1", {B::CT, true, 0.0f, 1}},
        {"ignore_index_1_smooth", {B::CT, false, 0.3f, 1}},
    };
    REQUIRE(B::cross_entropy.size() == 3 * setups.size());
    for (const auto& c : B::cross_entropy) {
        CAPTURE(c.name);
        const std::string name = c.name;
        const Setup& s = setups.at(name.substr(0, name.rfind('_')));
        const Reduction r = reduction_of(name);
        Tensor x = tensor(B::CL, {6, 4});
        x.requires_grad_();
        const Tensor loss = cross_entropy(x, targets(s.target), s.weighted ? tensor(B::CW) : Tensor(), s.eps, r, s.ignore);
        check_torch(loss.to_vector(), c.y, "loss");
        if (r == Reduction::None) loss.backward(tensor(B::G6)); else loss.backward();
        check_torch(x.grad().to_vector(), c.grad, "gradient");
    }
    for (const auto& c : B::nll_loss) {
        CAPTURE(c.name);
        const std::string name = c.name;
        const Reduction r = reduction_of(name);
        Tensor x = log_softmax(tensor(B::CL, {6, 4}), 1).detach();
        x.requires_grad_();
        const auto& t = name.rfind("ignored", 0) == 0 ? B::CT_IGN : B::CT;
        const Tensor loss = nll_loss(x, targets(t), tensor(B::CW), r);
        check_torch(loss.to_vector(), c.y, "loss");
        if (r == Reduction::None) loss.backward(tensor(B::G6)); else loss.backward();
        check_torch(x.grad().to_vector(), c.grad, "gradient");
    }
}

TEST_CASE("the weighted overloads fall back to the fused cross_entropy bit for bit; -100 is ignored by default") {
    Generator gen(3);
    const Tensor logits = uniform({7, 5}, -3.0f, 3.0f, gen);
    const std::vector<std::int64_t> t{0, 4, 2, 2, 1, 3, 0};
    for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
        CHECK(cross_entropy(logits, t, Tensor(), 0.0f, r).to_vector() == cross_entropy(logits, t, r).to_vector());
        Tensor a = logits.detach(), b = ops::detail::contiguous_copy(logits);
        a.requires_grad_();
        b.requires_grad_();
        cross_entropy(a, t, Tensor(), 0.0f, Reduction::Sum).backward();
        cross_entropy(b, t, Reduction::Sum).backward();
        CHECK(a.grad().to_vector() == b.grad().to_vector());
    }
    // The plain overloads ignore PyTorch's default ignore_index (-100): the same as dropping the row
    // (Mean divides by the 6 remaining rows).
    std::vector<std::int64_t> with_ignored = t;
    with_ignored.push_back(kIgnoreIndex);
    const Tensor more = cat({logits, uniform({1, 5}, -3.0f, 3.0f, gen)}, 0);
    CHECK(std::fabs(cross_entropy(more, with_ignored).item() - cross_entropy(logits, t).item()) <= 1e-6);
    CHECK(std::fabs(nll_loss(log_softmax(more, 1), with_ignored).item() -
                    nll_loss(log_softmax(logits, 1), t).item()) <= 1e-6);
    CHECK(cross_entropy(more, with_ignored, Reduction::None).to_vector().back() == 0.0f);
    // All samples ignored: the mean is 0/0 = NaN, as in PyTorch.
    CHECK(std::isnan(cross_entropy(zeros({2, 3}), {kIgnoreIndex, kIgnoreIndex}).item()));
}

TEST_CASE("mse_loss and binary_cross_entropy_with_logits match PyTorch 1.13 (input and target gradients)") {
    namespace B = activation_baseline;
    REQUIRE(B::pointwise_losses.size() == 15);
    for (const auto& c : B::pointwise_losses) {
        CAPTURE(c.name);
        const std::string name = c.name;
        const Reduction r = reduction_of(name);
        Tensor x = tensor(B::LI, {4, 3}), t = tensor(B::LT, {4, 3});
        x.requires_grad_();
        t.requires_grad_();
        const std::string kind = name.substr(0, name.rfind('_'));
        Tensor loss;
        if (kind == "mse") {
            loss = F::mse_loss(x, t, r);
        } else {
            const bool w = kind == "bce_weight" || kind == "bce_both", pw = kind == "bce_pos_weight" || kind == "bce_both";
            loss = F::binary_cross_entropy_with_logits(x, t, w ? tensor(B::BW) : Tensor(), pw ? tensor(B::PW) : Tensor(), r);
        }
        check_torch(loss.to_vector(), c.y, "loss");
        if (r == Reduction::None) loss.backward(tensor(B::G12, {4, 3})); else loss.backward();
        check_torch(x.grad().to_vector(), c.grad, "input gradient");
        check_torch(t.grad().to_vector(), c.grad2, "target gradient");
    }
}

TEST_CASE("binary_cross_entropy_with_logits is stable at huge logits; mse_loss by hand") {
    // x = 1000, t = 1 -> 0; x = -1000, t = 1 -> 1000; x = 1000, t = 0 -> 1000 (no exp overflow)
    const Tensor l = F::binary_cross_entropy_with_logits(tensor({1000, -1000, 1000}), tensor({1, 1, 0}), Tensor(), Tensor(),
                                                         Reduction::None);
    CHECK(l.to_vector() == std::vector<float>{0.0f, 1000.0f, 1000.0f});
    // mse of [1, 2, 4] against [0, 0, 0]: (1 + 4 + 16) / 3 = 7
    CHECK(F::mse_loss(tensor({1, 2, 4}), zeros({3})).item() == 7.0f);
    CHECK(F::mse_loss(tensor({1, 2, 4}), zeros({3}), Reduction::Sum).item() == 21.0f);
    CHECK(std::isnan(F::mse_loss(zeros({0}), zeros({0})).item()));
}

TEST_CASE("gradcheck: weighted/smoothed cross_entropy, weighted nll_loss, mse_loss, bce with logits") {
    Generator gen(12);
    const std::vector<std::int64_t> t{1, 0, 3, -100, 2};
    const Tensor w = tensor({0.5f, 2.0f, 1.0f, 1.5f});
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
        CAPTURE(static_cast<int>(r));
        gradcheck("cross_entropy weighted smoothed",
                  [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, w, 0.15f, r); },
                  {grad_input({5, 4}, gen, -2.0f, 2.0f)});
        gradcheck("nll_loss weighted", [&](const std::vector<Tensor>& in) { return nll_loss(in[0], t, w, r); },
                  {grad_input({5, 4}, gen)});
        gradcheck("mse_loss", [r](const std::vector<Tensor>& in) { return F::mse_loss(in[0], in[1], r); },
                  {grad_input({3, 4}, gen), grad_input({3, 4}, gen)});
        gradcheck("bce_with_logits",
                  [r](const std::vector<Tensor>& in) {
                      return F::binary_cross_entropy_with_logits(in[0], in[1], tensor({0.5f, 2.0f, 1.0f}),
                                                                 tensor({3.0f, 0.5f, 1.0f}), r);
                  },
                  {grad_input({4, 3}, gen, -3.0f, 3.0f), grad_input({4, 3}, gen, 0.0f, 1.0f)});
        gradcheck("bce_with_logits plain",
                  [r](const std::vector<Tensor>& in) {
                      return F::binary_cross_entropy_with_logits(in[0], in[1], Tensor(), Tensor(), r);
                  },
                  {grad_input({4, 3}, gen, -3.0f, 3.0f), grad_input({4, 3}, gen, 0.0f, 1.0f)});
    }
}

TEST_CASE("losses: bad arguments name what is wrong") {
    const Tensor x = zeros({2, 3});
    CHECK(message_of([&] { F::mse_loss(x, zeros({3})); }).find("target of shape [3] must have the input's shape [2, 3]") !=
          std::string::npos);
    CHECK_THROWS_AS(F::mse_loss(x, zeros({3})), shape_error);
    CHECK_THROWS_AS(F::binary_cross_entropy_with_logits(x, zeros({2, 1})), shape_error);
    CHECK(message_of([&] { F::binary_cross_entropy_with_logits(x, x, zeros({2})); }).find("weight of shape [2]") !=
          std::string::npos);
    CHECK_THROWS_AS(F::binary_cross_entropy_with_logits(x, x, Tensor(), zeros({4})), shape_error);
    CHECK(message_of([&] { cross_entropy(x, {0, 1}, zeros({2})); }).find("one value per class (shape [3]), got [2]") !=
          std::string::npos);
    CHECK_THROWS_AS(cross_entropy(x, {0, 1}, zeros({2})), shape_error);
    CHECK_THROWS_AS(nll_loss(x, {0, 1}, zeros({4})), shape_error);
    CHECK(message_of([&] { cross_entropy(x, {0, 1}, Tensor(), -0.1f); }).find("label_smoothing must be between 0.0 and 1.0") !=
          std::string::npos);
    CHECK_THROWS_AS(cross_entropy(x, {0, 1}, Tensor(), 1.5f), value_error);
    CHECK_NOTHROW(cross_entropy(x, {0, 1}, Tensor(), 1.0f));
    // A target outside [0, C) that is not ignore_index, and a wrong target length.
    CHECK(message_of([&] { cross_entropy(x, {0, 5}, Tensor(), 0.1f); }).find("target[1] = 5") != std::string::npos);
    CHECK_THROWS_AS(cross_entropy(x, {0, -100}, Tensor(), 0.0f, Reduction::Mean, 2), value_error);
    CHECK_THROWS_AS(cross_entropy(x, {0}, Tensor(), 0.1f), shape_error);
}
