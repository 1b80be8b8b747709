// examples/onnx_run.hpp — the logic of the onnx_run tool (examples/onnx_run.cpp is only main()),
// kept in a header so that tests/test_onnx_run.cpp can test it without running a process.
//
//   onnx_run MODEL.onnx [--input FILE]... [--output PATH]... [--time N] [--threads N] [--quiet]
//
// Loads MODEL with nanotorch's ONNX runtime, binds one input per required model input (in order),
// runs it and prints the graph summary (onnx::format_graph), the inputs used, every output's shape
// and first 20 values, and for a 10-value output (a digit classifier) "prediction: D (score)".
// An input is a TensorProto .pb file, a NumPy .npy array (float32 or int64), random:SEED (standard
// normal values of the declared shape), a PNG/JPEG/BMP image, or idx:PATH:K (image K of an IDX
// file); images and IDX digits are prepared for the model's input shape (data/image.hpp): a
// [1, 1, H, W] input gets MNIST preprocessing at H×W, a flat 4·S·S input gets an S×S RGBA canvas
// with the ink in alpha (the seed's InferenceNet, S = 280). Without --input the model runs on
// zeros of its declared shape (symbolic dims = 1). --output writes the outputs as TensorProto .pb
// files (one path per output, or one directory that gets NAME.pb per output); --time N reruns the
// model N times and prints the median latency; a summary line names the ops that ran and the time
// loading (decoding, validating and planning) took. Deliberately not here: batching several images
// and colour inputs.
#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/data/image.hpp>  // opt-in: not part of the umbrella
#include <nanotorch/data/npy.hpp>
#include <nanotorch/nanotorch.hpp>

namespace onnx_run {

using namespace nanotorch;
using nanotorch::detail::str_cat;

inline const char* usage =
    "usage: onnx_run MODEL.onnx [--input FILE]... [--output PATH]... [--time N] [--threads N] [--quiet]\n"
    "Runs an ONNX model with nanotorch's runtime and prints its outputs.\n"
    "  --input FILE   one per required model input, in order. FILE is\n"
    "                   a TensorProto .pb file (by extension or content),\n"
    "                   a NumPy .npy array (little-endian float32 or int64, C order),\n"
    "                   random:SEED, standard normal values of the input's declared shape,\n"
    "                   a PNG/JPEG/BMP image, prepared for the input's shape: [1, 1, H, W] gets\n"
    "                     grayscale, resize to HxW, invert if the background is light, /255 and\n"
    "                     MNIST normalisation; a flat 4*S*S input gets an SxS RGBA canvas with the\n"
    "                     ink in alpha (the seed's 280x280 browser canvas),\n"
    "                   or idx:PATH:K, image K (from 0) of an IDX image file (raw or .gz),\n"
    "                     prepared the same way (never inverted)\n"
    "                 without --input, every required input is zeros of its declared shape\n"
    "                 (a symbolic dimension counts as 1)\n"
    "  --output PATH  write the outputs as TensorProto .pb files: one --output per model\n"
    "                 output, in order, or a single existing directory (or PATH ending in /)\n"
    "                 that gets NAME.pb for each output\n"
    "  --time N       after the first run, run N more times and print the median latency\n"
    "  --threads N    use N threads (default: NANOTORCH_NUM_THREADS, else all cores)\n"
    "  --max-work N   refuse a run that needs more than N units of work (elements read and\n"
    "                 written, multiply-adds, window taps: onnx::RuntimeOptions::max_work);\n"
    "                 for models from sources you do not trust (default: no bound)\n"
    "  --quiet, -q    print only the prediction line(s) of 10-value outputs\n"
    "  --help, -h     show this help\n"
    "Errors print one line 'onnx_run: error: ...' on stderr and exit with status 1.\n";

// ---- command line ----

struct Options {
    std::string model;
    std::vector<std::string> inputs;
    std::vector<std::string> outputs;
    std::int64_t time_runs = 0;  // 0: do not time
    int threads = 0;             // 0: leave the thread count as it is
    std::int64_t max_work = 0;   // 0: no bound (onnx::RuntimeOptions::max_work)
    bool quiet = false;
    bool help = false;
};

namespace detail {

/// A positive decimal count for `option` (at most `max`). Throws value_error otherwise.
inline std::int64_t parse_count(const std::string& option, const std::string& v, std::int64_t max) {
    const bool digits = !v.empty() && v.size() <= 18 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
    const std::int64_t n = digits ? std::stoll(v) : -1;
    NANOTORCH_CHECK(n >= 1 && n <= max, value_error, option, " needs a whole number from 1 to ", max, ", got '", v, "'");
    return n;
}

}  // namespace detail

/// Parses the arguments after the program name. Throws value_error for an unknown option, a
/// missing or malformed option value, a second model path, or no model (unless --help is given).
inline Options parse_args(const std::vector<std::string>& args) {
    Options o;
    auto value = [&](std::size_t& k, const char* what) -> const std::string& {
        NANOTORCH_CHECK(k + 1 < args.size(), value_error, args[k], " needs a value (", what, ")");
        return args[++k];
    };
    for (std::size_t k = 0; k < args.size(); ++k) {
        const std::string& a = args[k];
        if (a == "--output" || a == "-o") {
            o.outputs.push_back(value(k, "a .pb path or a directory"));
        } else if (a.rfind("--output=", 0) == 0) {
            o.outputs.push_back(a.substr(9));
        } else if (a == "--time") {
            o.time_runs = detail::parse_count(a, value(k, "a number of runs"), 100000000);
        } else if (a.rfind("--time=", 0) == 0) {
            o.time_runs = detail::parse_count("--time", a.substr(7), 100000000);
        } else if (a == "--threads") {
            o.threads = static_cast<int>(detail::parse_count(a, value(k, "a thread count"), 1024));
        } else if (a.rfind("--threads=", 0) == 0) {
            o.threads = static_cast<int>(detail::parse_count("--threads", a.substr(10), 1024));
        } else if (a == "--max-work") {
            o.max_work = detail::parse_count(a, value(k, "a number of work units"), std::int64_t(1) << 62);
        } else if (a.rfind("--max-work=", 0) == 0) {
            o.max_work = detail::parse_count("--max-work", a.substr(11), std::int64_t(1) << 62);
        } else if (a == "--help" || a == "-h") {
            o.help = true;
        } else if (a == "--quiet" || a == "-q") {
            o.quiet = true;
        } else if (a == "--input" || a == "-i") {
            o.inputs.push_back(value(k, "a .pb or .npy file, random:SEED, an image or idx:PATH:K"));
        } else if (a.rfind("--input=", 0) == 0) {
            o.inputs.push_back(a.substr(8));
        } else if (a.size() > 1 && a[0] == '-') {
            throw value_error("unknown option '" + a + "' (see --help)");
        } else {
            NANOTORCH_CHECK(o.model.empty(), value_error, "unexpected argument '", a, "': the model is already '",
                            o.model, "' (inputs are given with --input)");
            o.model = a;
        }
    }
    NANOTORCH_CHECK(o.help || !o.model.empty(), value_error, "no model given (usage: onnx_run MODEL.onnx [--input FILE]...)");
    return o;
}

// ---- model inputs ----

/// The largest input run on zeros or built from an image (2^28 elements, 1 GiB of floats).
inline constexpr std::int64_t max_input_elements = std::int64_t(1) << 28;

/// The declared shape of a model input with every symbolic or unknown dim taken as 1.
/// Throws value_error when the input declares no shape, has a negative dim, or more than
/// max_input_elements elements.
inline Shape declared_shape(const onnx::ValueInfoProto& info) {
    NANOTORCH_CHECK(info.has_shape, value_error, "input '", info.name,
                    "' declares no shape, so zeros cannot be made for it: pass --input");
    Shape s;
    std::int64_t n = 1;
    for (const auto& d : info.shape) {
        const std::int64_t v = d.has_value ? d.value : 1;
        NANOTORCH_CHECK(v >= 0, value_error, "input '", info.name, "' declares a negative dimension ", v);
        NANOTORCH_CHECK(v == 0 || n <= max_input_elements / v, value_error, "input '", info.name,
                        "' declares more than ", max_input_elements, " elements");
        n *= v;
        s.push_back(v);
    }
    return s;
}

/// How an image is laid out for a model input.
struct ImageTarget {
    enum class Kind { gray, canvas } kind = Kind::gray;
    std::int64_t height = 0, width = 0;  // for a canvas: height == width == S
};

/// Decides how to feed an image to `info`: [.., H, W] with all leading dims 1 and H, W >= 2 is a
/// grayscale MNIST-style input; a shape whose dims are all 1 except the last, which is 4·S·S, is
/// an S×S RGBA canvas. Throws value_error for any other shape or a non-FLOAT input.
inline ImageTarget image_target(const onnx::ValueInfoProto& info) {
    NANOTORCH_CHECK(info.elem_type == static_cast<std::int32_t>(onnx::DataType::float32), value_error, "input '",
                    info.name, "' is ", onnx::dtype_name(info.elem_type), ": an image can only feed a FLOAT input");
    const Shape s = declared_shape(info);
    const std::size_t r = s.size();
    auto leading_ones = [&](std::size_t upto) {
        return std::all_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(upto), [](std::int64_t d) { return d == 1; });
    };
    if (r >= 2 && s[r - 2] >= 2 && s[r - 1] >= 2 && leading_ones(r - 2))
        return {ImageTarget::Kind::gray, s[r - 2], s[r - 1]};
    if (r >= 1 && leading_ones(r - 1) && s[r - 1] % 4 == 0) {
        const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(double(s[r - 1] / 4))));
        if (side >= 2 && 4 * side * side == s[r - 1]) return {ImageTarget::Kind::canvas, side, side};
    }
    throw value_error("input '" + info.name + "' has shape " + shape_str(s) +
                      ", which takes no image: expected [1, 1, H, W] (grayscale) or a flat 4*S*S RGBA canvas");
}

/// Zeros of the input's declared shape and element type. Throws as declared_shape.
inline onnx::Value zeros_input(const onnx::ValueInfoProto& info) {
    const Shape s = declared_shape(info);
    const auto type = static_cast<onnx::DataType>(info.elem_type);
    const auto n = static_cast<std::size_t>(shape_numel(s));
    if (onnx::integer_type(type)) return onnx::Value::of_ints(std::vector<std::int64_t>(n, 0), s, type);
    if (type == onnx::DataType::float64) return onnx::Value::of_doubles(std::vector<double>(n, 0.0), s);
    return onnx::Value::of(zeros(s));
}

namespace detail {

inline std::string lower_extension(const std::string& path) {
    const auto slash = path.find_last_of("/\\");
    const auto dot = path.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    std::string e = path.substr(dot);
    for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return e;
}

// The first bytes of a file, for sniffing; empty if it cannot be read (the real reader reports why).
inline std::vector<unsigned char> head_bytes(const std::string& path, std::size_t n) {
    std::vector<unsigned char> b(n);
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n));
    b.resize(static_cast<std::size_t>(in.gcount()));
    return b;
}

inline onnx::Value image_value(const std::vector<float>& data, const onnx::ValueInfoProto& info) {
    return onnx::Value::of(tensor(data, declared_shape(info)));
}

inline std::string target_text(const ImageTarget& t) {
    return t.kind == ImageTarget::Kind::gray
               ? str_cat("grayscale ", t.width, "x", t.height, ", MNIST-normalised")
               : str_cat("RGBA canvas ", t.width, "x", t.height, ", ink in alpha");
}

}  // namespace detail

/// idx:PATH:K split into PATH and K (the last ':' separates them, so PATH may contain ':').
/// Throws value_error when the spec lacks PATH or K, or K is not a decimal number below 10^15.
inline std::pair<std::string, std::int64_t> parse_idx_spec(const std::string& spec) {
    const std::string body = spec.substr(4);  // after "idx:"
    const auto colon = body.rfind(':');
    NANOTORCH_CHECK(colon != std::string::npos && colon > 0, value_error, "input '", spec,
                    "' must be idx:PATH:K (K = image index from 0)");
    const std::string k = body.substr(colon + 1);
    NANOTORCH_CHECK(!k.empty() && k.size() <= 15 && std::all_of(k.begin(), k.end(), [](char c) { return c >= '0' && c <= '9'; }),
                    value_error, "input '", spec, "': image index '", k, "' is not a non-negative integer");
    return {body.substr(0, colon), std::stoll(k)};
}

/// A loaded input: the value and one line saying where it came from.
struct LoadedInput {
    onnx::Value value;
    std::string description;
};

/// Loads one --input for the model input `info` (see the file comment for the forms of `spec`).
/// Throws io_error / parse_error naming the file when it cannot be read or decoded, value_error
/// for a bad idx spec or index, an image for an input that takes none, or a tensor whose type
/// does not fit. The runtime later checks the value's shape against the model.
inline LoadedInput load_input(const std::string& spec, const onnx::ValueInfoProto& info) {
    if (spec.rfind("random:", 0) == 0) {
        const std::string seed = spec.substr(7);
        NANOTORCH_CHECK(!seed.empty() && seed.size() <= 19 &&
                            std::all_of(seed.begin(), seed.end(), [](char c) { return c >= '0' && c <= '9'; }),
                        value_error, "input '", spec, "': the seed '", seed, "' is not a non-negative integer");
        NANOTORCH_CHECK(info.elem_type == static_cast<std::int32_t>(onnx::DataType::float32), value_error, "input '",
                        info.name, "' is ", onnx::dtype_name(info.elem_type), ": random:SEED fills FLOAT inputs only");
        const Shape s = declared_shape(info);
        Generator gen(std::stoull(seed));
        std::vector<float> v(static_cast<std::size_t>(shape_numel(s)));
        for (float& x : v) x = gen.normal();
        return {onnx::Value::of(tensor(v, s)), str_cat("standard normal values, seed ", seed)};
    }
    if (detail::lower_extension(spec) == ".npy") {
        data::NpyArray a = data::read_npy(spec);
        const bool wants_int = info.elem_type == static_cast<std::int32_t>(onnx::DataType::int64);
        NANOTORCH_CHECK(a.is_int == wants_int, value_error, "input '", info.name, "' is ",
                        onnx::dtype_name(info.elem_type), " but ", spec, " holds ", a.is_int ? "int64" : "float32");
        const std::string what = str_cat("array ", spec, " ", shape_str(a.shape));
        if (a.is_int) return {onnx::Value::of_ints(std::move(a.i), a.shape), what};
        return {onnx::Value::of(tensor(a.f, a.shape)), what};
    }
    if (spec.rfind("idx:", 0) == 0) {
        // The input itself is checked before whether the model can take it, so that a bad file
        // or index is reported as such whatever the model.
        const auto [path, index] = parse_idx_spec(spec);
        const data::GrayImage digit = data::idx_image(data::read_idx_images(path), index, path);
        const ImageTarget t = image_target(info);
        const std::vector<float> v = t.kind == ImageTarget::Kind::gray ? data::idx_to_mnist(digit, t.height, t.width)
                                                                       : data::idx_to_canvas(digit, t.width);
        return {detail::image_value(v, info), str_cat("image ", index, " of ", path, " (", digit.width, "x",
                                                      digit.height, ") as ", detail::target_text(t))};
    }
    const std::string ext = detail::lower_extension(spec);
    bool is_image = ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
    if (!is_image && ext != ".pb") {
        const auto head = detail::head_bytes(spec, 4);
        is_image = data::is_image(head.data(), head.size());
    }
    if (is_image) {
        const data::Image im = data::read_image(spec);
        const ImageTarget t = image_target(info);
        const std::vector<float> v = t.kind == ImageTarget::Kind::gray ? data::image_to_mnist(im, t.height, t.width)
                                                                       : data::image_to_canvas(im, t.width);
        return {detail::image_value(v, info),
                str_cat("image ", spec, " (", im.width, "x", im.height, ") as ", detail::target_text(t))};
    }
    const onnx::TensorProto tp = onnx::read_tensor(spec);
    const Shape dims(tp.dims.begin(), tp.dims.end());
    const std::string what = str_cat("tensor ", spec, " ", shape_str(dims));
    if (info.elem_type == static_cast<std::int32_t>(onnx::DataType::int64))
        return {onnx::Value::of_ints(onnx::tensor_to_int64s(tp), dims), what};
    if (info.elem_type != static_cast<std::int32_t>(onnx::DataType::float32))  // BOOL, DOUBLE, INT32, ...: as stored
        return {onnx::value_from_proto(tp), what};
    return {onnx::Value::of(tensor(onnx::tensor_to_floats(tp), dims)), what};
}

// ---- output ----

/// "prediction: D (score)" for a 10-value output (argmax and its value, 4 decimals); "" otherwise.
inline std::string prediction_line(const std::vector<double>& v, const std::string& label = "prediction") {
    if (v.size() != 10) return "";
    const auto best = static_cast<std::size_t>(std::max_element(v.begin(), v.end()) - v.begin());
    std::ostringstream os;
    os << label << ": " << best << " (" << std::fixed << std::setprecision(4) << v[best] << ")";
    return os.str();
}

/// "output NAME [dims]: v0 v1 ... v19 ..." (6 significant digits; int64 outputs exactly).
inline std::string output_line(const std::string& name, const onnx::Value& v, std::size_t max_values = 20) {
    std::ostringstream os;
    os << "output " << name << " " << shape_str(v.shape) << ":";
    const std::size_t n = static_cast<std::size_t>(v.numel());
    const std::vector<double> f = v.is_int ? std::vector<double>() : v.to_doubles();
    for (std::size_t i = 0; i < n && i < max_values; ++i) {
        os << ' ';
        if (v.is_int) os << v.i[i];
        else os << std::setprecision(6) << f[i];
    }
    if (n > max_values) os << " ...";
    return os.str();
}

/// All values of an output as doubles (for prediction_line).
inline std::vector<double> output_values(const onnx::Value& v) {
    return v.to_doubles();
}

/// The files --output names for the model's outputs, in order: one path per output, or, when a
/// single PATH is an existing directory or ends in '/', PATH/NAME.pb for each output (characters
/// other than letters, digits, '.', '-' and '_' in NAME become '_'). Throws value_error when the
/// counts differ or two outputs would share a file.
inline std::vector<std::string> output_paths(const std::vector<std::string>& spec, const std::vector<std::string>& names) {
    if (spec.empty()) return {};
    std::error_code ec;
    const bool dir = spec.size() == 1 && (spec[0].back() == '/' || std::filesystem::is_directory(spec[0], ec));
    if (!dir) {
        NANOTORCH_CHECK(spec.size() == names.size(), value_error, "the model has ", names.size(), " output(s) but ",
                        spec.size(), " --output given (give one per output, or one directory)");
        return spec;
    }
    std::vector<std::string> paths;
    for (const std::string& n : names) {
        std::string file = n.empty() ? std::string("output") : n;
        for (char& c : file)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
        if (file == "." || file == "..") file = "output";
        const std::string path = (std::filesystem::path(spec[0]) / (file + ".pb")).string();
        NANOTORCH_CHECK(std::find(paths.begin(), paths.end(), path) == paths.end(), value_error, "outputs '", n,
                        "' and another would both be written to ", path, ": give one --output per output");
        paths.push_back(path);
    }
    return paths;
}

/// Writes one output as a TensorProto named after it. Throws io_error naming the path.
inline void write_output(const std::string& name, const onnx::Value& v, const std::string& path) {
    const std::vector<unsigned char> bytes = onnx::encode_tensor(onnx::value_to_proto(name, v));  // its own element type
    util::write_file_atomic(path, bytes.data(), bytes.size());
}

/// "ran 8 nodes: Conv x2, Gemm x2, ...; loaded in 1.23 ms" (op types in graph order of first use),
/// with "; 2 run inside the Conv or Gemm before them" when the runtime fused that many nodes
/// (Runtime::fused_nodes) and "; 3 Conv weights packed" when it packed that many at load
/// (Runtime::packed_weights).
inline std::string summary_line(const onnx::ModelProto& m, double load_ms, std::size_t fused = 0,
                                std::size_t packed = 0) {
    std::vector<std::pair<std::string, int>> counts;
    for (const auto& n : m.graph.node) {
        auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == n.op_type; });
        if (it == counts.end()) counts.emplace_back(n.op_type, 1);
        else ++it->second;
    }
    std::ostringstream os;
    os << "ran " << m.graph.node.size() << " node" << (m.graph.node.size() == 1 ? "" : "s");
    for (std::size_t k = 0; k < counts.size(); ++k)
        os << (k ? ", " : ": ") << counts[k].first << (counts[k].second > 1 ? " x" + std::to_string(counts[k].second) : "");
    if (fused > 0) os << "; " << fused << " run inside the Conv or Gemm before them";
    if (packed > 0) os << "; " << packed << " Conv weight" << (packed == 1 ? "" : "s") << " packed";
    os << "; loaded (decoded, validated, planned) in " << std::fixed << std::setprecision(2) << load_ms << " ms";
    return os.str();
}

/// "time: median 17.2 us over 1000 runs (min 16.9 us, max 40.1 us), 1 thread".
inline std::string time_line(std::vector<double> us, int threads) {
    std::sort(us.begin(), us.end());
    const std::size_t n = us.size();
    const double median = n % 2 ? us[n / 2] : 0.5 * (us[n / 2 - 1] + us[n / 2]);
    std::ostringstream os;
    os << std::fixed << std::setprecision(1) << "time: median " << median << " us over " << n << " run"
       << (n == 1 ? "" : "s") << " (min " << us.front() << " us, max " << us.back() << " us), " << threads
       << " thread" << (threads == 1 ? "" : "s");
    return os.str();
}

// ---- the tool ----

/// Loads, binds, runs and prints as described in the file comment. Returns the exit status (0).
/// Throws whatever loading or running throws; value_error when the number of --input differs
/// from the number of required model inputs.
inline int run(const Options& o, std::ostream& out) {
    if (o.help) {
        out << usage;
        return 0;
    }
    if (o.threads > 0) set_num_threads(o.threads);
    using clock = std::chrono::steady_clock;
    const auto t_load = clock::now();
    onnx::RuntimeOptions options;
    options.max_work = o.max_work;
    const onnx::Runtime rt = onnx::load_onnx(o.model, {}, options);
    const double load_ms = std::chrono::duration<double, std::milli>(clock::now() - t_load).count();
    const std::vector<onnx::ValueInfoProto> req = rt.required_inputs();
    if (!o.inputs.empty() && o.inputs.size() != req.size()) {
        std::string names;
        for (const auto& r : req) names += (names.empty() ? "" : ", ") + ("'" + r.name + "'");
        throw value_error(str_cat("the model has ", req.size(), " required input(s)", names.empty() ? "" : " (",
                                  names, names.empty() ? "" : ")", " but ", o.inputs.size(), " --input given"));
    }
    onnx::NamedValues inputs;
    std::vector<std::string> described;
    for (std::size_t k = 0; k < req.size(); ++k) {
        if (o.inputs.empty()) {
            inputs.emplace_back(req[k].name, zeros_input(req[k]));
            described.push_back(str_cat("input ", req[k].name, " ", shape_str(inputs.back().second.shape), ": zeros"));
        } else {
            LoadedInput in = load_input(o.inputs[k], req[k]);
            described.push_back(str_cat("input ", req[k].name, " ", shape_str(in.value.shape), ": ", in.description));
            inputs.emplace_back(req[k].name, std::move(in.value));
        }
    }
    std::vector<std::string> out_names;
    for (const auto& v : rt.model().graph.output) out_names.push_back(v.name);
    const std::vector<std::string> out_paths = output_paths(o.outputs, out_names);  // checked before running
    const onnx::NamedValues outs = rt.run_values(inputs);
    std::vector<double> times_us;
    for (std::int64_t r = 0; r < o.time_runs; ++r) {
        const auto t0 = clock::now();
        const onnx::NamedValues again = rt.run_values(inputs);
        (void)again;
        times_us.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
    }

    if (!o.quiet) {
        out << onnx::format_graph(rt.model());
        for (const auto& d : described) out << d << "\n";
        out << summary_line(rt.model(), load_ms, rt.fused_nodes(), rt.packed_weights()) << "\n";
    }
    if (!times_us.empty()) out << time_line(times_us, get_num_threads()) << "\n";
    std::size_t tens = 0;
    for (const auto& [name, v] : outs) tens += v.numel() == 10;
    for (const auto& [name, v] : outs) {
        if (!o.quiet) out << output_line(name, v) << "\n";
        const std::string p = prediction_line(output_values(v), tens > 1 ? "prediction " + name : "prediction");
        if (!p.empty()) out << p << "\n";
    }
    if (o.outputs.size() == 1 && o.outputs[0].back() == '/') {
        std::error_code ec;
        std::filesystem::create_directories(o.outputs[0], ec);
        if (ec) throw io_error(o.outputs[0], "cannot create the output directory: " + ec.message());
    }
    for (std::size_t k = 0; k < out_paths.size(); ++k) {
        write_output(outs[k].first, outs[k].second, out_paths[k]);
        if (!o.quiet) out << "wrote " << outs[k].first << " to " << out_paths[k] << "\n";
    }
    return 0;
}

/// main() for the tool: parses, runs, and turns any exception into exactly one line
/// "onnx_run: error: <message>" on `err` (newlines in the message become spaces) and status 1.
inline int main(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    try {
        std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + (argc > 0 ? argc : 0));
        return run(parse_args(args), out);
    } catch (const std::exception& e) {
        std::string msg = e.what();
        std::replace(msg.begin(), msg.end(), '\n', ' ');
        err << "onnx_run: error: " << msg << "\n";
    } catch (...) {
        err << "onnx_run: error: unknown exception\n";
    }
    return 1;
}

}  // namespace onnx_run
