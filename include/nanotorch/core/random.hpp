// nanotorch/core/random.hpp — an explicit, seedable, splittable random number generator.
//
// Generator is xoshiro256** seeded through splitmix64, with our own uniform and normal
// transforms, so a seed gives the same numbers with every compiler and standard library
// (std::uniform_real_distribution is not portable across implementations).
// There is no process-wide singleton shared by threads: default_generator() is per thread,
// and code that needs randomness inside parallel work draws it serially first or split()s.
// Nothing here throws except Generator::randint(0) and Generator::set_state with an all-zero
// state (value_error).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include <nanotorch/config.hpp>
#include <nanotorch/error.hpp>

namespace nanotorch {

/// Everything a Generator's future output depends on: the xoshiro256** words and the cached
/// second value of the last Box–Muller pair (without it, a restored generator's next normal()
/// would differ from the original's). What a training checkpoint saves.
struct GeneratorState {
    std::array<std::uint64_t, 4> s{};
    double spare_normal = 0.0;
    bool has_spare_normal = false;
    bool operator==(const GeneratorState& o) const {
        // An unused spare may hold anything: it is compared only when in use.
        return s == o.s && has_spare_normal == o.has_spare_normal &&
               (!has_spare_normal || spare_normal == o.spare_normal);
    }
    bool operator!=(const GeneratorState& o) const { return !(*this == o); }
};

class Generator {
public:
    explicit Generator(std::uint64_t seed = 0) { manual_seed(seed); }

    /// Restarts the stream; the same seed always gives the same sequence.
    void manual_seed(std::uint64_t seed) {
        std::uint64_t x = seed;
        for (auto& w : s_) w = splitmix64(x);
        has_spare_normal_ = false;
    }

    /// 64 uniformly random bits.
    std::uint64_t next_u64() {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    /// Uniform float in [0, 1) with 24 random bits (every float32 step in that range is reachable).
    float uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }

    /// Uniform double in [0, 1) with 53 random bits.
    double uniform_double() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

    /// Uniform float in [lo, hi) (lo + (hi - lo)·u; lo > hi is not checked and gives (hi, lo]).
    float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

    /// Standard normal (Box–Muller in double precision; the second value of each pair is kept).
    float normal() {
        if (has_spare_normal_) {
            has_spare_normal_ = false;
            return static_cast<float>(spare_normal_);
        }
        double u1 = 0.0;
        while (u1 <= 0.0) u1 = uniform_double();
        const double u2 = uniform_double();
        const double r = std::sqrt(-2.0 * std::log(u1));
        const double two_pi = 6.283185307179586476925;
        spare_normal_ = r * std::sin(two_pi * u2);
        has_spare_normal_ = true;
        return static_cast<float>(r * std::cos(two_pi * u2));
    }

    /// Uniform integer in [0, n), without modulo bias.
    /// @throws value_error when n is 0.
    std::uint64_t randint(std::uint64_t n) {
        NANOTORCH_CHECK(n > 0, value_error, "Generator::randint: n must be positive");
        const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() -
                                    std::numeric_limits<std::uint64_t>::max() % n;
        std::uint64_t r;
        do {
            r = next_u64();
        } while (r >= limit);
        return r % n;
    }

    /// True with probability p.
    bool bernoulli(double p) { return uniform_double() < p; }

    /// The current state; set_state(state()) later makes the generator repeat its output exactly.
    GeneratorState state() const {
        GeneratorState st;
        for (int i = 0; i < 4; ++i) st.s[static_cast<std::size_t>(i)] = s_[i];
        st.spare_normal = spare_normal_;
        st.has_spare_normal = has_spare_normal_;
        return st;
    }
    /// Restores a state from state().
    /// @throws value_error when all four words are zero (xoshiro's one fixed point: it would
    ///   return 0 forever; manual_seed never produces it, so such a state was not saved by us).
    void set_state(const GeneratorState& st) {
        NANOTORCH_CHECK(st.s[0] | st.s[1] | st.s[2] | st.s[3], value_error,
                        "Generator::set_state: an all-zero state is not a valid xoshiro256** state");
        for (int i = 0; i < 4; ++i) s_[i] = st.s[static_cast<std::size_t>(i)];
        spare_normal_ = st.spare_normal;
        has_spare_normal_ = st.has_spare_normal;
    }

    /// A new generator with an independent stream, derived deterministically from this one.
    Generator split() { return Generator(next_u64() ^ 0xd1b54a32d192ed03ULL); }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& x) {
        std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    std::uint64_t s_[4] = {};
    double spare_normal_ = 0.0;
    bool has_spare_normal_ = false;
};

/// The calling thread's default generator, used when an API is not handed one explicitly
/// (module initialisation, dropout). Each thread has its own, so no data race is possible.
inline Generator& default_generator() {
    thread_local Generator gen(0);
    return gen;
}

/// Seeds the calling thread's default generator, like torch::manual_seed.
inline void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace nanotorch
