// nanotorch/error.hpp — the one exception hierarchy every public entry point throws from.
//
//   error (std::runtime_error)
//   ├── shape_error        a shape mismatch; the message names the op and both shapes
//   ├── value_error        a bad argument value (negative size, index out of range, p outside [0,1))
//   ├── autograd_error     backward through a freed graph, on a tensor without grad, ...
//   ├── io_error           a file could not be opened, read or written; carries the path
//   ├── parse_error        malformed bytes; carries the byte offset (and, once known, the path)
//   └── unsupported_error  valid input that nanotorch does not implement (an ONNX op, a dtype)
//
// Catch nanotorch::error to handle them all. Nothing here depends on the rest of the library.
#pragma once

#include <cstdint>    // parse_error's byte offset
#include <stdexcept>  // std::runtime_error base
#include <string>
#include <utility>   // std::move

namespace nanotorch {

class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class shape_error : public error {
public:
    using error::error;
};

class value_error : public error {
public:
    using error::error;
};

class autograd_error : public error {
public:
    using error::error;
};

class unsupported_error : public error {
public:
    using error::error;
};

/// A file-system failure. what() reads "<path>: <message>".
class io_error : public error {
public:
    io_error(std::string path, const std::string& message)
        : error(path + ": " + message), path_(std::move(path)) {}
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

/// Malformed input bytes. what() reads "[<path>: ]byte <offset>: <message>".
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
