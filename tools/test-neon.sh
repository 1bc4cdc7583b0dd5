#!/usr/bin/env bash
# Cross-builds the kernel tests for aarch64 and runs them under qemu-user; the exit code is the
# test result. Needs g++-aarch64-linux-gnu and qemu-user (Debian/Ubuntu package names).
#
#   tools/test-neon.sh [kernel_tests args...]      e.g. tools/test-neon.sh --kind lowbit
# Environment: BUILD_DIR (default build/aarch64), QEMU_CPU (default max: has dotprod),
#              JOBS (default nproc), SANITIZE=1 for an ASan/UBSan build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build/aarch64}"
sysroot=/usr/aarch64-linux-gnu
qemu_cpu="${QEMU_CPU:-max}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

for tool in aarch64-linux-gnu-g++ qemu-aarch64 cmake; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "test-neon: $tool not found (apt-get install g++-aarch64-linux-gnu qemu-user cmake)" >&2
    exit 2
  fi
done

cmake -S "$root" -B "$build" \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64.cmake" \
  -DCMAKE_BUILD_TYPE=Release \
  -DTERNION_BUILD_ADDON=OFF \
  -DTERNION_BUILD_TESTS=ON \
  -DTERNION_SANITIZE="$([ "${SANITIZE:-0}" = 1 ] && echo ON || echo OFF)" >/dev/null
cmake --build "$build" --target kernel_tests -j "$jobs"

echo "test-neon: running $build/kernel_tests under qemu-aarch64 -cpu $qemu_cpu"
exec qemu-aarch64 -cpu "$qemu_cpu" -L "$sysroot" "$build/kernel_tests" "$@"
