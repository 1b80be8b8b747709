// nanotorch/core/grad_mode.hpp — the thread-local switch that turns graph recording on and off.
//
// Ops record a backward node only when grad mode is on (the default) and an input requires
// grad. NoGradGuard turns recording off for a scope on the calling thread only, so inference
// on one thread never affects training on another. Lives in core because in-place tensor
// methods consult it too. Nothing in this header throws.
#pragma once

namespace nanotorch {

class GradMode {
public:
    static bool is_enabled() noexcept { return flag(); }
    static void set_enabled(bool on) noexcept { flag() = on; }

private:
    static bool& flag() noexcept {
        thread_local bool enabled = true;
        return enabled;
    }
};

/// RAII: disables graph recording until the end of the scope (like torch::NoGradGuard).
class NoGradGuard {
public:
    NoGradGuard() noexcept : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
    ~NoGradGuard() { GradMode::set_enabled(prev_); }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool prev_;
};

/// RAII: re-enables recording inside a NoGradGuard scope.
class EnableGradGuard {
public:
    EnableGradGuard() noexcept : prev_(GradMode::is_enabled()) { GradMode::set_enabled(true); }
    ~EnableGradGuard() { GradMode::set_enabled(prev_); }
    EnableGradGuard(const EnableGradGuard&) = delete;
    EnableGradGuard& operator=(const EnableGradGuard&) = delete;

private:
    bool prev_;
};

}  // namespace nanotorch
