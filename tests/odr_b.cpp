// ODR test, translation unit B: includes the umbrella header again and checks that both TUs
// agree. See odr_a.cpp for why this test exists; linking it at all is half of the test.
#include <doctest/doctest.h>
#include <nanotorch/nanotorch.hpp>

#include <cstdint>
#include <string>

namespace odr_test {
std::uint32_t load_be32_in_a(const unsigned char* p);
std::string version_in_a();
void throw_shape_error_in_a(int got);
}  // namespace odr_test

TEST_CASE("umbrella header links from two translation units and they agree") {
    const unsigned char bytes[4] = {0x00, 0x00, 0x08, 0x03};  // IDX image magic
    CHECK(odr_test::load_be32_in_a(bytes) == 0x00000803u);
    CHECK(odr_test::load_be32_in_a(bytes) == nanotorch::util::load_be32(bytes));
    CHECK(odr_test::version_in_a() == NANOTORCH_VERSION_STRING);
}

TEST_CASE("an exception thrown in one TU is caught by its nanotorch type in the other") {
    CHECK_NOTHROW(odr_test::throw_shape_error_in_a(3));
    CHECK_THROWS_AS(odr_test::throw_shape_error_in_a(2), nanotorch::shape_error);
    CHECK_THROWS_AS(odr_test::throw_shape_error_in_a(2), nanotorch::error);
    CHECK_THROWS_WITH(odr_test::throw_shape_error_in_a(2), "odr: expected rank 3, got 2");
}
