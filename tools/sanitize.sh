#!/usr/bin/env bash
# Builds the addon and the native kernel tests with -fsanitize=address,undefined and runs the
# kernel tests, the loader fuzzing and the native op tests under the sanitizers. Any report
# aborts (-fno-sanitize-recover=all), so the exit code is the verdict. Run by .ci/run.
#
#   tools/sanitize.sh            Environment: BUILD_DIR (default build/asan)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build/asan}"
cd "$root"

# Kernel sets this CPU cannot run are left out (their code would never execute here).
wide=ON
if ! grep -qwE 'avx512_vnni|avx_vnni' /proc/cpuinfo 2>/dev/null; then wide=OFF; fi
node node_modules/cmake-js/bin/cmake-js compile --out "$build" --CDTERNION_SANITIZE=ON --CDTERNION_BUILD_TESTS=ON \
  --CDTERNION_WIDE_X86_KERNELS=$wide >/dev/null

echo "sanitize: kernel tests"
"$build/kernel_tests" >/dev/null

# Node itself is not instrumented: preload the runtimes so the addon's checks work inside it.
# Leak detection is off (Node does not free everything at exit by design).
asan="$(g++ -print-file-name=libasan.so)"
ubsan="$(g++ -print-file-name=libubsan.so)"
echo "sanitize: loader fuzzing, quantized ops, channels-last, sessions, recurrent ops, control flow (vitest)"
LD_PRELOAD="$asan:$ubsan" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
TERNION_ADDON="$build/Release/ternion.node" \
  npx vitest run --pool=forks test/loader-fuzz.test.ts test/qops.test.ts test/channels-last.test.ts test/session.test.ts \
    test/session-abort.test.ts test/onnx-corrupt-models.test.ts test/kernels-api.test.ts test/recurrent-ops.test.ts \
    test/control-flow-native.test.ts
echo "sanitize: no reports"
