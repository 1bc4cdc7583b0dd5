// Shared pieces of the quantized layer ops TernionQConv / TernionQGemm (qconv.cc, qgemm.cc):
// the activation quantizer (dynamic or static, 8- or 4-bit, asymmetric uint8), the quantized
// weights of a layer (validated and packed once for the build's kernel table, one packed block
// per conv group), and the per-run Requant epilogue that makes the integer GEMMs write fp32.
//
// Weight inputs (all constant; shapes are checked by element count, dtypes exactly):
//   input 1  codes          int8 [Co, K], GEMM row layout of lib/quantize/weights/layout.ts
//   weight_bits 8:          input 2 channel_scale float32 [Co]            (w = code * cs[co])
//   weight_bits 2/4, form "group-scaled":
//                           input 2 scale_pos float32 [Co, K/G]
//                           input 5 scale_neg float32 [Co, K/G]           (asym = 1 only)
//   weight_bits 2/4, form "folded":
//                           input 2 mult_pos int8 [Co, K/G]
//                           input 5 mult_neg int8 [Co, K/G]               (asym = 1 only)
//                           input 6 channel_scale float32 [Co]
// Inputs that the form does not use must be absent (-1 or not listed).
//
// Activations: q = clamp(round_half_even(x / s_x) + zp, 0, qmax), qmax = 2^act_bits - 1.
//   act_mode "static":  s_x = act_scale, zp = act_zero_point (attributes).
//   act_mode "dynamic": per run and per tensor; lo = min(0, min x), hi = max(0, max x) (NaN
//                       ignored); hi == lo: s_x = 1, zp = 0; else s_x = (hi - lo) / qmax (fp32
//                       subtract, fp32 divide), zp = clamp(round_half_even(-lo / s_x), 0, qmax).
//                       A range that is not a positive finite scale falls back to s_x = 1.
// All arithmetic is fp32 with round-to-nearest-even, so a reference can reproduce q exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"

namespace ternion {
namespace exec {
namespace ops {
namespace quant {

// ---------------------------------------------------------------- activations

struct ActParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
  int32_t qmax = 255;
};

struct ActConfig {
  bool dynamic = true;
  int bits = 8;
  ActParams fixed;  // static mode
};

inline ActConfig read_act_config(const NodeDesc& node) {
  ActConfig c;
  const std::string where = node.where();
  const std::string mode = node.get_string("act_mode", "dynamic");
  if (mode != "dynamic" && mode != "static")
    fail("ERR_MODEL_FORMAT", where + ": act_mode must be \"dynamic\" or \"static\", got \"" + mode + "\"");
  c.dynamic = mode == "dynamic";
  const int64_t bits = node.get_int("act_bits", 8);
  if (bits != 8 && bits != 4) fail("ERR_UNSUPPORTED_OP", where + ": act_bits must be 8 or 4, got " + std::to_string(bits));
  c.bits = static_cast<int>(bits);
  c.fixed.qmax = (1 << c.bits) - 1;
  if (!c.dynamic) {
    if (!node.has("act_scale")) fail("ERR_MODEL_FORMAT", where + ": act_mode \"static\" needs the float attribute act_scale");
    c.fixed.scale = node.get_float("act_scale", 1.0f);
    if (!(c.fixed.scale > 0.0f) || !std::isfinite(c.fixed.scale))
      fail("ERR_MODEL_FORMAT", where + ": act_scale " + std::to_string(c.fixed.scale) + " must be a positive finite number");
    const int64_t zp = node.get_int("act_zero_point", 0);
    if (zp < 0 || zp > c.fixed.qmax)
      fail("ERR_MODEL_FORMAT", where + ": act_zero_point " + std::to_string(zp) + " is outside [0, " + std::to_string(c.fixed.qmax) +
                                   "] for " + std::to_string(c.bits) + "-bit activations");
    c.fixed.zero_point = static_cast<int32_t>(zp);
  } else if (node.has("act_scale") || node.has("act_zero_point")) {
    fail("ERR_MODEL_FORMAT", where + ": act_scale / act_zero_point are only allowed with act_mode \"static\"");
  }
  return c;
}

// The static parameters <prefix>_scale, <prefix>_zero_point (default 0) and <prefix>_bits (8 or
// 4, default 8) of a tensor the op quantizes (its uint8 output, a residual), checked.
inline ActParams read_quant_params(const NodeDesc& node, const std::string& prefix) {
  const std::string where = node.where();
  ActParams q;
  const int64_t bits = node.get_int(prefix + "_bits", 8);
  if (bits != 8 && bits != 4) fail("ERR_MODEL_FORMAT", where + ": " + prefix + "_bits must be 8 or 4, got " + std::to_string(bits));
  q.qmax = (1 << bits) - 1;
  q.scale = node.get_float(prefix + "_scale", 0.0f);
  if (!(q.scale > 0.0f) || !std::isfinite(q.scale))
    fail("ERR_MODEL_FORMAT", where + ": " + prefix + "_scale " + std::to_string(q.scale) + " must be a positive finite number");
  const int64_t zp = node.get_int(prefix + "_zero_point", 0);
  if (zp < 0 || zp > q.qmax)
    fail("ERR_MODEL_FORMAT", where + ": " + prefix + "_zero_point " + std::to_string(zp) + " is outside [0, " + std::to_string(q.qmax) + "]");
  q.zero_point = static_cast<int32_t>(zp);
  return q;
}

// A residual input quantized like an activation (residual_scale, residual_zero_point,
// residual_bits): the op adds (q - zero_point) * scale with q = the residual's code (quantize_span),
// whether it receives the code (uint8, chained) or the float32 value (quantized first).
inline bool read_residual_quant(const NodeDesc& node, ActParams& q) {
  if (!node.has("residual_scale")) {
    if (node.has("residual_zero_point") || node.has("residual_bits"))
      fail("ERR_MODEL_FORMAT", node.where() + ": residual_zero_point / residual_bits need residual_scale");
    return false;
  }
  q = read_quant_params(node, "residual");
  return true;
}

// y[i] = (q[i] - zero_point) * scale: the value a code stands for.
inline void dequantize_span(const uint8_t* q, float* y, int64_t n, const ActParams& p) {
  const float s = p.scale;
  const int32_t z = p.zero_point;
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(q[i]) - z) * s;
}

// round_half_even(v) for v already clamped to a small integer range (|v| < 2^22): adding
// 1.5 * 2^23 rounds in the FPU's default mode; vectorizes with baseline SSE2 / NEON.
inline float round_small(float v) {
  const float magic = 12582912.0f;
  return (v + magic) - magic;
}

// y[i] = round_half_even(clamp(fmaf(x[i], 1 / scale, zp), 0, qmax)) through the run's kernel
// table (kernels.h quantize_u8; the scalar table is the reference): clamping before rounding is
// exact (integer bounds), NaN goes to the low bound, and the reciprocal is rounded to float once,
// the same one the integer epilogue's quantization uses, so a chained layer's uint8 output is
// bit for bit this function of its fp32 output.
inline void quantize_span(const kernels::KernelTable* table, const float* x, uint8_t* y, int64_t n, const ActParams& q) {
  table->quantize_u8(x, y, static_cast<size_t>(n), q.scale, q.zero_point, q.qmax);
}

// min(0, min x) and max(0, max x) over [b, e), NaN ignored (quantize.cc: vectorized, compiled
// wide): the range of dynamic activation quantization and of DynamicQuantizeLinear.
void min_max_span(const float* x, int64_t b, int64_t e, float& lo, float& hi);

inline ActParams params_from_range(float lo, float hi, int32_t qmax) {
  ActParams p;
  p.qmax = qmax;
  if (hi == lo) return p;  // all zeros (or nothing): scale 1, zero point 0
  const float scale = (hi - lo) / static_cast<float>(qmax);
  if (!(scale > 0.0f) || !std::isfinite(scale)) return p;
  p.scale = scale;
  float z = -lo / scale;
  z = z > 0.0f ? z : 0.0f;
  z = z < static_cast<float>(qmax) ? z : static_cast<float>(qmax);
  p.zero_point = static_cast<int32_t>(round_small(z));
  return p;
}

// The activation parameters of this run: the static ones, or the tensor's range (min / max on
// the run's threads for large tensors).
inline ActParams act_params(const ActConfig& c, const GemmContext& ctx, const float* x, int64_t n) {
  if (!c.dynamic) return c.fixed;
  const int threads = thread_count(ctx);
  const int chunks = n >= (int64_t(1) << 16) && threads > 1 ? threads : 1;
  float lo = 0.0f, hi = 0.0f;
  if (chunks == 1) {
    min_max_span(x, 0, n, lo, hi);
  } else {
    std::vector<float> los(chunks, 0.0f), his(chunks, 0.0f);
    ctx.pool->parallel_for(chunks, threads, [&](int i) {
      min_max_span(x, n * i / chunks, n * (i + 1) / chunks, los[i], his[i]);
    });
    for (int i = 0; i < chunks; ++i) lo = std::min(lo, los[i]), hi = std::max(hi, his[i]);
  }
  return params_from_range(lo, hi, c.fixed.qmax);
}

// ---------------------------------------------------------------- weights

enum class WeightKind { Q8, Lowbit };

// A layer's quantized weights, packed for one table: `groups` blocks of Co / groups rows each
// (conv groups; 1 for Gemm), plus the per-output-channel factor of the epilogue scale.
struct PackedLayer {
  WeightKind kind = WeightKind::Q8;
  int bits = 8;
  int Co = 0, K = 0, G = 0;
  int groups = 1;
  const kernels::KernelTable* table = nullptr;
  std::vector<std::shared_ptr<void>> packed;  // one per conv group (none for a depthwise block)
  std::shared_ptr<void> depthwise;            // int8 depthwise conv: all channels, table->dw_pack
  std::vector<float> channel_scale;           // empty: 1 for every channel (group-scaled form)
  size_t bytes = 0;

  int rows_per_group() const { return Co / groups; }
  int nr() const { return kind == WeightKind::Q8 ? table->q8_nr : table->lowbit_nr; }
};

inline const HostTensor* constant_input(const BuildContext& bc, size_t i, const char* what, bool required) {
  const NodeDesc& node = bc.node;
  const bool listed = i < node.inputs.size() && node.inputs[i] >= 0;
  if (!listed) {
    if (required) fail("ERR_MODEL_FORMAT", node.where() + ": missing input " + std::to_string(i) + " (" + what + ")");
    return nullptr;
  }
  if (!required)
    fail("ERR_MODEL_FORMAT", node.where() + ": input " + std::to_string(i) + " (" + what + ") is not used by this weight form and must be absent");
  const HostTensor* t = bc.constant(i);
  if (!t) fail("ERR_UNSUPPORTED_OP", node.where() + ": input " + std::to_string(i) + " (" + what + ") must be a constant");
  return t;
}

inline void check_param(const NodeDesc& node, const HostTensor& t, const char* what, DType dtype, int64_t count,
                        const std::string& shape_desc) {
  if (t.dtype != dtype)
    fail("ERR_DTYPE", node.where() + ": " + what + " must be " + dtype_name(dtype) + ", got " + dtype_name(t.dtype));
  if (shape_size(t.shape) != count)
    fail("ERR_SHAPE_MISMATCH", node.where() + ": " + what + " " + shape_str(t.shape) + " must hold " + shape_desc + " = " +
                                   std::to_string(count) + " values");
}

inline void check_finite(const NodeDesc& node, const HostTensor& t, const char* what) {
  const float* p = static_cast<const float*>(t.storage.get());
  const int64_t n = shape_size(t.shape);
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i]))
      fail("ERR_MODEL_FORMAT", node.where() + ": " + what + "[" + std::to_string(i) + "] = " + std::to_string(p[i]) + " is not finite");
}

inline void check_int8_range(const NodeDesc& node, const HostTensor& t, const char* what, int lo, int hi, const char* why) {
  const int8_t* p = static_cast<const int8_t*>(t.storage.get());
  const int64_t n = shape_size(t.shape);
  for (int64_t i = 0; i < n; ++i)
    if (p[i] < lo || p[i] > hi)
      fail("ERR_MODEL_FORMAT", node.where() + ": " + what + "[" + std::to_string(i) + "] = " + std::to_string(p[i]) + " is outside [" +
                                   std::to_string(lo) + ", " + std::to_string(hi) + "] (" + why + ")");
}

// Low-bit weights of a conv whose kernel positions hold P = padded channels, `cin` of them real
// (the quantizer pads each position to a multiple of N so groups never straddle two positions),
// with the padding columns dropped: K becomes S * cin, so the conv reads its input with no padded
// staging copy (a uint8 NHWC image straight from the previous layer) and multiplies no padding.
// The padding's activations are the zero point, so its columns add nothing to any group's
// integer sum: the result is the same integers. Groups: G == K stays one group per row; a
// group of N >= cin channels per position becomes those cin channels (same groups); otherwise
// each group is cut into groups of gcd(cin, N) that repeat its scale / multiplier, which only
// changes the fp32 order of the group-scaled sum (exact in the folded form).
struct UnpaddedLowbit {
  int64_t K = 0, G = 0;
  std::vector<int8_t> q, mult_pos, mult_neg;
  std::vector<float> scale_pos, scale_neg;
};

inline UnpaddedLowbit unpad_lowbit(const int8_t* q, int64_t Co, int64_t K, int64_t G, int64_t padded, int64_t cin, const float* sp,
                                   const float* sn, const int8_t* mp, const int8_t* mn) {
  UnpaddedLowbit u;
  const int64_t S = K / padded;
  u.K = S * cin;
  const int64_t ge = G == K ? u.K : cin <= G ? cin : std::gcd(cin, G);  // new group size
  u.G = ge;
  u.q.resize(static_cast<size_t>(Co * u.K));
  for (int64_t n = 0; n < Co; ++n)
    for (int64_t s = 0; s < S; ++s)
      std::memcpy(&u.q[static_cast<size_t>(n * u.K + s * cin)], q + n * K + s * padded, static_cast<size_t>(cin));
  const int64_t old_slots = K / G, new_slots = u.K / ge;
  // New group j of a row: position s = j / (cin / ge), channel c0 = (j % (cin / ge)) * ge, inside
  // old group s * (padded / G) + c0 / G (or the row's only group when G == K).
  auto old_slot = [&](int64_t j) -> int64_t {
    if (G == K) return 0;
    const int64_t per = cin / ge, s = j / per, c0 = (j % per) * ge;
    return s * (padded / G) + c0 / G;
  };
  auto remap = [&](const auto* src, auto& dst) {
    if (!src) return;
    dst.resize(static_cast<size_t>(Co * new_slots));
    for (int64_t n = 0; n < Co; ++n)
      for (int64_t j = 0; j < new_slots; ++j) dst[static_cast<size_t>(n * new_slots + j)] = src[n * old_slots + old_slot(j)];
  };
  remap(sp, u.scale_pos);
  remap(sn, u.scale_neg);
  remap(mp, u.mult_pos);
  remap(mn, u.mult_neg);
  return u;
}

// Reads weight_bits / group_size / form / asym and inputs 1, 2, 5, 6; validates everything and
// packs `groups` blocks of Co / groups rows. `padded` is the padded channel count P (K for
// Gemm): a group must not straddle two kernel offsets (P % G == 0) unless G == K.
// `depthwise` (a conv with one input and one output channel per group): int8 weights are
// packed once for the depthwise kernel (table->dw_q8) instead of one GEMM block per channel.
// `real_channels` (a conv with groups == 1, low-bit weights, padded > real_channels): the
// padding columns are dropped (unpad_lowbit), so L.K is S * real_channels.
inline PackedLayer pack_layer(const BuildContext& bc, int groups, int64_t padded, bool depthwise = false, int64_t real_channels = 0) {
  const NodeDesc& node = bc.node;
  const std::string where = node.where();
  PackedLayer L;
  L.table = bc.table;
  L.groups = groups;
  const HostTensor* codes = constant_input(bc, 1, "weight codes", true);
  if (codes->dtype != DType::I8) fail("ERR_DTYPE", where + ": weight codes must be int8, got " + dtype_name(codes->dtype));
  if (codes->shape.size() != 2)
    fail("ERR_SHAPE_MISMATCH", where + ": weight codes " + shape_str(codes->shape) + " must be 2-D [Co, K]");
  const int64_t Co = codes->shape[0], K = codes->shape[1];
  if (Co < 1 || K < 1) fail("ERR_SHAPE_MISMATCH", where + ": weight codes " + shape_str(codes->shape) + " must not be empty");
  if (K > kernels::kMaxIntegerK)
    fail("ERR_SHAPE_MISMATCH", where + ": K = " + std::to_string(K) + " exceeds the integer kernels' limit of " +
                                   std::to_string(kernels::kMaxIntegerK));
  if (Co > (int64_t(1) << 24)) fail("ERR_SHAPE_MISMATCH", where + ": " + std::to_string(Co) + " output channels is too many");
  if (Co % groups != 0)
    fail("ERR_SHAPE_MISMATCH", where + ": " + std::to_string(Co) + " output channels are not divisible by group " + std::to_string(groups));
  L.Co = static_cast<int>(Co);
  L.K = static_cast<int>(K);
  const int64_t bits = node.get_int("weight_bits", -1);
  if (bits != 8 && bits != 4 && bits != 2)
    fail("ERR_MODEL_FORMAT", where + ": weight_bits must be 8, 4 or 2, got " + (node.has("weight_bits") ? std::to_string(bits) : std::string("nothing")));
  L.bits = static_cast<int>(bits);
  const bool asym = node.get_int("asym", 0) != 0;
  const int Mg = L.rows_per_group();
  const int8_t* q = static_cast<const int8_t*>(codes->storage.get());

  if (bits == 8) {
    L.kind = WeightKind::Q8;
    const std::string form = node.get_string("form", "per-channel");
    if (form != "per-channel") fail("ERR_MODEL_FORMAT", where + ": int8 weights (weight_bits 8) take form \"per-channel\", got \"" + form + "\"");
    if (asym) fail("ERR_MODEL_FORMAT", where + ": asym applies to ternary weights (weight_bits 2) only");
    const int64_t G = node.get_int("group_size", K);
    if (G != K) fail("ERR_MODEL_FORMAT", where + ": int8 weights are per channel: group_size must be K = " + std::to_string(K) + ", got " + std::to_string(G));
    L.G = L.K;
    const HostTensor* cs = constant_input(bc, 2, "channel_scale", true);
    check_param(node, *cs, "channel_scale", DType::F32, Co, "Co");
    check_finite(node, *cs, "channel_scale");
    constant_input(bc, 5, "scale_neg / mult_neg", false);
    constant_input(bc, 6, "channel_scale of the folded form", false);
    const float* c = static_cast<const float*>(cs->storage.get());
    L.channel_scale.assign(c, c + Co);
    if (depthwise && Mg == 1 && groups == Co) {
      const size_t bytes = bc.table->dw_packed_size(L.Co, L.K);
      HostTensor block = make_host_tensor(DType::U8, {static_cast<int64_t>(bytes)});
      bc.table->dw_pack(q, L.Co, L.K, block.storage.get());
      L.depthwise = block.storage;
      L.bytes = bytes;
      return L;
    }
    const size_t bytes = bc.table->q8_packed_size(Mg, L.K);
    for (int g = 0; g < groups; ++g) {
      HostTensor block = make_host_tensor(DType::U8, {static_cast<int64_t>(bytes)});
      bc.table->q8_pack(q + static_cast<size_t>(g) * Mg * L.K, Mg, L.K, block.storage.get());
      L.packed.push_back(block.storage);
      L.bytes += bytes;
    }
    return L;
  }

  L.kind = WeightKind::Lowbit;
  if (!node.has("group_size")) fail("ERR_MODEL_FORMAT", where + ": weight_bits " + std::to_string(bits) + " needs the attribute group_size");
  const int64_t G = node.get_int("group_size", 0);
  if (G < 1 || G > K || K % G != 0)
    fail("ERR_SHAPE_MISMATCH", where + ": group_size " + std::to_string(G) + " must divide K = " + std::to_string(K));
  if (G != K && padded % G != 0)
    fail("ERR_SHAPE_MISMATCH", where + ": padded_channels " + std::to_string(padded) + " must be a multiple of group_size " + std::to_string(G) +
                                   " (groups must not straddle kernel positions) unless group_size = K");
  L.G = static_cast<int>(G);
  const std::string form = node.get_string("form", "group-scaled");
  if (form != "group-scaled" && form != "folded")
    fail("ERR_MODEL_FORMAT", where + ": form must be \"group-scaled\" or \"folded\" for weight_bits " + std::to_string(bits) + ", got \"" + form + "\"");
  if (asym && bits != 2) fail("ERR_MODEL_FORMAT", where + ": asym applies to ternary weights (weight_bits 2) only");
  const int lim = bits == 2 ? 1 : 7;
  check_int8_range(node, *codes, "weight codes", -lim, lim, bits == 2 ? "ternary codes" : "4-bit codes");
  const int64_t slots = Co * (K / G);
  const std::string slots_desc = "Co * K / group_size";
  kernels::LowbitWeights w;
  w.bits = L.bits;
  w.N = Mg;
  w.K = L.K;
  w.G = L.G;
  w.asym = asym;
  const int64_t per_group_slots = static_cast<int64_t>(Mg) * (K / G);
  const float* sp = nullptr;
  const float* sn = nullptr;
  const int8_t* mp = nullptr;
  const int8_t* mn = nullptr;
  if (form == "group-scaled") {
    w.form = kernels::LowbitForm::GroupScaled;
    const HostTensor* p = constant_input(bc, 2, "scale_pos", true);
    check_param(node, *p, "scale_pos", DType::F32, slots, slots_desc);
    check_finite(node, *p, "scale_pos");
    sp = static_cast<const float*>(p->storage.get());
    if (asym) {
      const HostTensor* n = constant_input(bc, 5, "scale_neg", true);
      check_param(node, *n, "scale_neg", DType::F32, slots, slots_desc);
      check_finite(node, *n, "scale_neg");
      sn = static_cast<const float*>(n->storage.get());
    } else {
      constant_input(bc, 5, "scale_neg (asym = 0)", false);
    }
    constant_input(bc, 6, "channel_scale (group-scaled form)", false);
  } else {
    w.form = kernels::LowbitForm::Folded;
    const int mmax = bits == 2 ? 127 : 18;
    const char* why = bits == 2 ? "ternary multipliers" : "4-bit multipliers: 7 * 18 must fit int8";
    const HostTensor* p = constant_input(bc, 2, "mult_pos", true);
    check_param(node, *p, "mult_pos", DType::I8, slots, slots_desc);
    check_int8_range(node, *p, "mult_pos", 1, mmax, why);
    mp = static_cast<const int8_t*>(p->storage.get());
    if (asym) {
      const HostTensor* n = constant_input(bc, 5, "mult_neg", true);
      check_param(node, *n, "mult_neg", DType::I8, slots, slots_desc);
      check_int8_range(node, *n, "mult_neg", 1, mmax, why);
      mn = static_cast<const int8_t*>(n->storage.get());
    } else {
      constant_input(bc, 5, "mult_neg (asym = 0)", false);
    }
    const HostTensor* cs = constant_input(bc, 6, "channel_scale", true);
    check_param(node, *cs, "channel_scale", DType::F32, Co, "Co");
    check_finite(node, *cs, "channel_scale");
    const float* c = static_cast<const float*>(cs->storage.get());
    L.channel_scale.assign(c, c + Co);
  }
  UnpaddedLowbit unpadded;
  if (groups == 1 && real_channels > 0 && real_channels < padded && K % padded == 0) {
    unpadded = unpad_lowbit(q, Co, K, G, padded, real_channels, sp, sn, mp, mn);
    L.K = static_cast<int>(unpadded.K);
    L.G = static_cast<int>(unpadded.G);
    w.K = L.K;
    w.G = L.G;
    q = unpadded.q.data();
    auto data = [](auto& v, auto* p) { return p ? v.data() : nullptr; };
    sp = data(unpadded.scale_pos, sp);
    sn = data(unpadded.scale_neg, sn);
    mp = data(unpadded.mult_pos, mp);
    mn = data(unpadded.mult_neg, mn);
  }
  for (int g = 0; g < groups; ++g) {
    const int64_t off = g * per_group_slots;
    w.q = q + static_cast<size_t>(g) * Mg * L.K;
    w.scale_pos = sp ? sp + off : nullptr;
    w.scale_neg = sn ? sn + off : nullptr;
    w.mult_pos = mp ? mp + off : nullptr;
    w.mult_neg = mn ? mn + off : nullptr;
    const size_t bytes = bc.table->lowbit_packed_size(&w);
    HostTensor block = make_host_tensor(DType::U8, {static_cast<int64_t>(bytes)});
    bc.table->lowbit_pack(&w, block.storage.get());
    L.packed.push_back(block.storage);
    L.bytes += bytes;
  }
  return L;
}

// The epilogue scale of this run: scale[n] = s_x * channel_scale[n] (s_x alone for the
// group-scaled form, whose group scales are inside the kernel's sum). In run scratch.
inline const float* run_scales(const PackedLayer& L, float s_x, RunContext& ctx) {
  float* s = static_cast<float*>(ctx.scratch(static_cast<size_t>(L.Co) * sizeof(float)));
  if (L.channel_scale.empty()) {
    for (int n = 0; n < L.Co; ++n) s[n] = s_x;
  } else {
    for (int n = 0; n < L.Co; ++n) s[n] = s_x * L.channel_scale[n];
  }
  return s;
}

// The next layer's input quantization done by the GEMM's epilogue (tables with post_quant):
// a Clip (infinite bounds: none), then the reader's activation parameters; uint8 out.
struct StoreQuant {
  float lo, hi;
  ActParams q;
  ActParams residual;  // the parameters of residual codes added before the Clip (tables with post_residual)
};

inline void set_store_quant(kernels::Requant& rq, const StoreQuant& sq) {
  rq.out = kernels::OutType::U8;
  rq.post_lo = sq.lo;
  rq.post_hi = sq.hi;
  rq.divisor = sq.q.scale;
  rq.zero_point = sq.q.zero_point;
  rq.qmin = 0;
  rq.qmax = sq.q.qmax;
}

// One threaded GEMM of conv group g: C[M][Co/groups] (fp32, row stride ldc) from uint8 rows A;
// with `sq`, C holds uint8 quantized by it instead.
// The epilogue of conv group g's GEMM: its channels' scales and bias, fp32 out (or the next
// layer's uint8 input, sq).
// `residual`: with sq, uint8 codes laid out like C (kernels.h), quantized with sq->residual.
inline kernels::Requant group_requant(const PackedLayer& L, int g, const float* scale, const float* bias, bool relu, const StoreQuant* sq,
                                      const uint8_t* residual) {
  kernels::Requant rq;
  const int Mg = L.rows_per_group();
  rq.scale = scale + static_cast<size_t>(g) * Mg;
  rq.bias = bias ? bias + static_cast<size_t>(g) * Mg : nullptr;
  rq.out = kernels::OutType::F32;
  rq.relu = relu;
  if (sq) {
    set_store_quant(rq, *sq);
    if (residual) {
      rq.residual = residual;
      rq.residual_scale = sq->residual.scale;
      rq.residual_zero_point = sq->residual.zero_point;
    }
  }
  return rq;
}

inline void run_group_gemm(const PackedLayer& L, const GemmContext& run_ctx, int g, int M, const uint8_t* A, size_t lda,
                           uint8_t a_zero, const float* scale, const float* bias, bool relu, void* C, size_t ldc,
                           const StoreQuant* sq = nullptr, const uint8_t* residual = nullptr) {
  GemmContext ctx = run_ctx;
  ctx.table = L.table;  // the table the weights were packed for
  const kernels::Requant rq = group_requant(L, g, scale, bias, relu, sq, residual);
  const int Mg = L.rows_per_group();
  if (L.kind == WeightKind::Q8)
    gemm_q8(ctx, M, Mg, L.K, A, lda, a_zero, L.packed[g].get(), rq, C, ldc);
  else
    gemm_lowbit(ctx, M, Mg, L.K, A, lda, a_zero, L.packed[g].get(), rq, C, ldc);
}

// run_group_gemm with A as row segments (gemm_q8_segs / gemm_lowbit_segs): the caller checked
// that the layer's table has the entry for its kind.
inline void run_group_gemm_segs(const PackedLayer& L, const GemmContext& run_ctx, int g, int M, int S, int Ls,
                                const uint8_t* const* segs, uint8_t a_zero, const float* scale, const float* bias, bool relu,
                                void* C, size_t ldc, const StoreQuant* sq = nullptr, const uint8_t* residual = nullptr) {
  GemmContext ctx = run_ctx;
  ctx.table = L.table;
  const kernels::Requant rq = group_requant(L, g, scale, bias, relu, sq, residual);
  const int Mg = L.rows_per_group();
  if (L.kind == WeightKind::Q8)
    gemm_q8_segs(ctx, M, Mg, S, Ls, segs, a_zero, L.packed[g].get(), rq, C, ldc);
  else
    gemm_lowbit_segs(ctx, M, Mg, S, Ls, segs, a_zero, L.packed[g].get(), rq, C, ldc);
}

// A constant bias input (index i) as a vector, or empty when absent / not constant.
inline std::vector<float> constant_bias(const BuildContext& bc, size_t i, int64_t Co) {
  std::vector<float> b;
  const HostTensor* t = bc.constant(i);
  if (!t) return b;
  if (t->dtype != DType::F32) fail("ERR_DTYPE", bc.node.where() + ": bias must be float32, got " + dtype_name(t->dtype));
  if (t->shape.size() != 1 || t->shape[0] != Co)
    fail("ERR_SHAPE_MISMATCH", bc.node.where() + ": bias " + shape_str(t->shape) + " must be [" + std::to_string(Co) + "]");
  const float* p = static_cast<const float*>(t->storage.get());
  b.assign(p, p + Co);
  return b;
}

inline void check_bias(const NodeDesc& node, const Tensor* b, int64_t Co) {
  if (!b) return;
  require_dtype(node, b, "bias", DType::F32);
  if (b->shape.size() != 1 || b->shape[0] != Co)
    fail("ERR_SHAPE_MISMATCH", node.where() + ": bias " + shape_str(b->shape) + " must be [" + std::to_string(Co) + "]");
}

}  // namespace quant
}  // namespace ops
}  // namespace exec
}  // namespace ternion
