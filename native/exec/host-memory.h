// Host buffers built once and kept for a session's life (packed weights, constants), 64-byte aligned.
//
// Large blocks are mapped straight from the OS rather than taken from malloc: glibc raises its
// mmap threshold to the largest block freed so far, after which big buffers land in the brk
// heap, where a freed one stays resident behind whatever was allocated after it. A mapped block
// goes back to the OS the moment it is freed, so a released session returns its memory and a
// session's resident size stays what it holds.
#pragma once

#include <cstddef>
#include <memory>

namespace ternion::exec {

// Blocks of at least this many bytes are mapped; smaller ones come from posix_memalign.
constexpr size_t kMappedBlockMin = size_t(64) << 10;

// A block of `bytes` (at least 64), 64-byte aligned, zero-filled when `zeroed` (mapped blocks
// always are); nullptr when out of memory.
std::shared_ptr<void> allocate_host_block(size_t bytes, bool zeroed);

// The same from malloc whatever the size: blocks reused run after run (the activation arena),
// where a mapping would fault a new run's output in page by page.
std::shared_ptr<void> allocate_heap_block(size_t bytes, bool zeroed);

}  // namespace ternion::exec
