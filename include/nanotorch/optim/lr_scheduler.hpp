// nanotorch/optim/lr_scheduler.hpp — learning-rate schedules applied once per epoch.
//
// StepLR multiplies the rate by gamma every step_size epochs (torch.optim.lr_scheduler.StepLR).
// A scheduler only reads and writes Optimizer::lr(); it keeps no other state.
#pragma once

#include <cmath>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/optim/optimizer.hpp>

namespace nanotorch::optim {

class StepLR {
public:
    /// Starts from optimizer.lr(). @throws value_error when step_size <= 0 or gamma <= 0 (or NaN).
    StepLR(Optimizer& optimizer, int step_size, double gamma = 0.1)
        : optimizer_(optimizer), base_lr_(optimizer.lr()), step_size_(step_size), gamma_(gamma) {
        NANOTORCH_CHECK(step_size > 0, value_error, "StepLR: step_size must be positive, got ", step_size);
        NANOTORCH_CHECK(gamma > 0.0, value_error, "StepLR: gamma must be positive, got ", gamma);
    }
    /// Call once at the end of each epoch. Throws nothing of nanotorch's.
    void step() {
        ++epoch_;
        optimizer_.set_lr(base_lr_ * std::pow(gamma_, epoch_ / step_size_));
    }
    int last_epoch() const { return epoch_; }

private:
    Optimizer& optimizer_;
    double base_lr_;
    int step_size_;
    double gamma_;
    int epoch_ = 0;
};

}  // namespace nanotorch::optim
