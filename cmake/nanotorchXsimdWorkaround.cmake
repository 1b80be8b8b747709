# Included after find_package(xsimd), both by our CMakeLists.txt and by the installed
# nanotorchConfig.cmake, so that a consumer sees exactly what our own build saw.
#
# Why: Debian 12's libxsimd-dev 8.1.0 was built with ENABLE_XTL_COMPLEX=ON, so its exported
# `xsimd` target lists "xtl" in INTERFACE_LINK_LIBRARIES, but its xsimdConfig.cmake never runs
# find_dependency(xtl) and Debian does not make libxtl-dev a dependency. With no `xtl` target
# CMake turns the name into `-lxtl` and every link fails ("cannot find -lxtl"); see
# xtensor-stack/xsimd#869 (fixed upstream by #875, after 8.1.0). xtl is only needed when
# XSIMD_ENABLE_XTL_COMPLEX is defined, which nothing sets, so an empty stand-in target is exact.
if(TARGET xsimd AND NOT TARGET xtl)
  get_target_property(_nanotorch_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
  if(_nanotorch_xsimd_links AND "xtl" IN_LIST _nanotorch_xsimd_links)
    find_package(xtl CONFIG QUIET)
    if(NOT TARGET xtl)
      add_library(xtl INTERFACE IMPORTED)
      if(NOT nanotorch_FIND_QUIETLY)
        message(STATUS "nanotorch: xsimd's CMake target names an 'xtl' target that is not "
                       "installed; using an empty stand-in (xsimd needs xtl only for "
                       "XSIMD_ENABLE_XTL_COMPLEX)")
      endif()
    endif()
  endif()
  unset(_nanotorch_xsimd_links)
endif()
