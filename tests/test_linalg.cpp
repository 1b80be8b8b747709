// tests/test_linalg.cpp — matmul and linear: hand-computed products and gradients, every rank
// combination, strided operands (the sgemm trans/leading-dimension paths), shape errors,
// thread-count independence, and finite-difference gradient checks.
//
// Hand-computed cases use small integers, whose products and sums float32 computes exactly, so
// they are compared with ==. Gradchecks use tests/support/gradcheck.hpp's default tolerances
// (see its header); matmul and linear are linear in each input, so the central difference has
// no truncation error and only float rounding remains.
#include <doctest/doctest.h>

#include <nanotorch/ops/linalg.hpp>
#include <nanotorch/ops/reduce.hpp>

#include "support/gradcheck.hpp"

#include <cstdint>
#include <string>
#include <vector>

using namespace nanotorch;
using nanotorch::testing::gradcheck;
using nanotorch::testing::grad_input;

namespace {
using Vec = std::vector<float>;
// A = [[1, 2, 3],      B = [[ 7,  8],
//      [4, 5, 6]]           [ 9, 10],
//                           [11, 12]]
Tensor mat_a() { return tensor({1, 2, 3, 4, 5, 6}, {2, 3}); }
Tensor mat_b() { return tensor({7, 8, 9, 10, 11, 12}, {3, 2}); }
// A·B = [[1·7 + 2·9 + 3·11, 1·8 + 2·10 + 3·12],   = [[ 58,  64],
//        [4·7 + 5·9 + 6·11, 4·8 + 5·10 + 6·12]]      [139, 154]]
const Vec kAB = {58, 64, 139, 154};
}  // namespace

TEST_CASE("matmul: 2-D @ 2-D written out") {
    const Tensor y = matmul(mat_a(), mat_b());
    CHECK(y.shape() == Shape{2, 2});
    CHECK(y.to_vector() == kAB);
    CHECK(mat_a().matmul(mat_b()).to_vector() == kAB);
}

TEST_CASE("matmul: 1-D operands follow PyTorch's rules") {
    const Tensor v = tensor({1, 2, 3});
    const Tensor d = matmul(v, tensor({4, 5, 6}));  // 1·4 + 2·5 + 3·6 = 32, a 0-D result
    CHECK(d.dim() == 0);
    CHECK(d.item() == 32.0f);

    const Tensor vb = matmul(v, mat_b());  // [1, 2, 3] · B = first row of A·B
    CHECK(vb.shape() == Shape{2});
    CHECK(vb.to_vector() == Vec{58, 64});

    const Tensor av = matmul(mat_a(), tensor({1, 1, 1}));  // row sums of A
    CHECK(av.shape() == Shape{2});
    CHECK(av.to_vector() == Vec{6, 15});
}

TEST_CASE("matmul: batched and broadcast batches") {
    // [A, 2A] @ [B, B] -> [AB, 2AB]
    const Tensor a2 = tensor({1, 2, 3, 4, 5, 6, 2, 4, 6, 8, 10, 12}, {2, 2, 3});
    const Tensor b2 = tensor({7, 8, 9, 10, 11, 12, 7, 8, 9, 10, 11, 12}, {2, 3, 2});
    const Vec ab_2ab = {58, 64, 139, 154, 116, 128, 278, 308};
    const Tensor y = matmul(a2, b2);
    CHECK(y.shape() == Shape{2, 2, 2});
    CHECK(y.to_vector() == ab_2ab);

    // N-D @ 2-D: B is shared by the batch.
    const Tensor yb = matmul(a2, mat_b());
    CHECK(yb.shape() == Shape{2, 2, 2});
    CHECK(yb.to_vector() == ab_2ab);

    // 2-D @ N-D: A is shared; [A @ B, A @ 2B].
    const Tensor b2x = tensor({7, 8, 9, 10, 11, 12, 14, 16, 18, 20, 22, 24}, {2, 3, 2});
    CHECK(matmul(mat_a(), b2x).to_vector() == ab_2ab);

    // 1-D @ N-D: [1, 2, 3] @ [B, 2B] = [[58, 64], [116, 128]].
    const Tensor vb = matmul(tensor({1, 2, 3}), b2x);
    CHECK(vb.shape() == Shape{2, 2});
    CHECK(vb.to_vector() == Vec{58, 64, 116, 128});

    // N-D @ 1-D: [A, 2A] @ [1, 1, 1] = row sums.
    const Tensor av = matmul(a2, tensor({1, 1, 1}));
    CHECK(av.shape() == Shape{2, 2});
    CHECK(av.to_vector() == Vec{6, 15, 12, 30});

    // Broadcast batch dims: [2, 1, 2, 3] @ [3, 3, 2] -> [2, 3, 2, 2].
    const Tensor a4 = a2.reshape({2, 1, 2, 3});
    const Tensor b3 = tensor({7, 8, 9, 10, 11, 12, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0, 0, 0}, {3, 3, 2});
    const Tensor y4 = matmul(a4, b3);
    CHECK(y4.shape() == Shape{2, 3, 2, 2});
    // out[i][j] = a4[i][0] @ b3[j]: A@B, A@B, 0, 2A@B, 2A@B, 0.
    CHECK(y4.to_vector() == Vec{58,  64,  139, 154, 58,  64,  139, 154, 0, 0, 0, 0,
                                116, 128, 278, 308, 116, 128, 278, 308, 0, 0, 0, 0});
}

TEST_CASE("matmul: strided operands (transposed views, a narrowed view, a permuted 3-D view)") {
    // Aᵀ is a view with strides [1, 3]: sgemm reads it with a trans flag, no copy.
    const Tensor at = mat_a().t();  // [[1, 4], [2, 5], [3, 6]]
    CHECK(matmul(at, tensor({1, 0, 0, 1}, {2, 2})).to_vector() == Vec{1, 4, 2, 5, 3, 6});
    // A·Aᵀ = [[1+4+9, 4+10+18], [4+10+18, 16+25+36]] = [[14, 32], [32, 77]].
    CHECK(matmul(mat_a(), mat_a().t()).to_vector() == Vec{14, 32, 32, 77});
    // Columns 1..2 of A: [[2, 3], [5, 6]], strides [3, 1] (a leading dimension wider than the row).
    CHECK(matmul(mat_a().narrow(1, 1, 2), tensor({1, 1}, {2, 1})).to_vector() == Vec{5, 11});
    // A strided 1-D operand: column 0 of B is [7, 9, 11] with stride 2; [1, 2, 3]·it = 7+18+33.
    CHECK(matmul(tensor({1, 2, 3}), mat_b().select(1, 0)).item() == 58.0f);
    // A permuted 3-D operand is copied; the result must equal the contiguous computation.
    Generator gen(31);
    const Tensor p = uniform({3, 2, 4}, -1.0f, 1.0f, gen);
    const Tensor q = uniform({3, 5}, -1.0f, 1.0f, gen);
    const Tensor pv = p.permute({1, 2, 0});  // [2, 4, 3], not contiguous
    CHECK(matmul(pv, q).to_vector() == matmul(pv.contiguous(), q).to_vector());
}

TEST_CASE("matmul: strided 1-D/2-D operands reach sgemm without a copy") {
    using ops::linalg_detail::matrix_operand;
    const Tensor a = mat_a();
    const auto plain = matrix_operand(a, 2, 3);
    CHECK((!plain.trans && plain.ld == 3 && !plain.holder.defined()));
    const auto transposed = matrix_operand(a.t(), 3, 2);  // memory holds Aᵀᵀ = A, row length 3
    CHECK((transposed.trans && transposed.ld == 3 && !transposed.holder.defined()));
    const auto narrowed = matrix_operand(a.narrow(1, 1, 2), 2, 2);
    CHECK((!narrowed.trans && narrowed.ld == 3 && !narrowed.holder.defined()));
    CHECK(narrowed.data == a.data_ptr() + 1);
    const auto column = matrix_operand(mat_b().select(1, 0), 3, 1);  // stride 2, a [3, 1] matrix
    CHECK((!column.trans && column.ld == 2 && !column.holder.defined()));
    const auto row = matrix_operand(mat_b().select(1, 0), 1, 3);  // the same data as a [1, 3] matrix
    CHECK((row.trans && !row.holder.defined()));
    // A permuted 3-D tensor has no matrix layout: it is copied.
    CHECK(matrix_operand(arange(24).reshape({2, 3, 4}).permute({2, 0, 1}), 4, 6).holder.defined());
}

TEST_CASE("matmul: empty dimensions") {
    CHECK(matmul(zeros({2, 0}), zeros({0, 3})).to_vector() == Vec(6, 0.0f));  // K = 0: all zeros
    CHECK(matmul(zeros({0, 3}), zeros({3, 2})).shape() == Shape{0, 2});
    CHECK(matmul(zeros({4, 0, 3}), zeros({4, 3, 2})).shape() == Shape{4, 0, 2});
    Tensor a = zeros({2, 0});
    a.requires_grad_();
    Tensor b = zeros({0, 3});
    b.requires_grad_();
    sum(matmul(a, b)).backward();
    CHECK(a.grad().shape() == Shape{2, 0});
    CHECK(b.grad().shape() == Shape{0, 3});
}

TEST_CASE("matmul: shape errors name the op and both shapes") {
    CHECK_THROWS_WITH_AS(matmul(zeros({2, 3}), zeros({4, 5})), "matmul: shapes [2, 3] and [4, 5] cannot be multiplied",
                         shape_error);
    CHECK_THROWS_WITH_AS(matmul(zeros({3}), zeros({4})), "matmul: shapes [3] and [4] cannot be multiplied", shape_error);
    CHECK_THROWS_WITH_AS(matmul(zeros({2, 3}), zeros({2})), "matmul: shapes [2, 3] and [2] cannot be multiplied",
                         shape_error);
    CHECK_THROWS_WITH_AS(matmul(zeros({2, 2, 3}), zeros({2, 4, 2})),
                         "matmul: shapes [2, 2, 3] and [2, 4, 2] cannot be multiplied", shape_error);
    CHECK_THROWS_WITH_AS(matmul(zeros({2, 2, 3}), zeros({3, 3, 2})),
                         "matmul: shapes [2, 2, 3] and [3, 3, 2] cannot be multiplied (batch dimensions [2] and [3] do "
                         "not broadcast)",
                         shape_error);
    CHECK_THROWS_AS(matmul(scalar_tensor(1.0f), zeros({1})), shape_error);
    CHECK_THROWS_AS(matmul(zeros({1}), scalar_tensor(1.0f)), shape_error);
}

TEST_CASE("matmul backward: hand-computed gradients") {
    Tensor a = mat_a(), b = mat_b();
    a.requires_grad_();
    b.requires_grad_();
    matmul(a, b).backward(ones({2, 2}));
    // ga = 1·Bᵀ: every row is [7+8, 9+10, 11+12] = [15, 19, 23].
    CHECK(a.grad().to_vector() == Vec{15, 19, 23, 15, 19, 23});
    // gb = Aᵀ·1: row k is the column sum of A's column k, repeated: [5, 7, 9].
    CHECK(b.grad().to_vector() == Vec{5, 5, 7, 7, 9, 9});

    // Dot product: d(v·w)/dv = w, d/dw = v, times the upstream gradient 2.
    Tensor v = tensor({1, 2, 3}), w = tensor({4, 5, 6});
    v.requires_grad_();
    w.requires_grad_();
    matmul(v, w).backward(scalar_tensor(2.0f));
    CHECK(v.grad().to_vector() == Vec{8, 10, 12});
    CHECK(w.grad().to_vector() == Vec{2, 4, 6});

    // Only the input that requires grad gets one.
    Tensor c = mat_a();
    c.requires_grad_();
    matmul(c, mat_b()).backward(ones({2, 2}));
    CHECK(c.grad().to_vector() == Vec{15, 19, 23, 15, 19, 23});
    CHECK(std::string(matmul(c, mat_b()).grad_fn()->name()) == "MatmulBackward");
}

namespace {
// x = A (2 samples, 3 features), w = [[1, 0, -1], [2, 1, 0]] (2 outputs), b = [0.5, -1].
Tensor lin_w() { return tensor({1, 0, -1, 2, 1, 0}, {2, 3}); }
Tensor lin_b() { return tensor({0.5f, -1.0f}); }
}  // namespace

TEST_CASE("linear: hand-computed forward with and without bias, 1-D and 3-D inputs") {
    // x·wᵀ: row 0 = [1 - 3, 2 + 2] = [-2, 4]; row 1 = [4 - 6, 8 + 5] = [-2, 13]; + b.
    const Tensor y = linear(mat_a(), lin_w(), lin_b());
    CHECK(y.shape() == Shape{2, 2});
    CHECK(y.to_vector() == Vec{-1.5f, 3, -1.5f, 12});
    CHECK(linear(mat_a(), lin_w()).to_vector() == Vec{-2, 4, -2, 13});

    const Tensor y1 = linear(tensor({1, 2, 3}), lin_w(), lin_b());
    CHECK(y1.shape() == Shape{2});
    CHECK(y1.to_vector() == Vec{-1.5f, 3});

    const Tensor y3 = linear(mat_a().reshape({2, 1, 3}), lin_w(), lin_b());
    CHECK(y3.shape() == Shape{2, 1, 2});
    CHECK(y3.to_vector() == Vec{-1.5f, 3, -1.5f, 12});

    // A transposed weight view (wᵀ stored, read back with a trans flag) gives the same result.
    const Tensor wt = tensor({1, 2, 0, 1, -1, 0}, {3, 2}).t();
    CHECK(linear(mat_a(), wt, lin_b()).to_vector() == Vec{-1.5f, 3, -1.5f, 12});
}

TEST_CASE("linear backward: hand-computed gradients") {
    Tensor x = mat_a(), w = lin_w(), b = lin_b();
    x.requires_grad_();
    w.requires_grad_();
    b.requires_grad_();
    const Tensor y = linear(x, w, b);
    CHECK(std::string(y.grad_fn()->name()) == "LinearBackward");
    y.backward(ones({2, 2}));
    // gx = 1·w: every row is w's column sums [1+2, 0+1, -1+0] = [3, 1, -1].
    CHECK(x.grad().to_vector() == Vec{3, 1, -1, 3, 1, -1});
    // gw = 1ᵀ·x: every row is x's column sums [5, 7, 9].
    CHECK(w.grad().to_vector() == Vec{5, 7, 9, 5, 7, 9});
    // gb = column sums of the upstream gradient: [2, 2].
    CHECK(b.grad().to_vector() == Vec{2, 2});

    // Bias-free, and only w requiring grad: x gets nothing.
    Tensor x2 = mat_a(), w2 = lin_w();
    w2.requires_grad_();
    linear(x2, w2).backward(tensor({1, 0, 0, 1}, {2, 2}));
    // gw = gᵀ·x with g = I: gw = x.
    CHECK(w2.grad().to_vector() == Vec{1, 2, 3, 4, 5, 6});
    CHECK_FALSE(x2.grad().defined());
}

TEST_CASE("linear: shape errors name the op and the shapes") {
    CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 5})),
                         "linear: input shape [2, 3] and weight shape [4, 5] are incompatible (expected input of "
                         "shape [..., 5])",
                         shape_error);
    CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})),
                         "linear: bias shape [3] does not match weight shape [4, 3] (expected [4])", shape_error);
    CHECK_THROWS_AS(linear(zeros({2, 3}), zeros({3})), shape_error);
    CHECK_THROWS_AS(linear(scalar_tensor(1.0f), zeros({1, 1})), shape_error);
    CHECK_THROWS_AS(linear(zeros({2, 3}), zeros({4, 3}), zeros({4, 1})), shape_error);
}

TEST_CASE("matmul/linear: results and gradients do not depend on the thread count") {
    const int saved = get_num_threads();
    Generator gen(41);
    const Tensor x0 = uniform({96, 40}, -1.0f, 1.0f, gen);
    const Tensor w0 = uniform({30, 40}, -1.0f, 1.0f, gen);
    const Tensor b0 = uniform({30}, -1.0f, 1.0f, gen);
    const Tensor g0 = uniform({96, 30}, -1.0f, 1.0f, gen);
    const Tensor p0 = uniform({8, 12, 9}, -1.0f, 1.0f, gen);
    const Tensor q0 = uniform({9, 7}, -1.0f, 1.0f, gen);
    std::vector<std::vector<Vec>> runs;
    for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        Tensor x = x0.clone(), w = w0.clone(), b = b0.clone(), p = p0.clone(), q = q0.clone();
        for (Tensor* t : {&x, &w, &b, &p, &q}) t->requires_grad_();
        const Tensor y = linear(x, w, b);
        y.backward(g0);
        const Tensor z = matmul(p, q);
        z.backward(ones(z.shape()));
        runs.push_back({y.to_vector(), x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector(),
                        z.to_vector(), p.grad().to_vector(), q.grad().to_vector()});
    }
    set_num_threads(saved);
    for (std::size_t i = 0; i < runs[0].size(); ++i) {
        CAPTURE(i);
        CHECK(runs[0][i] == runs[1][i]);
        CHECK(runs[0][i] == runs[2][i]);
    }
}

TEST_CASE("gradcheck: matmul, every rank combination") {
    Generator gen(51);
    const auto mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
    CHECK(gradcheck("matmul 1-D . 1-D", mm, {grad_input({5}, gen), grad_input({5}, gen)}));
    CHECK(gradcheck("matmul 2-D @ 2-D", mm, {grad_input({3, 4}, gen), grad_input({4, 2}, gen)}));
    CHECK(gradcheck("matmul 1-D @ 2-D", mm, {grad_input({4}, gen), grad_input({4, 3}, gen)}));
    CHECK(gradcheck("matmul 2-D @ 1-D", mm, {grad_input({3, 4}, gen), grad_input({4}, gen)}));
    CHECK(gradcheck("matmul 3-D @ 2-D", mm, {grad_input({2, 3, 4}, gen), grad_input({4, 2}, gen)}));
    CHECK(gradcheck("matmul 3-D @ 1-D", mm, {grad_input({2, 3, 4}, gen), grad_input({4}, gen)}));
    CHECK(gradcheck("matmul 3-D @ 3-D", mm, {grad_input({2, 3, 4}, gen), grad_input({2, 4, 2}, gen)}));
    CHECK(gradcheck("matmul 2-D @ 3-D", mm, {grad_input({3, 4}, gen), grad_input({2, 4, 2}, gen)}));
    CHECK(gradcheck("matmul 1-D @ 3-D", mm, {grad_input({4}, gen), grad_input({2, 4, 3}, gen)}));
    CHECK(gradcheck("matmul 4-D @ 3-D (broadcast batch)", mm,
                    {grad_input({2, 1, 3, 4}, gen), grad_input({3, 4, 2}, gen)}));
    CHECK(gradcheck("matmul with transposed views",
                    [](const std::vector<Tensor>& in) { return matmul(in[0].t(), in[1].t()); },
                    {grad_input({4, 3}, gen), grad_input({2, 4}, gen)}));
}

TEST_CASE("gradcheck: linear") {
    Generator gen(52);
    const auto lin = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
    const auto lin_nb = [](const std::vector<Tensor>& in) { return linear(in[0], in[1]); };
    CHECK(gradcheck("linear x, w, b", lin, {grad_input({4, 3}, gen), grad_input({5, 3}, gen), grad_input({5}, gen)}));
    CHECK(gradcheck("linear without bias", lin_nb, {grad_input({4, 3}, gen), grad_input({5, 3}, gen)}));
    CHECK(gradcheck("linear 3-D x", lin, {grad_input({2, 3, 4}, gen), grad_input({2, 4}, gen), grad_input({2}, gen)}));
    CHECK(gradcheck("linear 1-D x", lin, {grad_input({3}, gen), grad_input({2, 3}, gen), grad_input({2}, gen)}));
    CHECK(gradcheck("linear with a transposed weight view",
                    [](const std::vector<Tensor>& in) { return linear(in[0], in[1].t(), in[2]); },
                    {grad_input({4, 3}, gen), grad_input({3, 5}, gen), grad_input({5}, gen)}));
}
