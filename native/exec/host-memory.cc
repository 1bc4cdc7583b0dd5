#include "exec/host-memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define TERNION_HAVE_MMAP 1
#endif

namespace ternion::exec {

std::shared_ptr<void> allocate_heap_block(size_t bytes, bool zeroed) {
  bytes = std::max<size_t>((bytes + 63) & ~size_t(63), 64);
  void* p = nullptr;
  if (posix_memalign(&p, 64, bytes) != 0 || !p) return nullptr;
  if (zeroed) std::memset(p, 0, bytes);
  return std::shared_ptr<void>(p, std::free);
}

std::shared_ptr<void> allocate_host_block(size_t bytes, bool zeroed) {
#ifdef TERNION_HAVE_MMAP
  if (std::max<size_t>((bytes + 63) & ~size_t(63), 64) >= kMappedBlockMin) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t len = (bytes + page - 1) / page * page;
    // Anonymous pages read as zero and become resident only when touched.
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    return std::shared_ptr<void>(p, [len](void* q) { munmap(q, len); });
  }
#endif
  return allocate_heap_block(bytes, zeroed);
}

}  // namespace ternion::exec
