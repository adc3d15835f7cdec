# Build the native module with zig's clang against an older glibc than the build machine's,
# so the wheel loads on RHEL 8 (glibc 2.28) and on Ubuntu 22.04 / JetPack 6 (2.35):
#   RADEDGE_ZIG_TARGET=x86_64-linux-gnu.2.28   (or aarch64-linux-gnu.2.28, cross-compiled)
#   RADEDGE_ZIG_PYTHON=<a Python with the ziglang package>   (default: python3)
# packaging/build_wheel.py sets both and passes this file as CMAKE_TOOLCHAIN_FILE.
if(NOT DEFINED ENV{RADEDGE_ZIG_TARGET})
  message(FATAL_ERROR "zig-toolchain.cmake needs RADEDGE_ZIG_TARGET, e.g. x86_64-linux-gnu.2.28")
endif()
string(REGEX MATCH "^[^-]+" RADEDGE_ZIG_ARCH "$ENV{RADEDGE_ZIG_TARGET}")
cmake_host_system_information(RESULT RADEDGE_HOST_ARCH QUERY OS_PLATFORM)
if(NOT RADEDGE_ZIG_ARCH STREQUAL RADEDGE_HOST_ARCH)
  set(CMAKE_SYSTEM_NAME Linux)
  set(CMAKE_SYSTEM_PROCESSOR ${RADEDGE_ZIG_ARCH})
endif()
set(CMAKE_C_COMPILER ${CMAKE_CURRENT_LIST_DIR}/zig/cc)
set(CMAKE_CXX_COMPILER ${CMAKE_CURRENT_LIST_DIR}/zig/c++)
set(CMAKE_AR ${CMAKE_CURRENT_LIST_DIR}/zig/ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${CMAKE_CURRENT_LIST_DIR}/zig/ranlib CACHE FILEPATH "")
# zig links its libc++ statically: export the module's entry point only (kernels.map).
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-Wl,--version-script=${CMAKE_CURRENT_LIST_DIR}/kernels.map")
