// ODR test, translation unit A: includes the umbrella header and exposes a few results computed
// with it. odr_b.cpp includes the same header, so any non-inline definition in any nanotorch
// header turns into a "multiple definition" link error for this test program (STYLE A6, the fmt
// ranges-odr-test / xsimd check_inline_specifier idea). The values are then compared in B, which
// also checks that an exception thrown here is caught there by its nanotorch type.
#include <nanotorch/nanotorch.hpp>

#include <cstdint>
#include <string>

namespace odr_test {

std::uint32_t load_be32_in_a(const unsigned char* p) { return nanotorch::util::load_be32(p); }

std::string version_in_a() { return NANOTORCH_VERSION_STRING; }

void throw_shape_error_in_a(int got) {
    NANOTORCH_CHECK(got == 3, nanotorch::shape_error, "odr: expected rank 3, got ", got);
}

}  // namespace odr_test
