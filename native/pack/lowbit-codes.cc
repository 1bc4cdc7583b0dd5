#include "pack/lowbit-codes.h"

#include <cstring>

namespace ternion {
namespace pack {

bool pack_codes(const int8_t* codes, size_t count, int bits, uint8_t* out) {
  std::memset(out, 0, packed_code_bytes(count, bits));
  const int limit = bits == 2 ? 1 : 7;
  const int offset = bits == 2 ? 1 : 8;
  const int per_byte = 8 / bits;
  for (size_t i = 0; i < count; ++i) {
    if (codes[i] < -limit || codes[i] > limit) return false;
    out[i / per_byte] |= static_cast<uint8_t>((codes[i] + offset) << (bits * (i % per_byte)));
  }
  return true;
}

bool unpack_codes(const uint8_t* packed, size_t count, int bits, int8_t* out) {
  const int offset = bits == 2 ? 1 : 8;
  const int per_byte = 8 / bits;
  const int mask = (1 << bits) - 1;
  for (size_t i = 0; i < count; ++i) {
    const int v = (packed[i / per_byte] >> (bits * (i % per_byte))) & mask;
    if ((bits == 2 && v == 3) || (bits == 4 && v == 0)) return false;
    out[i] = static_cast<int8_t>(v - offset);
  }
  return true;
}

}  // namespace pack
}  // namespace ternion
