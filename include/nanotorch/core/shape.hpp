// nanotorch/core/shape.hpp — shapes, strides and broadcasting rules.
//
// A Shape is a plain std::vector<int64_t> (PyTorch's IntArrayRef role). This file holds the pure
// arithmetic on shapes: element counts with overflow checks, contiguous strides, dimension
// wrapping (negative dims count from the end) and NumPy broadcasting. It knows nothing of data.
#pragma once

#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch {

using Shape = std::vector<std::int64_t>;

/// Formats a shape as PyTorch does: [2, 3, 4]. Throws nothing of nanotorch's.
inline std::string shape_str(const Shape& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(s[i]);
    }
    return out + "]";
}

/// Number of elements.
/// @throws value_error on a negative extent or when the product overflows int64.
inline std::int64_t shape_numel(const Shape& s) {
    std::int64_t n = 1;
    for (auto d : s) {
        NANOTORCH_CHECK(d >= 0, value_error, "negative dimension in shape ", shape_str(s));
        NANOTORCH_CHECK(d == 0 || n <= std::numeric_limits<std::int64_t>::max() / d, value_error,
                        "shape ", shape_str(s), " has too many elements");
        n *= d;
    }
    return n;
}

/// Row-major strides of a contiguous tensor of this shape (size-0 dims count as 1). Throws
/// nothing of nanotorch's; call shape_numel first on an untrusted shape (products can overflow).
inline Shape contiguous_strides(const Shape& s) {
    Shape st(s.size());
    std::int64_t acc = 1;
    for (std::size_t i = s.size(); i-- > 0;) {
        st[i] = acc;
        acc *= (s[i] > 0 ? s[i] : 1);
    }
    return st;
}

/// Maps dim in [-ndim, ndim) to [0, ndim).
/// @throws value_error naming `op` when dim is outside [-ndim, ndim) (always, when ndim is 0).
inline std::int64_t wrap_dim(std::int64_t dim, std::int64_t ndim, const char* op) {
    NANOTORCH_CHECK(dim >= -ndim && dim < ndim, value_error, op, ": dim ", dim,
                    " out of range for a tensor with ", ndim, " dimensions");
    return dim < 0 ? dim + ndim : dim;
}

/// NumPy broadcasting of two shapes.
/// @throws shape_error naming `op` and both shapes when they do not broadcast.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const std::size_t n = a.size() > b.size() ? a.size() : b.size();
    Shape out(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const std::int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        NANOTORCH_CHECK(da == db || da == 1 || db == 1, shape_error, op,
                        ": shapes ", shape_str(a), " and ", shape_str(b), " cannot be broadcast");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

}  // namespace nanotorch
