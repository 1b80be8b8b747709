// nanotorch/onnx/message_path.hpp — where in an ONNX message a decoding error happened.
//
// Provides (in detail) Path, a message path kept as a chain of stack frames and rendered only when
// an error is thrown ("ModelProto.graph.node[3].attribute[0]"), located_error (a parse_error whose
// message already starts with its path), fail() and guarded() (which puts the innermost path in
// front of a bare wire-level parse_error). Used by onnx/decode.hpp and onnx/tensor_data.hpp.
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>
#include <string>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch::onnx::detail {

using nanotorch::detail::str_cat;


// A message path kept as a chain of stack frames, rendered only when an error is thrown, so the
// happy path builds no strings. index == npos means "not a repeated element".
struct Path {
    const Path* parent;
    const char* name;
    std::size_t index = static_cast<std::size_t>(-1);
};

inline std::string render(const Path& p) {
    std::vector<const Path*> chain;
    for (const Path* q = &p; q != nullptr; q = q->parent) chain.push_back(q);
    std::string s;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        if (!s.empty()) s += '.';
        s += (*it)->name;
        if ((*it)->index != static_cast<std::size_t>(-1)) s += str_cat('[', (*it)->index, ']');
    }
    return s;
}

// A parse_error whose message already starts with its message path; outer levels pass it on
// untouched while a bare wire-level parse_error gets the path of the innermost message.
class located_error : public parse_error {
public:
    using parse_error::parse_error;
};

[[noreturn]] inline void fail(std::uint64_t offset, const Path& p, const std::string& message) {
    throw located_error(offset, render(p) + ": " + message);
}

// Runs body(); a wire error inside it is re-thrown with p's path in front.
template <class Body>
void guarded(const Path& p, Body&& body) {
    try {
        body();
    } catch (const located_error&) {
        throw;
    } catch (const parse_error& e) {
        throw located_error(e.offset(), render(p) + ": " + e.message());
    }
}

}  // namespace nanotorch::onnx::detail
