// examples/wasm/nanotorch_wasm.cpp — the C ABI that examples/web/nanotorch.js calls: the seed's
// canvas model (mnist::InferenceNet) loaded from ONNX bytes, run, fine-tuned on the user's
// drawings mixed with replayed MNIST digits, evaluated, exported back to ONNX bytes, reset.
//
// Built by scripts/build_wasm.sh with Emscripten into a standalone nanotorch_wasm.wasm (no
// Emscripten JavaScript glue: nanotorch.js instantiates it and supplies the few WASI imports).
// One model per instance (the page has one); every buffer is allocated by the caller with
// nt_alloc and freed with nt_free.
//
// Errors: no exception crosses the ABI. Every nt_* function that can fail returns a status
// (0 = success, else one of NtStatus below, chosen by the nanotorch::error subclass) and keeps
// the exception's message for nt_last_error(), so JavaScript can throw an Error carrying it.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../mnist_net.hpp"

#if defined(__EMSCRIPTEN__)
#include <emscripten/emscripten.h>
#define NT_EXPORT extern "C" EMSCRIPTEN_KEEPALIVE
#else
#define NT_EXPORT extern "C"
#endif

namespace {

using namespace nanotorch;

constexpr std::int64_t canvas_bytes = 280 * 280 * 4;  // the page's getImageData: RGBA
constexpr std::int64_t digit_pixels = 28 * 28;         // one MNIST digit, uint8

enum NtStatus : int {
    nt_ok = 0,
    nt_shape_error = 1,
    nt_value_error = 2,
    nt_io_error = 3,
    nt_parse_error = 4,
    nt_unsupported_error = 5,
    nt_autograd_error = 6,
    nt_error = 7,          // another nanotorch::error
    nt_std_exception = 8,  // std::bad_alloc and the like
    nt_unknown = 9,
};

struct State {
    mnist::InferenceNet model;
    std::vector<std::pair<std::string, Tensor>> loaded;  // deep copies, for nt_reset
};

std::unique_ptr<State>& state() {
    static std::unique_ptr<State> s;  // a Module is not movable: held by pointer
    return s;
}
std::string& last_error() {
    static std::string e;
    return e;
}
std::vector<unsigned char>& export_buffer() {
    static std::vector<unsigned char> b;
    return b;
}

// Runs f, turning any exception into a status and a message (most specific class first).
template <class F>
int guarded(const char* what, F&& f) {
    try {
        f();
        last_error().clear();
        return nt_ok;
    } catch (const shape_error& e) {
        last_error() = std::string(what) + ": " + e.what();
        return nt_shape_error;
    } catch (const value_error& e) {
        last_error() = std::string(what) + ": " + e.what();
        return nt_value_error;
    } catch (const io_error& e) {
        last_error() = std::string(what) + ": " + e.what();
        return nt_io_error;
    } catch (const parse_error& e) {
        last_error() = std::string(what) + ": " + e.what();
        return nt_parse_error;
    } catch (const unsupported_error& e) {
        last_error() = std::string(what) + ": " + e.what();
        return nt_unsupported_error;
    } catch (const autograd_error& e) {
        last_error() = std::string(what) + ": " + e.what();
        return nt_autograd_error;
    } catch (const error& e) {
        last_error() = std::string(what) + ": " + e.what();
        return nt_error;
    } catch (const std::exception& e) {
        last_error() = std::string(what) + ": " + e.what();
        return nt_std_exception;
    } catch (...) {
        last_error() = std::string(what) + ": unknown exception";
        return nt_unknown;
    }
}

State& loaded_state(const char* what) {
    (void)what;  // guarded() puts the function's name in front of the message
    NANOTORCH_CHECK(state() != nullptr, value_error, "no model is loaded (call loadModel first)");
    return *state();
}

// One canvas of RGBA bytes -> [1, 1, 28, 28] through InferenceNet's own preprocessing (so a
// drawing trains on exactly what inference sees). Only the alpha bytes are converted: the graph's
// first step keeps the alpha channel alone, so the values are the same as preprocess(all bytes).
Tensor canvas_to_input(const unsigned char* rgba) {
    Tensor alpha = empty({1, 1, 280, 280});
    float* p = alpha.data_ptr();
    for (std::int64_t j = 0; j < 280 * 280; ++j) p[j] = static_cast<float>(rgba[4 * j + 3]);
    return mnist::InferenceNet::preprocess_alpha(alpha);
}

// n canvases -> [n, 1, 28, 28].
Tensor canvases_to_input(const unsigned char* rgba, std::int64_t n) {
    std::vector<Tensor> rows;
    rows.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) rows.push_back(canvas_to_input(rgba + i * canvas_bytes));
    return cat(rows, 0);
}

// n MNIST digits of uint8 pixels -> [n, 1, 28, 28], as mnist_train prepares them (ToTensor's
// / 255, then Normalize((0.1307,), (0.3081,))).
void digit_to_input(const unsigned char* px, float* out) {
    for (std::int64_t j = 0; j < digit_pixels; ++j)
        out[j] = (static_cast<float>(px[j]) / 255.0f - data::mnist_mean) / data::mnist_std;
}
Tensor digits_to_input(const unsigned char* px, std::int64_t n) {
    Tensor x = empty({n, 1, 28, 28});
    for (std::int64_t i = 0; i < n; ++i) digit_to_input(px + i * digit_pixels, x.data_ptr() + i * digit_pixels);
    return x;
}

void check_labels(const char* what, const unsigned char* labels, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
        NANOTORCH_CHECK(labels[i] < 10, value_error, what, ": label ", static_cast<int>(labels[i]), " at index ", i,
                        " is not a digit 0..9");
}

}  // namespace

/// Memory for the caller's buffers (nullptr when out of memory).
NT_EXPORT void* nt_alloc(std::uint32_t bytes) { return std::malloc(bytes ? bytes : 1); }
NT_EXPORT void nt_free(void* p) { std::free(p); }

/// The message of the last failed call ("" after a success).
NT_EXPORT const char* nt_last_error() { return last_error().c_str(); }

/// Loads an ONNX file written for mnist::InferenceNet (onnx::export_onnx of the canvas model):
/// its initializers become the weights of a fresh InferenceNet (names must match: strict), and
/// a copy is kept for nt_reset. On error the previous model stays loaded.
NT_EXPORT int nt_load_model(const unsigned char* bytes, std::uint32_t size) {
    return guarded("loadModel", [&] {
        const onnx::ModelProto m = onnx::decode_model(bytes, size, "model.onnx");
        auto s = std::make_unique<State>();
        onnx::load_onnx_weights(s->model, m, /*strict=*/true, "model.onnx");
        NoGradGuard ng;
        for (auto& e : nn::state_dict(s->model)) s->loaded.emplace_back(e.first, e.second.clone());
        s->model.eval();
        state() = std::move(s);
    });
}

/// probs[10] = the model's softmax for one canvas (size must be 280·280·4).
NT_EXPORT int nt_predict(const unsigned char* rgba, std::uint32_t size, float* probs) {
    return guarded("predict", [&] {
        State& s = loaded_state("predict");
        NANOTORCH_CHECK(size == canvas_bytes, shape_error, "predict: expected ", canvas_bytes,
                        " RGBA bytes (a 280x280 canvas), got ", size);
        s.model.eval();
        NoGradGuard ng;
        // = s.model(all bytes as floats), InferenceNet::forward, without converting the RGB bytes
        const Tensor p = F::softmax(s.model.logits(canvas_to_input(rgba)), 1).contiguous();
        for (int k = 0; k < 10; ++k) probs[k] = p.data_ptr()[k];
    });
}

/// Fine-tunes the model with SGD (fresh momentum buffers each call) for `steps` steps. Each step's
/// batch holds min(n_user, ceil(batch / 2)) of the user's drawings, taken in turn, and fills the
/// rest with replay digits drawn at random (Generator(seed)); Net in training mode (dropout as in
/// mnist_train), loss = nll_loss(log_softmax(logits)). first_loss / last_loss: the first and the
/// last step's loss. Dropout masks use the default generator, seeded with `seed`.
NT_EXPORT int nt_learn(const unsigned char* user_rgba, const unsigned char* user_labels, std::uint32_t n_user,
                       const unsigned char* replay_px, const unsigned char* replay_labels, std::uint32_t n_replay,
                       std::uint32_t steps, float lr, float momentum, std::uint32_t batch, std::uint32_t seed,
                       float* first_loss, float* last_loss) {
    return guarded("learn", [&] {
        State& s = loaded_state("learn");
        NANOTORCH_CHECK(n_user + n_replay > 0, value_error, "learn: no examples (neither drawings nor replay digits)");
        NANOTORCH_CHECK(steps >= 1 && steps <= 10000, value_error, "learn: steps = ", steps, " is not in [1, 10000]");
        NANOTORCH_CHECK(batch >= 1 && batch <= 1024, value_error, "learn: batch = ", batch, " is not in [1, 1024]");
        NANOTORCH_CHECK(std::isfinite(lr) && lr > 0.0f, value_error, "learn: lr = ", lr, " is not a positive number");
        NANOTORCH_CHECK(std::isfinite(momentum) && momentum >= 0.0f && momentum < 1.0f, value_error,
                        "learn: momentum = ", momentum, " is not in [0, 1)");
        check_labels("examples", user_labels, n_user);
        check_labels("replay", replay_labels, n_replay);

        // Preprocess every drawing once; index rows per step.
        const Tensor user_x = n_user ? canvases_to_input(user_rgba, n_user) : Tensor();
        const std::int64_t per_user =
            n_replay == 0 ? std::min<std::int64_t>(n_user, batch)
                          : std::min<std::int64_t>(n_user, (static_cast<std::int64_t>(batch) + 1) / 2);
        const std::int64_t per_replay = n_replay == 0 ? 0 : static_cast<std::int64_t>(batch) - per_user;

        manual_seed(seed);
        Generator pick(seed);
        optim::SGD opt(s.model.parameters(), optim::SGDOptions(lr).momentum(momentum));
        s.model.train();
        std::int64_t next_user = 0;
        float first = 0.0f, last = 0.0f;
        for (std::uint32_t step = 0; step < steps; ++step) {
            std::vector<Tensor> rows;
            std::vector<std::int64_t> target;
            for (std::int64_t i = 0; i < per_user; ++i, next_user = (next_user + 1) % n_user) {
                rows.push_back(user_x.narrow(0, next_user, 1));
                target.push_back(user_labels[next_user]);
            }
            if (per_replay > 0) {  // only the digits drawn are converted
                Tensor rx = empty({per_replay, 1, 28, 28});
                for (std::int64_t i = 0; i < per_replay; ++i) {
                    const auto r = static_cast<std::int64_t>(pick.next_u64() % n_replay);
                    digit_to_input(replay_px + r * digit_pixels, rx.data_ptr() + i * digit_pixels);
                    target.push_back(replay_labels[r]);
                }
                rows.push_back(rx);
            }
            const Tensor x = cat(rows, 0);
            opt.zero_grad();
            const Tensor loss = F::nll_loss(F::log_softmax(s.model.logits(x), 1), target);
            loss.backward();
            opt.step();
            last = loss.item();
            if (step == 0) first = last;
        }
        s.model.eval();
        *first_loss = first;
        *last_loss = last;
    });
}

/// accuracy = fraction of n MNIST digits (uint8 28x28 each) whose argmax matches the label.
NT_EXPORT int nt_evaluate(const unsigned char* px, const unsigned char* labels, std::uint32_t n, float* accuracy) {
    return guarded("evaluate", [&] {
        State& s = loaded_state("evaluate");
        NANOTORCH_CHECK(n > 0, value_error, "evaluate: no digits");
        check_labels("labels", labels, n);
        s.model.eval();
        NoGradGuard ng;
        std::int64_t correct = 0;
        constexpr std::int64_t chunk = 250;
        for (std::int64_t b = 0; b < n; b += chunk) {
            const std::int64_t m = std::min<std::int64_t>(chunk, n - b);
            const auto pred = s.model.logits(digits_to_input(px + b * digit_pixels, m)).argmax(1);
            for (std::int64_t i = 0; i < m; ++i) correct += pred[static_cast<std::size_t>(i)] == labels[b + i];
        }
        *accuracy = static_cast<float>(static_cast<double>(correct) / static_cast<double>(n));
    });
}

/// Exports the current InferenceNet (opset 9, the ONNX.js-compatible profile) into an internal
/// buffer that stays valid until the next nt_export_onnx; *data and *size point at it.
NT_EXPORT int nt_export_onnx(const unsigned char** data, std::uint32_t* size) {
    return guarded("exportOnnx", [&] {
        State& s = loaded_state("exportOnnx");
        export_buffer() = onnx::export_onnx_bytes(s.model, zeros({canvas_bytes}));
        *data = export_buffer().data();
        *size = static_cast<std::uint32_t>(export_buffer().size());
    });
}

/// Restores the weights nt_load_model loaded.
NT_EXPORT int nt_reset() {
    return guarded("reset", [&] {
        State& s = loaded_state("reset");
        nn::load_state_dict(s.model, s.loaded, /*strict=*/true, "the loaded model");
        s.model.eval();
    });
}
