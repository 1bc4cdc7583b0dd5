# Cross-compile for aarch64 Linux with Debian's g++-aarch64-linux-gnu; run the results with
# `qemu-aarch64 -L /usr/aarch64-linux-gnu`. Used by tools/test-neon.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(TERNION_CROSS_PREFIX aarch64-linux-gnu- CACHE STRING "Cross toolchain prefix")
set(CMAKE_C_COMPILER ${TERNION_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${TERNION_CROSS_PREFIX}g++)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Lets try_run / add_test run target binaries under the emulator.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)
