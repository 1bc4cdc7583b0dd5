// The canonical storage of low-bit weight codes (the .tern file and the addon's wire format):
// ternary t in {-1,0,1} stored as t+1 in 2 bits, four per byte, first code in the low bits;
// 4-bit q in [-7,7] stored as q+8 in 4 bits, two per byte, first code in the low nibble.
// Kernel tables repack from the unpacked int8 codes into their own layouts at load.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ternion {
namespace pack {

inline size_t packed_code_bytes(size_t count, int bits) { return (count * bits + 7) / 8; }

// Returns false (writing nothing more) at the first code outside the range of `bits`.
bool pack_codes(const int8_t* codes, size_t count, int bits, uint8_t* out);
// Returns false at the first stored value that is not a valid code (ternary 3, 4-bit 0).
bool unpack_codes(const uint8_t* packed, size_t count, int bits, int8_t* out);

}  // namespace pack
}  // namespace ternion
