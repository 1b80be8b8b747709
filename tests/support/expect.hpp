// tests/support/expect.hpp — run a statement that must throw a given nanotorch error type and
// hand the exception back, so a test can check its message, offset or path.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include <doctest/doctest.h>

#include <nanotorch/error.hpp>

namespace nanotorch::testing {

/// Runs f, which must throw an E; returns that exception. Any other outcome fails the test.
template <class E, class F>
E expect_thrown(F&& f, const E& placeholder) {
    try {
        f();
    } catch (const E& e) {
        return e;
    } catch (const std::exception& e) {
        FAIL("expected a different exception type, got: " << e.what());
    }
    FAIL("expected an exception, nothing was thrown");
    return placeholder;
}

template <class F>
nanotorch::parse_error catch_parse_error(F&& f) {
    return expect_thrown(std::forward<F>(f), nanotorch::parse_error(0, "unreachable"));
}

template <class F>
std::string value_error_message(F&& f) {
    return expect_thrown(std::forward<F>(f), nanotorch::value_error("unreachable")).what();
}

}  // namespace nanotorch::testing
