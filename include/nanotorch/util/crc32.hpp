// nanotorch/util/crc32.hpp — CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the
// checksum of gzip, zlib and PNG, which our checkpoint format reuses for its trailer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace nanotorch::util {

namespace detail {

// Built at compile time so the header carries no 256-entry literal.
constexpr std::array<std::uint32_t, 256> make_crc32_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
        table[i] = c;
    }
    return table;
}

inline constexpr std::array<std::uint32_t, 256> crc32_table = make_crc32_table();

}  // namespace detail

/// CRC-32 with init and final xor 0xFFFFFFFF. Pass the previous result as `crc` to continue
/// over a second chunk: crc32(b, m, crc32(a, n)) == crc32(a‖b).
/// Example: crc32("123456789", 9) == 0xCBF43926. Throws nothing.
inline std::uint32_t crc32(const unsigned char* data, std::size_t size, std::uint32_t crc = 0) {
    crc = ~crc;
    for (std::size_t i = 0; i < size; ++i) crc = detail::crc32_table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

}  // namespace nanotorch::util
