// tests/support/temp_dir.hpp — a scratch directory per test case, removed at scope exit, and a
// check that an atomic write left no temporary file behind.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <cstdint>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>

#include <unistd.h>  // getpid: suites run in parallel under ctest -j

namespace nanotorch::testing {

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
public:
    explicit TempDir(const std::string& tag = "nanotorch_test") {
        static std::atomic<unsigned> counter{0};
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        path_ = std::filesystem::temp_directory_path() /
                (tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(stamp) + "_" + std::to_string(counter++));
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);  // best effort: a destructor must not throw
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const std::filesystem::path& path() const { return path_; }
    std::string str() const { return path_.string(); }

private:
    std::filesystem::path path_;
};

/// Writes `bytes` to `path`, replacing it; a failed write fails the test.
inline void write_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

/// True when a temporary file of an atomic write to `target` (util::write_file_atomic) was
/// left beside it.
inline bool temp_file_left(const std::string& target) {
    namespace fsys = std::filesystem;
    const std::string prefix = fsys::path(target).filename().string() + ".tmp";
    for (const auto& e : fsys::directory_iterator(fsys::path(target).parent_path()))
        if (e.path().filename().string().rfind(prefix, 0) == 0) return true;
    return false;
}

}  // namespace nanotorch::testing
