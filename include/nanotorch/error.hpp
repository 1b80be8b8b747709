// nanotorch/error.hpp — the one exception hierarchy every public entry point throws from.
//
//   std::runtime_error
//   └── error              the base: `catch (const nanotorch::error&)` catches everything below
//       ├── shape_error        shapes that do not fit together (broadcast, matmul, view, a layer's
//       │                      input); the message names the op and the shapes involved
//       ├── value_error        a bad argument value: negative size, dim or index out of range, p
//       │                      outside [0, 1), a non-positive layer size, an undefined tensor
//       ├── autograd_error     misuse of the graph: backward() on a tensor that does not require
//       │                      grad, a second backward through a freed graph, an in-place update
//       │                      of a tensor that requires grad while grad mode is on
//       ├── io_error           a file could not be opened, read or written; path() gives the file
//       ├── parse_error        malformed bytes (IDX, gzip, images, protobuf/ONNX, state_dict);
//       │                      offset() gives the byte offset, path() the file when known
//       │                      (empty for in-memory input), message() the text without location
//       ├── unsupported_error  valid input nanotorch does not implement (an ONNX op or dtype, an
//       │                      op that cannot be exported at the chosen opset)
//       └── limit_error        valid input that needs more than a bound the caller set
//                              (onnx::RuntimeOptions::max_work): not malformed, just too costly
//
// Only io_error and parse_error carry data beyond what(). Every public entry point documents
// what it throws (`@throws ...`, or once in a header's opening comment when a whole header shares
// one rule). Nothing outside this hierarchy should escape a nanotorch entry point except
// std::bad_alloc (nanotorch refuses absurd sizes itself, with value_error or parse_error, before
// allocating) and whatever user code it calls throws (a Module's forward, a custom Node); any
// other exception type is a bug. Preconditions are checked with
// NANOTORCH_CHECK(cond, ErrorType, message parts...) from config.hpp; assert() is kept for
// internal invariants only.
// Nothing here depends on the rest of the library.
#pragma once

#include <cstdint>    // parse_error's byte offset
#include <stdexcept>  // std::runtime_error base
#include <string>
#include <utility>   // std::move

namespace nanotorch {

/// Base of every exception nanotorch throws on purpose; what() is the full message.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Shapes that do not fit together; the message names the op and the shapes.
class shape_error : public error {
public:
    using error::error;
};

/// A bad argument value (size, dim, index, probability, option, undefined tensor).
class value_error : public error {
public:
    using error::error;
};

/// Misuse of the autograd graph (see the map above).
class autograd_error : public error {
public:
    using error::error;
};

/// Valid input that nanotorch deliberately does not implement.
class unsupported_error : public error {
public:
    using error::error;
};

/// Valid input that needs more than a bound the caller set (onnx::RuntimeOptions::max_work).
class limit_error : public error {
public:
    using error::error;
};

/// A file-system failure. what() reads "<path>: <message>"; path() is the file.
class io_error : public error {
public:
    io_error(std::string path, const std::string& message)
        : error(path + ": " + message), path_(std::move(path)) {}
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

/// Malformed input bytes. what() reads "[<path>: ]byte <offset>: <message>"; offset() is the
/// byte offset into the file or buffer, path() the file ("" for in-memory input).
class parse_error : public error {
public:
    parse_error(std::uint64_t offset, const std::string& message, std::string path = {})
        : error((path.empty() ? std::string() : path + ": ") + "byte " + std::to_string(offset) +
                ": " + message),
          offset_(offset),
          path_(std::move(path)),
          message_(message) {}
    std::uint64_t offset() const noexcept { return offset_; }
    const std::string& path() const noexcept { return path_; }
    /// The message without the location prefix.
    const std::string& message() const noexcept { return message_; }

private:
    std::uint64_t offset_;
    std::string path_;
    std::string message_;
};

}  // namespace nanotorch
