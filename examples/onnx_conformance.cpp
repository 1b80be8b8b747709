// onnx_conformance — runs ONNX backend-test directories through nanotorch's ONNX runtime.
//
//   onnx_conformance [--list-skips] DIR...
//
// Each DIR is a test directory (model.onnx + test_data_set_*/input_*.pb, output_*.pb) or a folder
// of them (one level down), e.g. /usr/share/libonnx-testdata/data/node (Debian libonnx-testdata).
// Prints PASS / FAIL / UNSUPPORTED per directory, then "N passed, N failed, N skipped"; with
// --list-skips, also the skip reasons grouped by operator and reason. Exit status 1 when anything
// failed, 2 on a usage error.
#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nanotorch/onnx/conformance.hpp>

int main(int argc, char** argv) {
    namespace conf = nanotorch::onnx::conformance;
    bool list_skips = false;
    std::vector<std::string> paths;
    for (int k = 1; k < argc; ++k) {
        const std::string a = argv[k];
        if (a == "--list-skips") {
            list_skips = true;
        } else if (a == "-h" || a == "--help") {
            std::cout << "usage: onnx_conformance [--list-skips] DIR...\n";
            return 0;
        } else {
            paths.push_back(a);
        }
    }
    if (paths.empty()) {
        std::cerr << "usage: onnx_conformance [--list-skips] DIR...\n";
        return 2;
    }
    int passed = 0, failed = 0, skipped = 0;
    std::map<std::string, std::vector<std::string>> groups;  // reason -> test names
    for (const std::string& p : paths) {
        std::vector<std::filesystem::path> dirs;
        try {
            dirs = conf::find_test_dirs(p);
        } catch (const std::exception& e) {
            std::cerr << "onnx_conformance: " << e.what() << "\n";
            return 2;
        }
        for (const auto& dir : dirs) {
            const conf::Result r = conf::run_test_dir(dir);
            switch (r.status) {
                case conf::Status::pass:
                    ++passed;
                    std::cout << "PASS " << r.name << "\n";
                    break;
                case conf::Status::fail:
                    ++failed;
                    std::cout << "FAIL " << r.name << ": " << r.detail << "\n";
                    break;
                case conf::Status::unsupported:
                    ++skipped;
                    std::cout << "UNSUPPORTED " << r.name << ": " << r.detail << "\n";
                    for (const auto& g : r.skip_groups) groups[g].push_back(r.name);
                    break;
            }
        }
    }
    if (list_skips) {
        std::cout << "\nskips by reason (a test with several reasons is listed under each):\n";
        for (const auto& [reason, names] : groups) {
            std::cout << "  " << reason << " (" << names.size() << "):";
            for (const auto& n : names) std::cout << ' ' << n;
            std::cout << "\n";
        }
    }
    std::cout << passed << " passed, " << failed << " failed, " << skipped << " skipped\n";
    return failed > 0 ? 1 : 0;
}
