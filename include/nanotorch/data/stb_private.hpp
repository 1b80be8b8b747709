// nanotorch/data/stb_private.hpp — a private, isolated copy of stb_image.h (Debian libstb-dev),
// for data/gzip.hpp and data/image.hpp only; users never include this file.
//
// stb_image is a single-header library whose function bodies appear only where the including
// translation unit (TU) defines STB_IMAGE_IMPLEMENTATION. We compile it with STB_IMAGE_STATIC
// inside a namespace of ours, so every stb function has internal linkage: each TU that includes
// gzip.hpp or image.hpp gets its own private copy and the linker never sees a duplicate. stb's API
// functions are also renamed for the duration of the include, because GCC emits C-linkage
// functions under their plain names even when static and namespaced, so a user's own global
// stbi_* definitions in the same TU would otherwise collide in the assembler (and so would our two
// copies, which may share a TU). Every macro stb_image.h reads or defines is saved with push_macro,
// cleared, and restored afterwards, so it does not matter whether a user's
// `#include <stb/stb_image.h>` (with or without STB_IMAGE_IMPLEMENTATION, with any STBI_* options)
// comes before or after ours. The one formal wrinkle is the usual header-only one: an inline
// function of ours calls a TU-local copy of identical code; nothing diagnoses or miscompiles that.
// tests/test_onnx_run.cpp and tests/test_idx.cpp check the coexistence with a user's stb_image.
//
// Two copies exist; the includer picks one by defining NANOTORCH_DETAIL_STB_IMAGE_FORMATS or not:
//   not defined (data/gzip.hpp): namespace nanotorch::data::detail::stb, API names
//     nanotorch_detail_stbi_*, only the zlib inflater (STBI_ONLY_ZLIB + STBI_SUPPORT_ZLIB).
//   defined (data/image.hpp): namespace nanotorch::data::detail::image_stb, API names
//     nanotorch_detail_image_stbi_*, the PNG, JPEG and BMP decoders, every allocation through
//     nanotorch::data::detail::image_malloc / image_realloc / image_free (which image.hpp defines
//     before including this), and Clang's UBSan told to ignore three benign kinds of undefined
//     behaviour inside stb (see below).
// Both: no stdio (we read files ourselves, with a size limit), no SIMD (its SSE2 path would
// #include <emmintrin.h> inside our namespace), no HDR or linear float API. Each copy is made at
// most once per TU (its own guard below), and this file clears the selector macro.
// (No #pragma once: the two copies are two inclusions of this file.)

// stb_image.h includes these C headers itself. Including them first, at global scope, makes its
// own #includes no-ops, so no C library declaration ends up inside our namespace (libstdc++'s
// <stdlib.h> wrapper would otherwise put using-declarations there).
#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(NANOTORCH_DETAIL_STB_IMAGE_FORMATS) && !defined(NANOTORCH_DETAIL_STB_IMAGE_COPY_DONE)
#define NANOTORCH_DETAIL_STB_IMAGE_COPY_DONE
#define NANOTORCH_DETAIL_STB_MAKE_COPY
#elif !defined(NANOTORCH_DETAIL_STB_IMAGE_FORMATS) && !defined(NANOTORCH_DETAIL_STB_ZLIB_COPY_DONE)
#define NANOTORCH_DETAIL_STB_ZLIB_COPY_DONE
#define NANOTORCH_DETAIL_STB_MAKE_COPY
#endif

#ifdef NANOTORCH_DETAIL_STB_MAKE_COPY
#undef NANOTORCH_DETAIL_STB_MAKE_COPY

// Every macro stb_image.h reads as an option or leaves defined (as of the 2022-09 Debian version;
// a macro that a newer stb adds is at worst left defined, which is how stb behaves anyway), the
// macros its PNG, JPEG and BMP sections define, and the API names we rename.
#define NANOTORCH_DETAIL_STB_MACROS(X) \
    X(STBI_INCLUDE_STB_IMAGE_H) X(STB_IMAGE_IMPLEMENTATION) X(STB_IMAGE_STATIC) X(STBIDEF)      \
    X(STBI_VERSION) X(STBI_EXTERN) X(stbi_inline) X(STBI_NOTUSED) X(stbi_lrot)                  \
    X(STBI_SIMD_ALIGN) X(STBI__BYTECAST) X(STBI__X86_TARGET) X(STBI__X64_TARGET)                \
    X(STBI__ZFAST_BITS) X(STBI__ZFAST_MASK) X(STBI__ZNSYMS) X(stbi__err) X(stbi__errpf)         \
    X(stbi__errpuc) X(stbi__vertically_flip_on_load) X(STBI_ASSERT) X(STBI_MALLOC)              \
    X(STBI_REALLOC) X(STBI_REALLOC_SIZED) X(STBI_FREE) X(STBI_MAX_DIMENSIONS)                   \
    X(STBI_THREAD_LOCAL) X(STBI_NO_THREAD_LOCALS) X(STBI_NO_FAILURE_STRINGS)                    \
    X(STBI_FAILURE_USERMSG) X(STBI_NO_STDIO) X(STBI_NO_LINEAR) X(STBI_NO_HDR) X(STBI_NO_SIMD)   \
    X(STBI_NO_JPEG) X(STBI_NO_PNG) X(STBI_NO_BMP) X(STBI_NO_PSD) X(STBI_NO_TGA) X(STBI_NO_GIF)  \
    X(STBI_NO_PIC) X(STBI_NO_PNM) X(STBI_NO_ZLIB) X(STBI_ONLY_JPEG) X(STBI_ONLY_PNG)            \
    X(STBI_ONLY_BMP) X(STBI_ONLY_PSD) X(STBI_ONLY_TGA) X(STBI_ONLY_GIF) X(STBI_ONLY_HDR)        \
    X(STBI_ONLY_PIC) X(STBI_ONLY_PNM) X(STBI_ONLY_ZLIB) X(STBI_SUPPORT_ZLIB) X(STBI_SSE2)       \
    X(STBI_NEON) X(STBI_MINGW_ENABLE_SSE2) X(STBI_HAS_LROTL) X(STBI_WINDOWS_UTF8) X(FAST_BITS)  \
    X(STBI__COMBO) X(STBI__IDCT_1D) X(STBI__MARKER_none) X(STBI__PNG_TYPE) X(STBI__RESTART)     \
    X(stbi__DNL) X(stbi__EOI) X(stbi__SOF) X(stbi__SOF_progressive) X(stbi__SOI) X(stbi__SOS)   \
    X(stbi__de_iphone_flag) X(stbi__div16) X(stbi__div4) X(stbi__f2f) X(stbi__float2fixed)      \
    X(stbi__fsh) X(stbi__unpremultiply_on_load) X(stbi_convert_iphone_png_to_rgb)               \
    X(stbi_convert_iphone_png_to_rgb_thread) X(stbi_failure_reason) X(stbi_image_free)          \
    X(stbi_info_from_callbacks) X(stbi_info_from_memory) X(stbi_is_16_bit_from_callbacks)       \
    X(stbi_is_16_bit_from_memory) X(stbi_is_hdr_from_callbacks) X(stbi_is_hdr_from_memory)      \
    X(stbi_load_16_from_callbacks) X(stbi_load_16_from_memory) X(stbi_load_from_callbacks)      \
    X(stbi_load_from_memory) X(stbi_set_flip_vertically_on_load)                                \
    X(stbi_set_flip_vertically_on_load_thread) X(stbi_set_unpremultiply_on_load)                \
    X(stbi_set_unpremultiply_on_load_thread) X(stbi_zlib_decode_buffer)                         \
    X(stbi_zlib_decode_malloc) X(stbi_zlib_decode_malloc_guesssize)                             \
    X(stbi_zlib_decode_malloc_guesssize_headerflag) X(stbi_zlib_decode_noheader_buffer)         \
    X(stbi_zlib_decode_noheader_malloc)
#define NANOTORCH_DETAIL_STB_PRAGMA(x) _Pragma(#x)
#define NANOTORCH_DETAIL_STB_PUSH(m) NANOTORCH_DETAIL_STB_PRAGMA(push_macro(#m))
#define NANOTORCH_DETAIL_STB_POP(m) NANOTORCH_DETAIL_STB_PRAGMA(pop_macro(#m))

NANOTORCH_DETAIL_STB_MACROS(NANOTORCH_DETAIL_STB_PUSH)
// A pushed macro keeps its value, so clear each one; #undef cannot be generated by a macro.
#undef STBI_INCLUDE_STB_IMAGE_H
#undef STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_STATIC
#undef STBIDEF
#undef STBI_VERSION
#undef STBI_EXTERN
#undef stbi_inline
#undef STBI_NOTUSED
#undef stbi_lrot
#undef STBI_SIMD_ALIGN
#undef STBI__BYTECAST
#undef STBI__X86_TARGET
#undef STBI__X64_TARGET
#undef STBI__ZFAST_BITS
#undef STBI__ZFAST_MASK
#undef STBI__ZNSYMS
#undef stbi__err
#undef stbi__errpf
#undef stbi__errpuc
#undef stbi__vertically_flip_on_load
#undef STBI_ASSERT
#undef STBI_MALLOC
#undef STBI_REALLOC
#undef STBI_REALLOC_SIZED
#undef STBI_FREE
#undef STBI_MAX_DIMENSIONS
#undef STBI_THREAD_LOCAL
#undef STBI_NO_THREAD_LOCALS
#undef STBI_NO_FAILURE_STRINGS
#undef STBI_FAILURE_USERMSG
#undef STBI_NO_STDIO
#undef STBI_NO_LINEAR
#undef STBI_NO_HDR
#undef STBI_NO_SIMD
#undef STBI_NO_JPEG
#undef STBI_NO_PNG
#undef STBI_NO_BMP
#undef STBI_NO_PSD
#undef STBI_NO_TGA
#undef STBI_NO_GIF
#undef STBI_NO_PIC
#undef STBI_NO_PNM
#undef STBI_NO_ZLIB
#undef STBI_ONLY_JPEG
#undef STBI_ONLY_PNG
#undef STBI_ONLY_BMP
#undef STBI_ONLY_PSD
#undef STBI_ONLY_TGA
#undef STBI_ONLY_GIF
#undef STBI_ONLY_HDR
#undef STBI_ONLY_PIC
#undef STBI_ONLY_PNM
#undef STBI_ONLY_ZLIB
#undef STBI_SUPPORT_ZLIB
#undef STBI_SSE2
#undef STBI_NEON
#undef STBI_MINGW_ENABLE_SSE2
#undef STBI_HAS_LROTL
#undef STBI_WINDOWS_UTF8
#undef FAST_BITS
#undef STBI__COMBO
#undef STBI__IDCT_1D
#undef STBI__MARKER_none
#undef STBI__PNG_TYPE
#undef STBI__RESTART
#undef stbi__DNL
#undef stbi__EOI
#undef stbi__SOF
#undef stbi__SOF_progressive
#undef stbi__SOI
#undef stbi__SOS
#undef stbi__de_iphone_flag
#undef stbi__div16
#undef stbi__div4
#undef stbi__f2f
#undef stbi__float2fixed
#undef stbi__fsh
#undef stbi__unpremultiply_on_load
#undef stbi_convert_iphone_png_to_rgb
#undef stbi_convert_iphone_png_to_rgb_thread
#undef stbi_failure_reason
#undef stbi_image_free
#undef stbi_info_from_callbacks
#undef stbi_info_from_memory
#undef stbi_is_16_bit_from_callbacks
#undef stbi_is_16_bit_from_memory
#undef stbi_is_hdr_from_callbacks
#undef stbi_is_hdr_from_memory
#undef stbi_load_16_from_callbacks
#undef stbi_load_16_from_memory
#undef stbi_load_from_callbacks
#undef stbi_load_from_memory
#undef stbi_set_flip_vertically_on_load
#undef stbi_set_flip_vertically_on_load_thread
#undef stbi_set_unpremultiply_on_load
#undef stbi_set_unpremultiply_on_load_thread
#undef stbi_zlib_decode_buffer
#undef stbi_zlib_decode_malloc
#undef stbi_zlib_decode_malloc_guesssize
#undef stbi_zlib_decode_malloc_guesssize_headerflag
#undef stbi_zlib_decode_noheader_buffer
#undef stbi_zlib_decode_noheader_malloc

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#ifdef NANOTORCH_DETAIL_STB_IMAGE_FORMATS
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_MALLOC(sz) ::nanotorch::data::detail::image_malloc(sz)
#define STBI_REALLOC(p, sz) ::nanotorch::data::detail::image_realloc(p, sz)
#define STBI_FREE(p) ::nanotorch::data::detail::image_free(p)
#define NANOTORCH_DETAIL_STB_PREFIX nanotorch_detail_image_stbi_
#else
#define STBI_ONLY_ZLIB     // no image formats at all ...
#define STBI_SUPPORT_ZLIB  // ... but keep the inflater
#define NANOTORCH_DETAIL_STB_PREFIX nanotorch_detail_stbi_
#endif
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_SIMD
#define STBI_NO_GIF  // the header part declares the GIF entry point before STBI_ONLY_* disables it
#define STBI_ASSERT(x) assert(x)  // stb's internal invariants only; <assert.h> is included above

// stbi_failure_reason -> nanotorch_detail_stbi_failure_reason (or ..._image_stbi_...).
#define NANOTORCH_DETAIL_STB_PASTE(a, b) a##b
#define NANOTORCH_DETAIL_STB_CAT(a, b) NANOTORCH_DETAIL_STB_PASTE(a, b)
#define NANOTORCH_DETAIL_STB_NAME(n) NANOTORCH_DETAIL_STB_CAT(NANOTORCH_DETAIL_STB_PREFIX, n)
#define stbi_convert_iphone_png_to_rgb NANOTORCH_DETAIL_STB_NAME(convert_iphone_png_to_rgb)
#define stbi_convert_iphone_png_to_rgb_thread NANOTORCH_DETAIL_STB_NAME(convert_iphone_png_to_rgb_thread)
#define stbi_failure_reason NANOTORCH_DETAIL_STB_NAME(failure_reason)
#define stbi_image_free NANOTORCH_DETAIL_STB_NAME(image_free)
#define stbi_info_from_callbacks NANOTORCH_DETAIL_STB_NAME(info_from_callbacks)
#define stbi_info_from_memory NANOTORCH_DETAIL_STB_NAME(info_from_memory)
#define stbi_is_16_bit_from_callbacks NANOTORCH_DETAIL_STB_NAME(is_16_bit_from_callbacks)
#define stbi_is_16_bit_from_memory NANOTORCH_DETAIL_STB_NAME(is_16_bit_from_memory)
#define stbi_is_hdr_from_callbacks NANOTORCH_DETAIL_STB_NAME(is_hdr_from_callbacks)
#define stbi_is_hdr_from_memory NANOTORCH_DETAIL_STB_NAME(is_hdr_from_memory)
#define stbi_load_16_from_callbacks NANOTORCH_DETAIL_STB_NAME(load_16_from_callbacks)
#define stbi_load_16_from_memory NANOTORCH_DETAIL_STB_NAME(load_16_from_memory)
#define stbi_load_from_callbacks NANOTORCH_DETAIL_STB_NAME(load_from_callbacks)
#define stbi_load_from_memory NANOTORCH_DETAIL_STB_NAME(load_from_memory)
#define stbi_set_flip_vertically_on_load NANOTORCH_DETAIL_STB_NAME(set_flip_vertically_on_load)
#define stbi_set_flip_vertically_on_load_thread NANOTORCH_DETAIL_STB_NAME(set_flip_vertically_on_load_thread)
#define stbi_set_unpremultiply_on_load NANOTORCH_DETAIL_STB_NAME(set_unpremultiply_on_load)
#define stbi_set_unpremultiply_on_load_thread NANOTORCH_DETAIL_STB_NAME(set_unpremultiply_on_load_thread)
#define stbi_zlib_decode_buffer NANOTORCH_DETAIL_STB_NAME(zlib_decode_buffer)
#define stbi_zlib_decode_malloc NANOTORCH_DETAIL_STB_NAME(zlib_decode_malloc)
#define stbi_zlib_decode_malloc_guesssize NANOTORCH_DETAIL_STB_NAME(zlib_decode_malloc_guesssize)
#define stbi_zlib_decode_malloc_guesssize_headerflag NANOTORCH_DETAIL_STB_NAME(zlib_decode_malloc_guesssize_headerflag)
#define stbi_zlib_decode_noheader_buffer NANOTORCH_DETAIL_STB_NAME(zlib_decode_noheader_buffer)
#define stbi_zlib_decode_noheader_malloc NANOTORCH_DETAIL_STB_NAME(zlib_decode_noheader_malloc)

// Third-party C-style code: silence what stricter user flags would report in it (these fire only
// when stb is not found as a system header). Our own code stays fully checked.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-declarations"
#pragma GCC diagnostic ignored "-Wundef"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#ifdef NANOTORCH_DETAIL_STB_IMAGE_FORMATS
// Under Clang, UBSan does not instrument the image decoders for three benign kinds of undefined
// behaviour: signed overflow in the JPEG IDCT on corrupt coefficients; memcpy(NULL, p, 0) for an
// empty first PNG IDAT chunk; a shift by more than 31 when the JPEG bit reader's count goes
// negative on corrupt entropy-coded data, which only yields garbage bits. So a sanitized build
// with -fno-sanitize-recover (the fuzz targets, clang-asan CI) can decode hostile files. ASan
// still checks every memory access stb makes.
#if defined(__clang__)
#pragma clang attribute push(                                                                      \
    __attribute__((no_sanitize("signed-integer-overflow", "nonnull-attribute", "shift"))),          \
    apply_to = function)
#endif
namespace nanotorch::data::detail::image_stb {
#include <stb/stb_image.h>
}  // namespace nanotorch::data::detail::image_stb
#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
namespace nanotorch::data::detail::stb {
#include <stb/stb_image.h>
}  // namespace nanotorch::data::detail::stb
#endif
#pragma GCC diagnostic pop

// Restores each macro's earlier definition, or its absence (which also drops our renames).
NANOTORCH_DETAIL_STB_MACROS(NANOTORCH_DETAIL_STB_POP)
#undef NANOTORCH_DETAIL_STB_MACROS
#undef NANOTORCH_DETAIL_STB_PRAGMA
#undef NANOTORCH_DETAIL_STB_PUSH
#undef NANOTORCH_DETAIL_STB_POP
#undef NANOTORCH_DETAIL_STB_PASTE
#undef NANOTORCH_DETAIL_STB_CAT
#undef NANOTORCH_DETAIL_STB_NAME
#undef NANOTORCH_DETAIL_STB_PREFIX

#endif  // NANOTORCH_DETAIL_STB_MAKE_COPY
#undef NANOTORCH_DETAIL_STB_IMAGE_FORMATS
