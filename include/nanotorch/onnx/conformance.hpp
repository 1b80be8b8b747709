// nanotorch/onnx/conformance.hpp — run ONNX backend-test directories (model.onnx plus
// test_data_set_*/input_*.pb, output_*.pb) through the Runtime and compare with the expected outputs.
//
// Shared by examples/onnx_conformance.cpp and tests/test_onnx_runtime.cpp so that the tool and the
// unit test judge a directory the same way. A model the runtime rejects as unsupported is a skip
// (with its reasons, grouped per operator for reporting); any other exception, a missing output or
// a value outside |a - b| <= atol + rtol·|b| (NaN equals NaN) is a failure naming the first
// mismatch. Not provided: sequence/optional/map test data (such models are unsupported anyway)
// and any tolerance other than the element-wise one above.
#pragma once

#include <algorithm>   // std::sort
#include <cmath>       // std::isnan, std::fabs
#include <cstdint>
#include <filesystem>  // directory walking
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/error.hpp>
#include <nanotorch/onnx/proto.hpp>
#include <nanotorch/onnx/runtime.hpp>

namespace nanotorch::onnx::conformance {

struct Options {
    double rtol = 1e-3;
    double atol = 1e-7;
};

enum class Status { pass, fail, unsupported };

/// The verdict on one test directory. `detail` is the failure or the joined skip reasons;
/// `skip_groups` holds one "Op: reason" key per unsupported feature (for --list-skips).
struct Result {
    Status status = Status::fail;
    std::string name;
    std::string detail;
    std::vector<std::string> skip_groups;
};

/// True when `dir` holds a model.onnx. Never throws (file-system errors read as false).
inline bool is_test_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    return std::filesystem::is_regular_file(dir / "model.onnx", ec);
}

/// `path` itself when it is a test directory, else its immediate subdirectories that are, sorted.
/// @throws io_error naming `path` when it is neither a test directory nor a directory.
inline std::vector<std::filesystem::path> find_test_dirs(const std::filesystem::path& path) {
    if (is_test_dir(path)) return {path};
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec))
        throw io_error(path.string(), "neither a test directory (no model.onnx) nor a directory");
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(path, ec))
        if (e.is_directory(ec) && is_test_dir(e.path())) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

/// "" when `got` matches `expected` (same element type, same shape, integers equal, FLOAT and
/// DOUBLE elements within tolerance), else a description of the first difference.
/// @throws value_error when a FLOAT Value holds no tensor (an undefined Value::f).
inline std::string compare(const Value& expected, const Value& got, const Options& opt = {}) {
    std::ostringstream os;
    if (expected.type != got.type) return "expected " + dtype_name(expected.type) + ", got " + dtype_name(got.type);
    if (expected.shape != got.shape)
        return "expected shape " + shape_str(expected.shape) + ", got " + shape_str(got.shape);
    NANOTORCH_CHECK(!expected.is_float() || expected.f.defined(), value_error, "compare: undefined expected tensor");
    NANOTORCH_CHECK(!got.is_float() || got.f.defined(), value_error, "compare: undefined tensor");
    // Hand-built Values may disagree with their own shape; never index past the shorter one.
    const std::size_t n = static_cast<std::size_t>(expected.is_int ? expected.i.size() : expected.is_double() ? expected.d.size() : expected.f.numel());
    const std::size_t n_got = static_cast<std::size_t>(got.is_int ? got.i.size() : got.is_double() ? got.d.size() : got.f.numel());
    if (n != n_got) {
        os << "expected " << n << " elements, got " << n_got;
        return os.str();
    }
    if (expected.is_int) {
        for (std::size_t k = 0; k < n; ++k) {
            if (expected.i[k] == got.i[k]) continue;
            os << "element " << k << ": expected " << expected.i[k] << ", got " << got.i[k];
            return os.str();
        }
        return "";
    }
    const std::vector<double> e = expected.to_doubles(), g = got.to_doubles();  // FLOAT widens exactly
    for (std::size_t k = 0; k < n; ++k) {
        const double b = e[k], a = g[k];
        const bool close = a == b || (std::isnan(a) && std::isnan(b)) ||
                           std::fabs(a - b) <= opt.atol + opt.rtol * std::fabs(b);
        if (close) continue;
        os.precision(17);
        os << "element " << k << ": expected " << b << ", got " << a << " (|diff| " << std::fabs(a - b) << ")";
        return os.str();
    }
    return "";
}

namespace detail {
// input_0.pb, input_1.pb, ... until the first missing index.
inline std::vector<TensorProto> read_numbered(const std::filesystem::path& dir, const char* stem) {
    std::vector<TensorProto> out;
    for (std::size_t k = 0;; ++k) {
        const auto p = dir / (std::string(stem) + std::to_string(k) + ".pb");
        std::error_code ec;
        if (!std::filesystem::is_regular_file(p, ec)) return out;
        out.push_back(read_tensor(p.string()));
    }
}
}  // namespace detail

/// Loads dir/model.onnx and runs every test_data_set_* in it. Inputs bind by the TensorProto's
/// name when it names a model input, else by position among the required inputs; outputs compare
/// by position. Never throws a nanotorch error: every outcome, including an unreadable or
/// malformed file, is a Result (status fail, or unsupported for an unsupported_error).
inline Result run_test_dir(const std::filesystem::path& dir, const Options& opt = {}) {
    Result r;
    r.name = dir.filename().string();
    ModelProto model;
    try {
        model = read_model((dir / "model.onnx").string());
    } catch (const unsupported_error& e) {
        r.status = Status::unsupported;
        r.detail = e.what();
        r.skip_groups.push_back(e.what());
        return r;
    } catch (const std::exception& e) {
        r.detail = std::string("loading model.onnx: ") + e.what();
        return r;
    }
    const std::vector<Issue> issues = Runtime::unsupported_features(model);
    if (!issues.empty()) {
        r.status = Status::unsupported;
        for (const Issue& i : issues) {
            r.detail += (r.detail.empty() ? "" : "; ") + i.where + ": " + i.reason;
            const std::string key = (i.op.empty() ? "" : i.op + ": ") + i.reason;
            if (std::find(r.skip_groups.begin(), r.skip_groups.end(), key) == r.skip_groups.end())
                r.skip_groups.push_back(key);
        }
        return r;
    }
    try {
        const Runtime rt(std::move(model));
        const std::vector<ValueInfoProto> required = rt.required_inputs();
        std::vector<std::filesystem::path> sets;
        for (const auto& e : std::filesystem::directory_iterator(dir))
            if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
                sets.push_back(e.path());
        std::sort(sets.begin(), sets.end());
        NANOTORCH_CHECK(!sets.empty(), value_error, "no test_data_set_* directory");
        for (const auto& set : sets) {
            const std::string where = set.filename().string();
            const std::vector<TensorProto> ins = detail::read_numbered(set, "input_");
            const std::vector<TensorProto> outs = detail::read_numbered(set, "output_");
            NamedValues bound;
            for (std::size_t k = 0; k < ins.size(); ++k) {
                std::string name = ins[k].name;
                bool named = false;
                for (const auto& in : rt.inputs()) named = named || in.name == name;
                if (!named) {
                    NANOTORCH_CHECK(k < required.size(), value_error, where, ": input_", k, ".pb has no model input");
                    name = required[k].name;
                }
                bound.emplace_back(name, value_from_proto(ins[k]));
            }
            const auto got = rt.run_values(bound);
            NANOTORCH_CHECK(got.size() == outs.size(), value_error, where, ": model has ", got.size(), " outputs, ",
                            outs.size(), " expected");
            for (std::size_t k = 0; k < outs.size(); ++k) {
                const std::string diff = compare(value_from_proto(outs[k]), got[k].second, opt);
                if (!diff.empty()) {
                    r.detail = where + " output '" + got[k].first + "': " + diff;
                    return r;
                }
            }
        }
        r.status = Status::pass;
    } catch (const unsupported_error& e) {  // found only at run time (e.g. a 3-D Conv without kernel_shape)
        r.status = Status::unsupported;
        r.detail = e.what();
        r.skip_groups.push_back(e.what());
    } catch (const std::exception& e) {
        r.detail = e.what();
    }
    return r;
}

}  // namespace nanotorch::onnx::conformance
