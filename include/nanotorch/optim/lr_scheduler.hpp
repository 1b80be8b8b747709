// nanotorch/optim/lr_scheduler.hpp — learning-rate schedules with PyTorch 1.13's formulas
// (torch.optim.lr_scheduler): StepLR, MultiStepLR, CosineAnnealingLR, OneCycleLR.
//
// A scheduler reads and writes Optimizer::lr() (and, for OneCycleLR, Optimizer::momentum()).
// Like PyTorch's, it takes its first step in the constructor (last_epoch() becomes 0, and the
// rate for epoch 0 is written), and each step() advances last_epoch by one. MultiStepLR and
// CosineAnnealingLR use PyTorch's recursive ("chainable") forms, which start from the optimizer's
// current rate; their floats differ in the last bits from the closed forms, and these are the
// floats PyTorch produces. The double arithmetic is written in PyTorch's order, and every
// multiply-add goes through detail::mul_add, which rounds twice as Python does (GCC fuses a·b + c
// into one FMA even across statements when the target has FMA), so the rates equal 1.13's to the
// last bit (without -ffast-math).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>
#include <nanotorch/optim/optimizer.hpp>

namespace nanotorch::optim {

namespace detail {

/// a·b + c with the product rounded before the sum, as Python evaluates it. The volatile is the
/// portable way to keep a compiler from contracting the two into one fused multiply-add.
inline double mul_add(double a, double b, double c) {
    volatile double product = a * b;
    return product + c;
}

}  // namespace detail

/// What a scheduler needs to resume where it stopped (PyTorch's scheduler state_dict holds the
/// same three facts: last_epoch, base_lrs, _last_lr). The schedule's own arguments are not in
/// it: build the scheduler with the same arguments, then load_state().
struct LRSchedulerState {
    int last_epoch = 0;
    double base_lr = 0.0;
    double last_lr = 0.0;
};

/// The common base (torch.optim.lr_scheduler._LRScheduler for one parameter group).
class LRScheduler {
public:
    virtual ~LRScheduler() = default;
    LRScheduler(const LRScheduler&) = delete;
    LRScheduler& operator=(const LRScheduler&) = delete;

    /// Advances one epoch (one batch for OneCycleLR) and writes the new rate to the optimizer.
    /// @throws value_error when the schedule has ended (OneCycleLR) or the new rate is negative
    ///   or NaN; the scheduler and the optimizer are then unchanged.
    void step() { apply(last_epoch_ + 1); }

    /// The rate the last step (or the constructor) wrote (PyTorch's get_last_lr()[0]).
    double get_last_lr() const { return last_lr_; }
    int last_epoch() const { return last_epoch_; }
    /// The optimizer's rate when the scheduler was built (PyTorch's base_lrs[0]); OneCycleLR's is
    /// max_lr / div_factor.
    double base_lr() const { return base_lr_; }

    LRSchedulerState state() const { return {last_epoch_, base_lr_, last_lr_}; }
    /// Resumes from a saved state: restores the counters and writes last_lr (and OneCycleLR's
    /// momentum for last_epoch) to the optimizer, so the next step() continues the schedule.
    /// @throws value_error for a negative last_epoch or a negative or NaN rate, or (OneCycleLR)
    ///   a last_epoch past the schedule's end.
    void load_state(const LRSchedulerState& s) {
        NANOTORCH_CHECK(s.last_epoch >= 0, value_error, "LRScheduler::load_state: negative last_epoch ",
                        s.last_epoch);
        NANOTORCH_CHECK(s.base_lr >= 0.0, value_error, "LRScheduler::load_state: invalid base_lr ", s.base_lr);
        check_state(s);
        optimizer_.set_lr(s.last_lr);  // validates last_lr
        last_epoch_ = s.last_epoch;
        base_lr_ = s.base_lr;
        last_lr_ = s.last_lr;
        after_load();
    }

protected:
    explicit LRScheduler(Optimizer& optimizer)
        : optimizer_(optimizer), base_lr_(optimizer.lr()), last_lr_(optimizer.lr()) {}

    /// The rate for `epoch` (= last_epoch() + 1 in step(), 0 in initial_step()). Chainable forms
    /// read optimizer_.lr(), the rate of the previous epoch. Must not change any state.
    virtual double compute_lr(int epoch) const = 0;
    /// Called after a new rate has been written for `epoch` (OneCycleLR sets the momentum here).
    virtual void after_step(int /*epoch*/) {}
    /// Extra checks of a state to load (OneCycleLR: within the schedule). Throws value_error.
    virtual void check_state(const LRSchedulerState& /*s*/) const {}
    /// Called at the end of load_state().
    virtual void after_load() {}

    /// PyTorch's _initial_step(): every derived constructor calls this last.
    void initial_step() { apply(0); }

    Optimizer& optimizer_;
    double base_lr_;

private:
    void apply(int epoch) {
        const double lr = compute_lr(epoch);
        optimizer_.set_lr(lr);  // validates: a schedule never writes a negative or NaN rate
        last_epoch_ = epoch;
        last_lr_ = lr;
        after_step(epoch);
    }

    int last_epoch_ = -1;
    double last_lr_;
};

/// torch.optim.lr_scheduler.StepLR: lr = base_lr · γ^⌊epoch / step_size⌋. This one keeps the
/// closed form it has always used (PyTorch's _get_closed_form_lr); PyTorch's step() multiplies
/// the current rate by γ instead, which can differ from this in the last bit of a double.
class StepLR : public LRScheduler {
public:
    /// Starts from optimizer.lr(). @throws value_error when step_size <= 0 or gamma <= 0 (or NaN).
    StepLR(Optimizer& optimizer, int step_size, double gamma = 0.1)
        : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
        NANOTORCH_CHECK(step_size > 0, value_error, "StepLR: step_size must be positive, got ", step_size);
        NANOTORCH_CHECK(gamma > 0.0, value_error, "StepLR: gamma must be positive, got ", gamma);
        initial_step();
    }

protected:
    double compute_lr(int epoch) const override { return base_lr_ * std::pow(gamma_, epoch / step_size_); }

private:
    int step_size_;
    double gamma_;
};

/// torch.optim.lr_scheduler.MultiStepLR: multiplies the rate by γ at each milestone epoch (by
/// γ^k at a milestone listed k times).
class MultiStepLR : public LRScheduler {
public:
    /// Starts from optimizer.lr(). @throws value_error when gamma <= 0 (or NaN), a milestone is
    ///   negative, or the milestones are not sorted (PyTorch accepts any order; an unsorted list
    ///   is almost always a typo here).
    MultiStepLR(Optimizer& optimizer, std::vector<int> milestones, double gamma = 0.1)
        : LRScheduler(optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
        NANOTORCH_CHECK(gamma > 0.0, value_error, "MultiStepLR: gamma must be positive, got ", gamma);
        for (std::size_t i = 0; i < milestones_.size(); ++i) {
            NANOTORCH_CHECK(milestones_[i] >= 0, value_error, "MultiStepLR: milestone ", i, " is negative (",
                            milestones_[i], ")");
            NANOTORCH_CHECK(i == 0 || milestones_[i - 1] <= milestones_[i], value_error,
                            "MultiStepLR: milestones must be sorted, but milestone ", i, " (", milestones_[i],
                            ") comes after ", milestones_[i - 1]);
        }
        initial_step();
    }
    const std::vector<int>& milestones() const { return milestones_; }

protected:
    double compute_lr(int epoch) const override {
        int count = 0;
        for (const int m : milestones_) count += m == epoch;
        if (count == 0) return optimizer_.lr();
        const double factor = std::pow(gamma_, count);  // group['lr'] * gamma ** count
        return optimizer_.lr() * factor;
    }

private:
    std::vector<int> milestones_;
    double gamma_;
};

/// torch.optim.lr_scheduler.CosineAnnealingLR: anneals from base_lr to eta_min over T_max
/// epochs along half a cosine, then back up over the next T_max (the schedule is periodic, as
/// PyTorch's). The update is PyTorch's recursive form:
///   lr_e = (1 + cos(π·e/T)) / (1 + cos(π·(e−1)/T)) · (lr_{e−1} − eta_min) + eta_min,
/// with lr_e = lr_{e−1} + (base_lr − eta_min)·(1 − cos(π/T))/2 where the cosine turns upward.
class CosineAnnealingLR : public LRScheduler {
public:
    /// Starts from optimizer.lr(). @throws value_error when T_max <= 0, or eta_min is negative or NaN.
    CosineAnnealingLR(Optimizer& optimizer, int T_max, double eta_min = 0.0)
        : LRScheduler(optimizer), T_max_(T_max), eta_min_(eta_min) {
        NANOTORCH_CHECK(T_max > 0, value_error, "CosineAnnealingLR: T_max must be positive, got ", T_max);
        NANOTORCH_CHECK(eta_min >= 0.0, value_error, "CosineAnnealingLR: eta_min must be >= 0, got ", eta_min);
        initial_step();
    }

protected:
    double compute_lr(int epoch) const override {
        const double lr = optimizer_.lr();
        if (epoch == 0) return lr;
        const double pi = 3.141592653589793;  // math.pi
        const double T = static_cast<double>(T_max_);
        // Python's (epoch − 1 − T_max) % (2·T_max), which is never negative.
        const std::int64_t period = 2 * static_cast<std::int64_t>(T_max_);
        const std::int64_t r = ((static_cast<std::int64_t>(epoch) - 1 - T_max_) % period + period) % period;
        if (r == 0) {
            const double one_minus_cos = 1.0 - std::cos(pi / T);
            const double delta = (base_lr_ - eta_min_) * one_minus_cos / 2.0;
            return lr + delta;
        }
        const double num = 1.0 + std::cos(pi * static_cast<double>(epoch) / T);
        const double den = 1.0 + std::cos(pi * static_cast<double>(epoch - 1) / T);
        return detail::mul_add(num / den, lr - eta_min_, eta_min_);
    }

private:
    int T_max_;
    double eta_min_;
};

/// Options of OneCycleLR, builder style, with PyTorch's names and defaults:
///   OneCycleLROptions(0.1).total_steps(1000)   or   OneCycleLROptions(0.1).epochs(10).steps_per_epoch(100)
class OneCycleLROptions {
public:
    OneCycleLROptions(double max_lr) : max_lr_(max_lr) {}  // implicit, like SGDOptions
    OneCycleLROptions& max_lr(double v) { max_lr_ = v; return *this; }
    /// Takes precedence over epochs × steps_per_epoch when both are given (as in PyTorch).
    OneCycleLROptions& total_steps(int v) { total_steps_ = v; return *this; }
    OneCycleLROptions& epochs(int v) { epochs_ = v; return *this; }
    OneCycleLROptions& steps_per_epoch(int v) { steps_per_epoch_ = v; return *this; }
    OneCycleLROptions& pct_start(double v) { pct_start_ = v; return *this; }
    /// "cos" or "linear".
    OneCycleLROptions& anneal_strategy(std::string v) { anneal_strategy_ = std::move(v); return *this; }
    OneCycleLROptions& cycle_momentum(bool v) { cycle_momentum_ = v; return *this; }
    OneCycleLROptions& base_momentum(double v) { base_momentum_ = v; return *this; }
    OneCycleLROptions& max_momentum(double v) { max_momentum_ = v; return *this; }
    OneCycleLROptions& div_factor(double v) { div_factor_ = v; return *this; }
    OneCycleLROptions& final_div_factor(double v) { final_div_factor_ = v; return *this; }
    OneCycleLROptions& three_phase(bool v) { three_phase_ = v; return *this; }

    double max_lr() const { return max_lr_; }
    int total_steps() const { return total_steps_; }  // 0: not given
    int epochs() const { return epochs_; }            // 0: not given
    int steps_per_epoch() const { return steps_per_epoch_; }
    double pct_start() const { return pct_start_; }
    const std::string& anneal_strategy() const { return anneal_strategy_; }
    bool cycle_momentum() const { return cycle_momentum_; }
    double base_momentum() const { return base_momentum_; }
    double max_momentum() const { return max_momentum_; }
    double div_factor() const { return div_factor_; }
    double final_div_factor() const { return final_div_factor_; }
    bool three_phase() const { return three_phase_; }

private:
    double max_lr_;
    int total_steps_ = 0, epochs_ = 0, steps_per_epoch_ = 0;
    double pct_start_ = 0.3;
    std::string anneal_strategy_ = "cos";
    bool cycle_momentum_ = true;
    double base_momentum_ = 0.85, max_momentum_ = 0.95;
    double div_factor_ = 25.0, final_div_factor_ = 1e4;
    bool three_phase_ = false;
};

/// torch.optim.lr_scheduler.OneCycleLR (Smith's 1cycle policy), stepped once per batch: the rate
/// rises from max_lr/div_factor to max_lr over the first pct_start of total_steps and then
/// falls to max_lr/(div_factor·final_div_factor) (three_phase: back to the start value first),
/// while the momentum (SGD's momentum, Adam's beta1) moves the opposite way between
/// max_momentum and base_momentum. It ignores the optimizer's own rate. As in PyTorch,
/// step() may be called total_steps times (once after each batch); one more call throws. The
/// last call computes a rate for a step past the schedule, which no batch uses: PyTorch
/// extrapolates the last phase there, and linear annealing can then fall below min_lr, even
/// below 0 (and push the momentum past max_momentum); we write PyTorch's value kept within the
/// last phase's range instead (cosine annealing's extrapolation is always inside it, so it is
/// PyTorch's value exactly).
class OneCycleLR : public LRScheduler {
public:
    /// Sets the optimizer's rate to max_lr/div_factor (and its momentum to max_momentum's
    /// annealed start value when cycle_momentum is on).
    /// @throws value_error naming the argument when neither total_steps nor epochs and
    ///   steps_per_epoch are given, any of them is <= 0 (or their product overflows), max_lr is
    ///   negative or NaN, pct_start is outside [0, 1) (PyTorch also accepts 1, which then divides
    ///   by zero on the last step), anneal_strategy is not "cos" or "linear", div_factor or
    ///   final_div_factor is not > 0, or cycle_momentum is on and the optimizer has no momentum
    ///   or refuses base_momentum or max_momentum.
    OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& options) : LRScheduler(optimizer), options_(options) {
        const OneCycleLROptions& o = options_;
        if (o.total_steps() != 0) {
            NANOTORCH_CHECK(o.total_steps() > 0, value_error, "OneCycleLR: total_steps must be positive, got ",
                            o.total_steps());
            total_steps_ = o.total_steps();
        } else {
            NANOTORCH_CHECK(o.epochs() != 0 || o.steps_per_epoch() != 0, value_error,
                            "OneCycleLR: give either total_steps or (epochs and steps_per_epoch)");
            NANOTORCH_CHECK(o.epochs() > 0, value_error, "OneCycleLR: epochs must be positive, got ", o.epochs());
            NANOTORCH_CHECK(o.steps_per_epoch() > 0, value_error, "OneCycleLR: steps_per_epoch must be positive, got ",
                            o.steps_per_epoch());
            const std::int64_t total = static_cast<std::int64_t>(o.epochs()) * o.steps_per_epoch();
            NANOTORCH_CHECK(total < (std::int64_t{1} << 31) - 1, value_error, "OneCycleLR: epochs × steps_per_epoch (",
                            total, ") is too large");
            total_steps_ = static_cast<int>(total);
        }
        NANOTORCH_CHECK(o.max_lr() >= 0.0, value_error, "OneCycleLR: invalid max_lr ", o.max_lr());
        NANOTORCH_CHECK(o.pct_start() >= 0.0 && o.pct_start() < 1.0, value_error,
                        "OneCycleLR: pct_start must be in [0, 1), got ", o.pct_start());
        NANOTORCH_CHECK(o.anneal_strategy() == "cos" || o.anneal_strategy() == "linear", value_error,
                        "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got '", o.anneal_strategy(), "'");
        NANOTORCH_CHECK(o.div_factor() > 0.0, value_error, "OneCycleLR: div_factor must be positive, got ",
                        o.div_factor());
        NANOTORCH_CHECK(o.final_div_factor() > 0.0, value_error, "OneCycleLR: final_div_factor must be positive, got ",
                        o.final_div_factor());
        linear_ = o.anneal_strategy() == "linear";
        initial_lr_ = o.max_lr() / o.div_factor();
        min_lr_ = initial_lr_ / o.final_div_factor();
        base_lr_ = initial_lr_;
        const double T = static_cast<double>(total_steps_);
        // Phase ends as PyTorch computes them (float(pct_start·total) − 1, float(2·pct_start·total) − 2).
        if (o.three_phase()) {
            phases_ = {{detail::mul_add(o.pct_start(), T, -1.0), initial_lr_, o.max_lr(), o.max_momentum(),
                        o.base_momentum()},
                       {detail::mul_add(2.0 * o.pct_start(), T, -2.0), o.max_lr(), initial_lr_, o.base_momentum(),
                        o.max_momentum()},
                       {T - 1.0, initial_lr_, min_lr_, o.max_momentum(), o.max_momentum()}};
        } else {
            phases_ = {{detail::mul_add(o.pct_start(), T, -1.0), initial_lr_, o.max_lr(), o.max_momentum(),
                        o.base_momentum()},
                       {T - 1.0, o.max_lr(), min_lr_, o.base_momentum(), o.max_momentum()}};
        }
        if (o.cycle_momentum()) {
            NANOTORCH_CHECK(optimizer.has_momentum(), value_error,
                            "OneCycleLR: cycle_momentum needs an optimizer with a momentum (SGD, Adam, AdamW)");
            // Both ends must be momenta the optimizer accepts; set_momentum says which it refuses.
            const double before = optimizer.momentum();
            try {
                optimizer.set_momentum(o.base_momentum());
                optimizer.set_momentum(o.max_momentum());
            } catch (...) {
                optimizer.set_momentum(before);  // leave the optimizer as it was
                throw;
            }
            optimizer.set_momentum(before);
        }
        initial_step();
    }

    int total_steps() const { return total_steps_; }
    const OneCycleLROptions& options() const { return options_; }

protected:
    double compute_lr(int epoch) const override { return at(epoch).first; }
    void after_step(int epoch) override {
        if (options_.cycle_momentum()) optimizer_.set_momentum(at(epoch).second);
    }
    void check_state(const LRSchedulerState& s) const override {
        NANOTORCH_CHECK(s.last_epoch <= total_steps_, value_error, "OneCycleLR::load_state: last_epoch ",
                        s.last_epoch, " is past total_steps ", total_steps_);
    }
    void after_load() override { after_step(last_epoch()); }

private:
    struct Phase {
        double end_step, start_lr, end_lr, start_momentum, end_momentum;
    };

    double anneal(double start, double end, double pct) const {
        if (linear_) return detail::mul_add(end - start, pct, start);  // (end − start)·pct + start
        const double pi = 3.141592653589793;                              // math.pi
        const double cos_out = std::cos(pi * pct) + 1.0;
        return detail::mul_add((start - end) / 2.0, cos_out, end);  // end + (start − end)/2·cos_out
    }

    static double clamp_between(double v, double a, double b) {
        const double lo = a < b ? a : b, hi = a < b ? b : a;
        return v < lo ? lo : v > hi ? hi : v;
    }

    /// (rate, momentum) for step `epoch`. @throws value_error past the end of the schedule.
    std::pair<double, double> at(int epoch) const {
        NANOTORCH_CHECK(epoch <= total_steps_, value_error, "OneCycleLR: Tried to step ", epoch + 1,
                        " times. The specified number of total steps is ", total_steps_);  // PyTorch's words
        const double step = static_cast<double>(epoch);
        double start_step = 0.0;
        for (std::size_t i = 0; i < phases_.size(); ++i) {
            const Phase& ph = phases_[i];
            if (step <= ph.end_step || i + 1 == phases_.size()) {
                const double pct = (step - start_step) / (ph.end_step - start_step);
                double lr = anneal(ph.start_lr, ph.end_lr, pct);
                double momentum = anneal(ph.start_momentum, ph.end_momentum, pct);
                if (pct > 1.0) {  // the extra step: keep PyTorch's extrapolation within the phase
                    lr = clamp_between(lr, ph.start_lr, ph.end_lr);
                    momentum = clamp_between(momentum, ph.start_momentum, ph.end_momentum);
                }
                return {lr, momentum};
            }
            start_step = ph.end_step;
        }
        return {0.0, 0.0};  // unreachable: the last phase always matches
    }

    OneCycleLROptions options_;
    int total_steps_ = 0;
    bool linear_ = false;
    double initial_lr_ = 0.0, min_lr_ = 0.0;
    std::vector<Phase> phases_;
};

}  // namespace nanotorch::optim
