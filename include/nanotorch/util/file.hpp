// nanotorch/util/file.hpp — writing a file atomically, shared by every writer of ours
// (state_dict files, ONNX models).
//
// The bytes go to a temporary file beside the target whose name is unique to this process,
// thread and call, which is then renamed over the target: a reader never sees a half-written
// file, and two writers of the same path never share a temporary file.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>  // std::hash of the thread id, std::function
#include <string>
#include <system_error>
#include <thread>

#include <nanotorch/error.hpp>

namespace nanotorch::util {

/// Writes `size` bytes to `path` atomically. Throws io_error naming the path on failure, after
/// removing the temporary file. `before_rename`, when set, is called with the temporary file's
/// name once it is complete and closed, just before the rename (tests use it to kill a process
/// at exactly that point; an exception from it removes the temporary file and propagates).
inline void write_file_atomic(const std::string& path, const unsigned char* data, std::size_t size,
                              const std::function<void(const std::string&)>& before_rename = nullptr) {
    static std::atomic<unsigned long> counter{0};
    const auto stamp = static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count());
    const std::string tmp = path + ".tmp." + std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) +
                            "." + std::to_string(stamp) + "." + std::to_string(counter.fetch_add(1));
    std::error_code ignored;
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw io_error(path, "cannot open " + tmp + " for writing");
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
        out.flush();
        if (!out) {
            out.close();
            std::filesystem::remove(tmp, ignored);
            throw io_error(path, "write failed");
        }
    }
    if (before_rename) {
        try {
            before_rename(tmp);
        } catch (...) {
            std::filesystem::remove(tmp, ignored);
            throw;
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::filesystem::remove(tmp, ignored);
        throw io_error(path, "cannot rename the temporary file into place: " + ec.message());
    }
}

}  // namespace nanotorch::util
