// TernionQConv: a Conv (1-D to 3-D, groups, pads / auto_pad, strides, dilations) on quantized
// weights (int8 per channel, ternary or 4-bit FGQ, group-scaled or folded) with uint8
// activations, producing float32 NCHW. Contract: quant-common.h (weights, activations) and:
//
//   inputs   0 X float32 [N, group * in_channels, spatial...]
//            1 codes int8 [Co, K], K = prod(kernel_shape) * padded_channels, column
//              k = s * padded_channels + ci (s = flattened kernel offset, ci < in_channels real,
//              the rest padding with code 0); rows g * Co/group .. are conv group g
//            2, 5, 6 weight parameters (quant-common.h)
//            3 bias float32 [Co] (optional)      4 residual float32, the output's shape (optional)
//   attrs    kernel_shape (required), strides, pads, dilations, auto_pad, group: as ONNX Conv
//            in_channels (required: input channels per conv group), padded_channels (default
//            in_channels), weight_bits, group_size, form, asym, act_mode, act_scale,
//            act_zero_point, act_bits, activation / activation_params or fused_activation,
//            residual_scale, residual_zero_point (0), residual_bits (8): the residual is then
//            quantized like an activation and its value (q - residual_zero_point) * residual_scale
//            is what is added
//   output   float32 [N, Co, out spatial...] = act(conv + bias + residual)
//
// Integer chaining (lib/ir/passes/channels-last.ts), pixel-major "nhwc" layouts:
//   input_layout "nhwc"   X is [N, spatial..., group * in_channels]: float32 (quantized by a
//                         contiguous pass, no transpose), or uint8 already quantized with this
//                         node's static activation parameters (padded_channels must equal
//                         in_channels), used as it is.
//   output_layout "nhwc"  outputs are [N, out spatial..., Co]; the residual (input 4) is in that
//                         layout: float32, or with residual_scale its uint8 codes (chained, as
//                         the producer stored them). output 0 is float32, or with output_quant = 1 uint8
//                         q = clamp(round_half_even(y / output_scale) + output_zero_point, 0,
//                         2^output_bits - 1) of the same fp32 value y; an optional output 1 is
//                         then the float32 y as well.
//
// Execution per image: one pass over the fp32 input quantizes it into a uint8 pixel-major copy
// [H*W][group * padded_channels] (padded channels hold the zero point). A pointwise conv (1x1,
// stride 1, no pads) uses that copy as the GEMM's A directly. Any other window, on tables with
// the segment GEMMs (q8_gemm_segs, lowbit_gemm_segs) and kernel rows that are whole spans,
// passes each output pixel's kernel rows as pointers into that copy (an implicit im2col; only
// rows crossing the left or right edge are copied); otherwise it gathers rows of [out
// pixels][K] with memcpy of whole channel runs (the zero point at padding), in chunks of pixels
// that stay in cache. The threaded integer GEMM's epilogue writes fp32
// (scale[n] = s_x * w_scale[n], bias, ReLU when there is no residual), and a blocked transpose
// stores NCHW with the residual and activation.
#include <algorithm>
#include <cstring>
#include <limits>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/im2col.h"
#include "exec/ops/quant-common.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

// Pixels [p0, p1) of one image's planes x [groups * cin][HW] quantized into out [HW][ld]: channel
// g * cin + ci goes to column g * P + ci, columns g * P + cin .. g * P + P - 1 get the zero point.
void stage_pixels(const kernels::KernelTable* t, const float* x, int64_t groups, int64_t cin, int64_t P, int64_t HW, const quant::ActParams& q,
                  int64_t p0, int64_t p1, uint8_t* out, size_t ld) {
  constexpr int64_t kBlock = 64;
  uint8_t tmp[kBlock];
  const uint8_t zp = static_cast<uint8_t>(q.zero_point);
  if (groups == 1 && P <= 4 && ld == static_cast<size_t>(P)) {
    // At most 4 channels (an image model's RGB stem): each pixel's bytes are assembled in one
    // 32-bit word and stored at once (overlapping the next pixel's bytes, which its own store
    // then writes), instead of a strided byte pass per plane and a memset per pixel for padding.
    // Stores never pass pixel p1 (another thread may be staging the pixels after it).
    uint8_t planes[4][kBlock];
    const size_t end = static_cast<size_t>(p1) * ld;
    for (int64_t pb = p0; pb < p1; pb += kBlock) {
      const int64_t len = std::min(kBlock, p1 - pb);
      for (int64_t c = 0; c < 4; ++c) {
        if (c < cin) quant::quantize_span(t, x + c * HW + pb, planes[c], len, q);
        else std::memset(planes[c], zp, static_cast<size_t>(len));
      }
      for (int64_t j = 0; j < len; ++j) {
        const uint32_t word = planes[0][j] | static_cast<uint32_t>(planes[1][j]) << 8 | static_cast<uint32_t>(planes[2][j]) << 16 |
                              static_cast<uint32_t>(planes[3][j]) << 24;
        const size_t at = static_cast<size_t>(pb + j) * ld;
        if (at + 4 <= end) {
          std::memcpy(out + at, &word, 4);  // little-endian: channel c is byte c
        } else {
          for (int64_t c = 0; c < P; ++c) out[at + c] = planes[c][j];
        }
      }
    }
    return;
  }
  for (int64_t pb = p0; pb < p1; pb += kBlock) {
    const int64_t len = std::min(kBlock, p1 - pb);
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t ci = 0; ci < cin; ++ci) {
        quant::quantize_span(t, x + (g * cin + ci) * HW + pb, tmp, len, q);
        uint8_t* o = out + pb * ld + g * P + ci;
        for (int64_t j = 0; j < len; ++j) o[j * ld] = tmp[j];
      }
    }
    if (P > cin)
      for (int64_t p = pb; p < pb + len; ++p)
        for (int64_t g = 0; g < groups; ++g) std::memset(out + p * ld + g * P + cin, zp, static_cast<size_t>(P - cin));
  }
}

// Pixels [p0, p1) of one image's pixel-major x [HW][groups * cin] quantized into out [HW][ld]
// (channel g * cin + ci to column g * P + ci, the padding columns get the zero point).
void stage_pixels_nhwc(const kernels::KernelTable* t, const float* x, int64_t groups, int64_t cin, int64_t P, const quant::ActParams& q, int64_t p0, int64_t p1,
                       uint8_t* out, size_t ld) {
  const uint8_t zp = static_cast<uint8_t>(q.zero_point);
  for (int64_t p = p0; p < p1; ++p) {
    if (P == cin) {
      quant::quantize_span(t, x + p * groups * cin, out + p * ld, groups * cin, q);
      continue;
    }
    for (int64_t g = 0; g < groups; ++g) {
      quant::quantize_span(t, x + (p * groups + g) * cin, out + p * ld + g * P, cin, q);
      std::memset(out + p * ld + g * P + cin, zp, static_cast<size_t>(P - cin));
    }
  }
}

// The residual an output adds, at one output position: float32 values, or uint8 codes with the
// parameters they were quantized with (chained; dequantized a chunk at a time, which gives the
// values the float32 form has once the op has quantized it: see QConvOp::run).
struct Residual {
  const float* f32 = nullptr;
  const uint8_t* u8 = nullptr;
  quant::ActParams q;
  bool present() const { return f32 != nullptr || u8 != nullptr; }
  Residual at(int64_t offset) const {
    Residual r = *this;
    if (r.f32) r.f32 += offset;
    if (r.u8) r.u8 += offset;
    return r;
  }
};

// The GEMM result of `rows` output pixels (C[p][m], m < channels) stored pixel-major with row
// stride ld: y = act(C + residual), written as float32 (yf) and / or quantized to uint8 (yq) by
// the run's quantize kernel (the formula the next layer's staging would apply to y). The fp32
// pass is instantiated per activation and residual so it vectorizes (Activation::of, the
// formulas Activation::apply uses).
template <int ACT, bool RES>
void act_row(const float* c, const float* r, const Activation& act, float* v, int64_t n) {
  if (ACT == Activation::Silu || ACT == Activation::HardSwish) {  // wide span functions, in place
    for (int64_t m = 0; m < n; ++m) v[m] = RES ? c[m] + r[m] : c[m];
    act.apply(v, static_cast<size_t>(n));
    return;
  }
  const Activation a = act;  // a local copy: its bounds stay in registers across the loop
  for (int64_t m = 0; m < n; ++m) v[m] = a.of<ACT>(RES ? c[m] + r[m] : c[m]);
}

template <int ACT, bool RES>
void store_rows(const kernels::KernelTable* t, const float* C, int64_t rows, int64_t channels, const Residual& residual, const Activation& act,
                float* yf, uint8_t* yq, size_t ld, const quant::ActParams& q) {
  constexpr int64_t kChunk = 512;
  alignas(64) float tmp[kChunk];
  alignas(64) float rtmp[kChunk];
  // Rows stored back to back (the usual NHWC output) are one long span: a few long kernel calls
  // instead of one short call per pixel (16-24 channels in MobileNet's projections).
  if (static_cast<int64_t>(ld) == channels) {
    channels *= rows;
    rows = 1;
  }
  for (int64_t p = 0; p < rows; ++p) {
    const float* c = C + p * channels;
    const float* r = RES && residual.f32 ? residual.f32 + p * ld : nullptr;
    const uint8_t* r8 = RES && residual.u8 ? residual.u8 + p * ld : nullptr;
    if (yf && !r8) {
      float* f = yf + p * ld;
      if (ACT != Activation::None || RES) act_row<ACT, RES>(c, r, act, f, channels);
      else std::memcpy(f, c, static_cast<size_t>(channels) * sizeof(float));
      if (yq) quant::quantize_span(t, f, yq + p * ld, channels, q);
      continue;
    }
    for (int64_t m0 = 0; m0 < channels; m0 += kChunk) {
      const int64_t len = std::min(kChunk, channels - m0);
      const float* rr = r ? r + m0 : nullptr;
      if (r8) {
        quant::dequantize_span(r8 + m0, rtmp, len, residual.q);
        rr = rtmp;
      }
      const float* v = c + m0;
      if (ACT != Activation::None || RES) {
        act_row<ACT, RES>(c + m0, rr, act, tmp, len);
        v = tmp;
      }
      if (yf) std::memcpy(yf + p * ld + m0, v, static_cast<size_t>(len) * sizeof(float));
      if (yq) quant::quantize_span(t, v, yq + p * ld + m0, len, q);
    }
  }
}

// store_rows for the activation kind and residual presence known at run time.
template <int ACT>
void store_rows_with(bool res, const kernels::KernelTable* t, const float* C, int64_t rows, int64_t channels, const Residual& residual,
                     const Activation& act, float* yf, uint8_t* yq, size_t ld, const quant::ActParams& q) {
  if (res) store_rows<ACT, true>(t, C, rows, channels, residual, act, yf, yq, ld, q);
  else store_rows<ACT, false>(t, C, rows, channels, residual, act, yf, yq, ld, q);
}

void store_pixels_nhwc(const kernels::KernelTable* t, const float* C, int64_t rows, int64_t channels, const Residual& residual,
                       const Activation& act, float* yf, uint8_t* yq, size_t ld, const quant::ActParams& q) {
  if (!yf && !yq) return;
  const bool res = residual.present();
  switch (act.kind) {
    case Activation::None: return store_rows_with<Activation::None>(res, t, C, rows, channels, residual, act, yf, yq, ld, q);
    case Activation::Relu: return store_rows_with<Activation::Relu>(res, t, C, rows, channels, residual, act, yf, yq, ld, q);
    case Activation::Clip: return store_rows_with<Activation::Clip>(res, t, C, rows, channels, residual, act, yf, yq, ld, q);
    case Activation::LeakyRelu: return store_rows_with<Activation::LeakyRelu>(res, t, C, rows, channels, residual, act, yf, yq, ld, q);
    case Activation::Silu: return store_rows_with<Activation::Silu>(res, t, C, rows, channels, residual, act, yf, yq, ld, q);
    case Activation::HardSwish: return store_rows_with<Activation::HardSwish>(res, t, C, rows, channels, residual, act, yf, yq, ld, q);
  }
}

class QConvOp : public Op {
 public:
  explicit QConvOp(const BuildContext& bc) : node_(bc.node), where_(bc.node.where()) {
    if (node_.outputs.empty() || node_.outputs.size() > 2) fail("ERR_UNSUPPORTED_OP", where_ + " must have one or two outputs");
    if (node_.inputs.size() > 7) fail("ERR_MODEL_FORMAT", where_ + " has more than 7 inputs");
    attrs_ = read_window_attrs(node_);
    if (attrs_.kernel.empty()) fail("ERR_MODEL_FORMAT", where_ + ": the attribute kernel_shape is required");
    nd_ = static_cast<int>(attrs_.kernel.size());
    if (nd_ > 3) fail("ERR_UNSUPPORTED_OP", where_ + ": " + std::to_string(nd_) + "-D convolutions are not supported (1-D to 3-D only)");
    int64_t S = 1;
    for (int64_t k : attrs_.kernel) {
      if (k < 1 || k > 4096) fail("ERR_MODEL_FORMAT", where_ + ": kernel_shape " + shape_str(attrs_.kernel) + " must be positive");
      S *= k;
    }
    group_ = node_.get_int("group", 1);
    if (group_ < 1 || group_ > (int64_t(1) << 20)) fail("ERR_MODEL_FORMAT", where_ + ": group " + std::to_string(group_) + " must be positive");
    if (!node_.has("in_channels")) fail("ERR_MODEL_FORMAT", where_ + ": the attribute in_channels is required");
    cin_ = node_.get_int("in_channels", 0);
    P_ = node_.get_int("padded_channels", cin_);
    if (cin_ < 1 || cin_ > (int64_t(1) << 20)) fail("ERR_MODEL_FORMAT", where_ + ": in_channels " + std::to_string(cin_) + " must be positive");
    if (P_ < cin_ || P_ > (int64_t(1) << 20))
      fail("ERR_SHAPE_MISMATCH", where_ + ": padded_channels " + std::to_string(P_) + " must be at least in_channels " + std::to_string(cin_));
    act_ = read_activation(node_);
    act_config_ = quant::read_act_config(node_);
    in_nhwc_ = read_layout("input_layout");
    out_nhwc_ = read_layout("output_layout");
    out_quant_ = node_.get_int("output_quant", 0) != 0;
    if (out_quant_) {
      if (!out_nhwc_) fail("ERR_MODEL_FORMAT", where_ + ": output_quant needs output_layout \"nhwc\"");
      out_params_ = quant::read_quant_params(node_, "output");
    }
    out_f32_ = node_.outputs.size() == 2 && node_.outputs[1] >= 0;
    res_quant_ = quant::read_residual_quant(node_, res_params_);
    if (node_.outputs.size() == 2 && !out_quant_)
      fail("ERR_MODEL_FORMAT", where_ + ": a second (float32) output needs output_quant = 1");
    // Depthwise (one input and one output channel per group, no channel padding): int8 weights
    // run on the depthwise kernel over pixel pointers, no im2col and no per-channel GEMMs.
    const bool depthwise = cin_ == 1 && P_ == 1 && group_ > 1;
    // Low-bit weights with padded channels (quantizer groups of N > the channels left) are
    // packed without the padding (quant::unpad_lowbit): the layer then reads cin channels.
    const HostTensor* codes = bc.constant(1);
    const bool unpad = group_ == 1 && P_ > cin_ && node_.get_int("weight_bits", 8) != 8 && codes && codes->shape.size() == 2 &&
                       codes->shape[1] == S * P_;
    layer_ = quant::pack_layer(bc, static_cast<int>(group_), P_, depthwise, unpad ? cin_ : 0);
    if (unpad && layer_.K == S * cin_) P_ = cin_;
    if (layer_.K != S * P_)
      fail("ERR_SHAPE_MISMATCH", where_ + ": weight codes have K = " + std::to_string(layer_.K) + " columns but kernel_shape " +
                                     shape_str(attrs_.kernel) + " and padded_channels " + std::to_string(P_) + " give K = " +
                                     std::to_string(S * P_));
    bias_ = quant::constant_bias(bc, 3, layer_.Co);
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "X");
    if (in_nhwc_ && x->dtype == DType::U8) {
      if (act_config_.dynamic || P_ != cin_)
        fail("ERR_DTYPE", where_ + ": a uint8 input needs act_mode \"static\" and padded_channels equal to in_channels");
    } else {
      require_dtype(node_, x, "input X", DType::F32);
    }
    if (static_cast<int>(x->shape.size()) != nd_ + 2)
      fail("ERR_SHAPE_MISMATCH", where_ + ": input " + shape_str(x->shape) + " must have rank " + std::to_string(nd_ + 2) + " for kernel_shape " +
                                     shape_str(attrs_.kernel));
    const int64_t channels = in_nhwc_ ? x->shape.back() : x->shape[1];
    if (channels != group_ * cin_)
      fail("ERR_SHAPE_MISMATCH", where_ + ": input " + shape_str(x->shape) + " has " + std::to_string(channels) + " channels but group " +
                                     std::to_string(group_) + " * in_channels " + std::to_string(cin_) + " = " + std::to_string(group_ * cin_));
    const Window3 geom = window(*x);
    quant::check_bias(node_, optional_input(in, 3), layer_.Co);
    Shape y{x->shape[0]};
    if (!out_nhwc_) y.push_back(layer_.Co);
    for (int i = 3 - nd_; i < 3; ++i) y.push_back(geom.out[i]);
    if (out_nhwc_) y.push_back(layer_.Co);
    const Tensor* r = optional_input(in, 4);
    if (r && r->dtype == DType::U8) {
      // Codes the producer quantized with this node's residual parameters (integer chaining).
      if (!res_quant_ || !out_nhwc_) fail("ERR_DTYPE", where_ + ": a uint8 residual needs residual_scale and output_layout \"nhwc\"");
      if (r->shape != y) fail("ERR_SHAPE_MISMATCH", where_ + ": residual " + shape_str(r->shape) + " must have the output shape " + shape_str(y));
    } else {
      check_residual(node_, r, y);
    }
    checked_int(geom.out_size(), node_, "output pixels");
    shape_size(Shape{geom.in_size(), group_ * P_});
    shape_size(y);
    out.resize(node_.outputs.size());
    out[0].dtype = out_quant_ ? DType::U8 : DType::F32;
    out[0].shape = y;
    if (out.size() > 1) {
      out[1].dtype = DType::F32;
      out[1].shape = y;
    }
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const Tensor* b = optional_input(in, 3);
    const Tensor* r = optional_input(in, 4);
    Tensor& y = *out[0];
    if (y.size() == 0) return;
    const Window3 geom = window(x);
    const int64_t N = x.shape[0], Co = layer_.Co, Mg = layer_.rows_per_group();
    const int64_t K = layer_.K, in_plane = geom.in_size(), OP = geom.out_size();
    const bool in_u8 = in_nhwc_ && x.dtype == DType::U8;
    const float* X = in_u8 ? nullptr : x.ptr<float>();
    const float* bias = !bias_.empty() ? bias_.data() : b ? b->ptr<float>() : nullptr;
    Residual R;
    R.q = res_params_;
    if (r && r->dtype == DType::U8) {
      R.u8 = r->ptr<uint8_t>();
    } else if (r && res_quant_) {
      // A float32 residual to quantize: its codes, then their values, once for the whole tensor
      // (the unchained form; chained, the producer stores the codes: same values, bit for bit).
      const int64_t n = r->size();
      uint8_t* codes = static_cast<uint8_t*>(ctx.scratch(static_cast<size_t>(n)));
      float* values = static_cast<float*>(ctx.scratch(static_cast<size_t>(n) * sizeof(float)));
      parallel_ranges(ctx.gemm, n, 4096, [&](int64_t i0, int64_t i1) {
        quant::quantize_span(ctx.gemm.table, r->ptr<float>() + i0, codes + i0, i1 - i0, res_params_);
        quant::dequantize_span(codes + i0, values + i0, i1 - i0, res_params_);
      });
      R.f32 = values;
    } else if (r) {
      R.f32 = r->ptr<float>();
    }

    const quant::ActParams aq = in_u8 ? act_config_.fixed : quant::act_params(act_config_, ctx.gemm, X, x.size());
    const uint8_t zp = static_cast<uint8_t>(aq.zero_point);
    const float* scales = quant::run_scales(layer_, aq.scale, ctx);
    const bool relu_in_gemm = act_.relu_only() && !R.present();
    const Activation post = relu_in_gemm ? Activation{} : act_;
    // The kernels store the next layer's uint8 input themselves (no fp32 result and no store
    // pass) when only that form is wanted, with an activation they apply as a clamp after the
    // residual, and no residual or one of uint8 codes their epilogue adds (post_residual).
    float bounds[2] = {-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity()};
    const bool clamp_only = post.kind == Activation::None || post.as_clamp(bounds);
    const bool residual_ok = !R.present() || (R.u8 && layer_.table->post_residual && !layer_.depthwise);
    const bool direct = out_nhwc_ && out_quant_ && !out_f32_ && residual_ok && layer_.table->post_quant && clamp_only;
    const quant::StoreQuant sq{bounds[0], bounds[1], out_params_, res_params_};

    const bool pointwise = geom.is_pointwise();
    const size_t ld = static_cast<size_t>(group_ * P_);  // bytes per pixel of the staged image
    // On a table with the segment GEMMs, a window's kernel rows are read in place (an implicit
    // im2col) where each kernel row is one span whose length keeps quads whole.
    const int64_t seg_len = P_ * geom.k[2], seg_count = geom.k[0] * geom.k[1];
    const bool segments = !pointwise && !layer_.depthwise && group_ == 1 &&
                          (layer_.kind == quant::WeightKind::Q8 ? layer_.table->q8_gemm_segs != nullptr : layer_.table->lowbit_gemm_segs != nullptr) &&
                          kernel_rows_are_spans(ld, P_, geom) && seg_len % 4 == 0;
    const int threads = thread_count(ctx.gemm);
    // Batches: with at least as many images as threads (and no uneven tail worth mentioning),
    // each thread takes whole images on its own: no join per layer step, which on small images
    // costs more than the work it splits. Otherwise one image at a time with all threads.
    const bool by_image = threads > 1 && N >= threads && (N % threads == 0 || N >= 4 * threads);
    const int slots = by_image ? threads : 1;
    const int inner = by_image ? 1 : threads;
    // Pixels per chunk: the uint8 im2col block within ~512 KB and the fp32 GEMM result within
    // ~256 KB (so the store reads it back from cache: a small-K 1x1 conv would otherwise write
    // its whole fp32 output to memory first), enough rows for every thread.
    int64_t rows = std::min((int64_t(1) << 19) / std::max<int64_t>(K, 1), (int64_t(1) << 18) / (4 * std::max<int64_t>(Mg, 1)));
    if (layer_.depthwise) rows = (int64_t(1) << 18) / (4 * Co);
    rows = std::max<int64_t>(rows, 48 * inner);
    rows = std::min(std::max<int64_t>(rows, 64), OP);
    const int64_t taps = geom.k_size();
    std::vector<ImageBuffers> bufs(static_cast<size_t>(slots));
    for (ImageBuffers& b : bufs) {
      b.staged = in_u8 ? nullptr : static_cast<uint8_t*>(ctx.scratch(static_cast<size_t>(in_plane) * ld));
      b.cbuf = static_cast<float*>(ctx.scratch(static_cast<size_t>(rows * (layer_.depthwise ? Co : Mg)) * sizeof(float)));
      if (layer_.depthwise) {
        b.ptrs = static_cast<const uint8_t**>(ctx.scratch(static_cast<size_t>(rows * taps) * sizeof(const uint8_t*)));
        b.pad = static_cast<uint8_t*>(ctx.scratch(static_cast<size_t>(Co)));
        std::memset(b.pad, zp, static_cast<size_t>(Co));
      } else if (!pointwise) {
        b.col = static_cast<uint8_t*>(ctx.scratch(static_cast<size_t>(rows * K)));  // with segments: edge rows only
        if (segments) {
          b.ptrs = static_cast<const uint8_t**>(ctx.scratch(static_cast<size_t>(rows * seg_count) * sizeof(const uint8_t*)));
          b.pad = static_cast<uint8_t*>(ctx.scratch(static_cast<size_t>(seg_len)));
          std::memset(b.pad, zp, static_cast<size_t>(seg_len));
        }
      }
    }
    const ImageJob job{x,  geom, in_u8, X,  R,    bias, aq, zp, scales, relu_in_gemm, post, pointwise, ld, rows, direct ? &sq : nullptr,
                       segments, seg_count, seg_len};
    if (!by_image) {
      for (int64_t n = 0; n < N; ++n) run_image(job, ctx.gemm, n, bufs[0], out);
      return;
    }
    GemmContext one = ctx.gemm;
    one.pool = nullptr;
    one.threads = 1;
    ctx.gemm.pool->parallel_for(slots, threads, [&](int i) {
      for (int64_t n = N * i / slots; n < N * (i + 1) / slots; ++n) run_image(job, one, n, bufs[static_cast<size_t>(i)], out);
    });
  }

  // Codes and weight parameters are packed at build; a constant bias is copied.
  size_t weight_bytes() const override { return layer_.bytes + (bias_.size() + layer_.channel_scale.size()) * sizeof(float); }
  bool keeps_copy_of(size_t input) const override {
    return input == 1 || input == 2 || input == 5 || input == 6 || (input == 3 && !bias_.empty());
  }

 private:
  // Scratch of one image's work (one set per thread when threads take whole images).
  struct ImageBuffers {
    uint8_t* staged = nullptr;  // the image quantized pixel-major (fp32 inputs)
    uint8_t* col = nullptr;     // im2col rows of a chunk of output pixels
    float* cbuf = nullptr;      // the GEMM's fp32 result of that chunk
    const uint8_t** ptrs = nullptr;  // depthwise: tap pointers of the chunk's pixels; segments: kernel rows
    uint8_t* pad = nullptr;          // depthwise: a pixel of zero points; segments: a kernel row of them
  };
  // What every image of one run shares.
  struct ImageJob {
    const Tensor& x;
    Window3 geom;
    bool in_u8;
    const float* X;
    Residual R;
    const float* bias;
    quant::ActParams aq;
    uint8_t zp;
    const float* scales;
    bool relu_in_gemm;
    Activation post;
    bool pointwise;
    size_t ld;
    int64_t rows;
    const quant::StoreQuant* direct;  // the kernels write the uint8 output (null: fp32 + store)
    bool segments;                    // A as kernel-row segments (q8_gemm_segs), not im2col rows
    int64_t seg_count, seg_len;
  };

  // Image n: staged (unless uint8 already), then chunks of output pixels through im2col (or the
  // image itself for a pointwise conv), the GEMM and the store; gc's threads split the work.
  void run_image(const ImageJob& j, const GemmContext& gc, int64_t n, const ImageBuffers& bufs, std::vector<Tensor*>& out) {
    Tensor& y = *out[0];
    const Window3& geom = j.geom;
    const int64_t Co = layer_.Co, Mg = layer_.rows_per_group(), C = group_ * cin_;
    const int64_t K = layer_.K, in_plane = geom.in_size(), OP = geom.out_size();
    const int threads = thread_count(gc);
    const size_t ld = j.ld;
    const int64_t rows = j.rows;
    const uint8_t zp = j.zp;
    const Residual& R = j.R;
    uint8_t* col = bufs.col;
    float* cbuf = bufs.cbuf;
    const uint8_t* img = bufs.staged;
    if (j.in_u8) {
      img = j.x.ptr<uint8_t>() + n * in_plane * C;
    } else if (in_nhwc_) {
      const float* xn = j.X + n * in_plane * C;
      parallel_ranges(gc, in_plane, 64, [&](int64_t b0, int64_t b1) {
        stage_pixels_nhwc(gc.table, xn, group_, cin_, P_, j.aq, b0, b1, bufs.staged, ld);
      });
    } else {
      const float* xn = j.X + n * C * in_plane;
      parallel_ranges(gc, in_plane, 256, [&](int64_t b0, int64_t b1) {
        stage_pixels(gc.table, xn, group_, cin_, P_, in_plane, j.aq, b0, b1, bufs.staged, ld);
      });
    }
    if (layer_.depthwise) {
      run_depthwise(gc, geom, n, img, zp, j.scales, j.bias, j.relu_in_gemm, j.post, R, bufs, rows, out, j.direct);
      return;
    }
    for (int64_t g = 0; g < group_; ++g) {
      const uint8_t* img_g = img + g * P_;
      for (int64_t p0 = 0; p0 < OP; p0 += rows) {
        const int64_t p1 = std::min(OP, p0 + rows);
        // Where the GEMM writes chunk rows from b0: the uint8 output itself (j.direct), or cbuf.
        const size_t gemm_ld = static_cast<size_t>(j.direct ? Co : Mg);
        auto gemm_out = [&](int64_t b0) -> void* {
          if (j.direct) return y.ptr<uint8_t>() + (n * OP + p0 + b0) * Co + g * Mg;
          return cbuf + b0 * Mg;
        };
        // The residual codes the epilogue adds (direct only): laid out like the output.
        auto gemm_res = [&](int64_t b0) -> const uint8_t* {
          return j.direct && R.u8 ? R.u8 + (n * OP + p0 + b0) * Co + g * Mg : nullptr;
        };
        // Output rows [b0, b1) of this chunk from cbuf rows [b0, b1): residual, activation, store.
        auto store = [&](int64_t b0, int64_t b1) {
          if (out_nhwc_) {
            // Pixel-major: row p of cbuf is Mg contiguous channels of output pixel p0 + p.
            const int64_t at = (n * OP + p0 + b0) * Co + g * Mg;
            float* yf = out_quant_ ? (out_f32_ ? out[1]->ptr<float>() + at : nullptr) : y.ptr<float>() + at;
            store_pixels_nhwc(gc.table, cbuf + b0 * Mg, b1 - b0, Mg, R.at(at), j.post, yf, out_quant_ ? y.ptr<uint8_t>() + at : nullptr,
                              static_cast<size_t>(Co), out_params_);
          } else {
            const int64_t at = (n * Co + g * Mg) * OP + p0 + b0;
            store_pixels_to_planes(gc.table, cbuf + b0 * Mg, b1 - b0, Mg, static_cast<size_t>(Mg), y.ptr<float>() + at, static_cast<size_t>(OP),
                                   R.f32 ? R.f32 + at : nullptr, j.post);
          }
        };
        if (threads > 1 && p1 - p0 >= 64 * threads) {
          // Enough pixels: each thread takes a block of them through im2col, the GEMM (all
          // output channels, one thread) and the store, with one join instead of three and the
          // block's rows staying in that core's cache. (Few pixels: the GEMM splits channels.)
          GemmContext one = gc;
          one.pool = nullptr;
          one.threads = 1;
          parallel_ranges(gc, p1 - p0, 32, [&](int64_t b0, int64_t b1) {
            if (j.segments) {
              const uint8_t** segs = bufs.ptrs + b0 * j.seg_count;
              segment_pixels(img_g, P_, geom, p0 + b0, p0 + b1, zp, static_cast<const uint8_t*>(bufs.pad), col + b0 * K, static_cast<size_t>(K), segs);
              quant::run_group_gemm_segs(layer_, one, static_cast<int>(g), static_cast<int>(b1 - b0), static_cast<int>(j.seg_count),
                                         static_cast<int>(j.seg_len), segs, zp, j.scales, j.bias, j.relu_in_gemm, gemm_out(b0), gemm_ld, j.direct,
                                         gemm_res(b0));
              if (!j.direct) store(b0, b1);
              return;
            }
            const uint8_t* A = img_g + (p0 + b0) * ld;
            size_t lda = ld;
            if (!j.pointwise) {
              im2col_pixels(img_g, ld, P_, geom, p0 + b0, p0 + b1, zp, col + b0 * K, static_cast<size_t>(K));
              A = col + b0 * K;
              lda = static_cast<size_t>(K);
            }
            quant::run_group_gemm(layer_, one, static_cast<int>(g), static_cast<int>(b1 - b0), A, lda, zp, j.scales, j.bias, j.relu_in_gemm,
                                  gemm_out(b0), gemm_ld, j.direct, gemm_res(b0));
            if (!j.direct) store(b0, b1);
          });
          continue;
        }
        if (j.segments) {
          parallel_ranges(gc, p1 - p0, 32, [&](int64_t b0, int64_t b1) {
            segment_pixels(img_g, P_, geom, p0 + b0, p0 + b1, zp, static_cast<const uint8_t*>(bufs.pad), col + b0 * K, static_cast<size_t>(K),
                           bufs.ptrs + b0 * j.seg_count);
          });
          quant::run_group_gemm_segs(layer_, gc, static_cast<int>(g), static_cast<int>(p1 - p0), static_cast<int>(j.seg_count),
                                     static_cast<int>(j.seg_len), bufs.ptrs, zp, j.scales, j.bias, j.relu_in_gemm, gemm_out(0), gemm_ld, j.direct,
                                     gemm_res(0));
          if (!j.direct) parallel_ranges(gc, p1 - p0, 64, store);
          continue;
        }
        const uint8_t* A;
        size_t lda;
        if (j.pointwise) {
          A = img_g + p0 * ld;
          lda = ld;
        } else {
          parallel_ranges(gc, p1 - p0, 32, [&](int64_t b0, int64_t b1) {
            im2col_pixels(img_g, ld, P_, geom, p0 + b0, p0 + b1, zp, col + b0 * K, static_cast<size_t>(K));
          });
          A = col;
          lda = static_cast<size_t>(K);
        }
        quant::run_group_gemm(layer_, gc, static_cast<int>(g), static_cast<int>(p1 - p0), A, lda, zp, j.scales, j.bias,
                              j.relu_in_gemm, gemm_out(0), gemm_ld, j.direct, gemm_res(0));
        if (!j.direct) parallel_ranges(gc, p1 - p0, 64, store);
      }
    }
  }

  // Image n of a depthwise layer from its pixel-major uint8 image `img` ([in pixels][C]): chunks
  // of output pixels, each thread building the tap pointers of its pixels (padding taps point at
  // a row of the zero point), running table->dw_q8 into fp32 rows and storing them as the GEMM
  // path does. Same integers and the same epilogue as the per-channel GEMMs: bit-identical.
  void run_depthwise(const GemmContext& gc, const Window3& geom, int64_t n, const uint8_t* img, uint8_t zp, const float* scales,
                     const float* bias, bool relu, const Activation& post, const Residual& R, const ImageBuffers& bufs, int64_t rows,
                     std::vector<Tensor*>& out, const quant::StoreQuant* direct) {
    Tensor& y = *out[0];
    const int64_t C = layer_.Co, OP = geom.out_size(), taps = geom.k_size();
    const uint8_t** ptrs = bufs.ptrs;
    float* cbuf = bufs.cbuf;
    const uint8_t* pad = bufs.pad;
    kernels::Requant rq;
    rq.scale = scales;
    rq.bias = bias;
    rq.out = kernels::OutType::F32;
    rq.relu = relu;
    if (direct) quant::set_store_quant(rq, *direct);
    const TapPointers<uint8_t> tap_ptrs(geom, C);  // padding taps point at a row of the zero point
    for (int64_t p0 = 0; p0 < OP; p0 += rows) {
      const int64_t p1 = std::min(OP, p0 + rows);
      parallel_ranges(gc, p1 - p0, 16, [&](int64_t b0, int64_t b1) {
        tap_ptrs.fill_pixels(img, 0, PixelCursor(p0 + b0, geom), b1 - b0, pad, taps, ptrs + b0 * taps);  // pixels of this image
        // The uint8 output itself (direct), or cbuf for the store below; both C per pixel.
        void* dst = direct ? static_cast<void*>(y.ptr<uint8_t>() + (n * OP + p0 + b0) * C) : static_cast<void*>(cbuf + b0 * C);
        layer_.table->dw_q8(static_cast<int>(b1 - b0), static_cast<int>(C), static_cast<int>(taps), ptrs + b0 * taps, zp,
                            layer_.depthwise.get(), &rq, dst, static_cast<size_t>(C));
        if (direct) return;
        if (out_nhwc_) {
          const int64_t at = (n * OP + p0 + b0) * C;
          float* yf = out_quant_ ? (out_f32_ ? out[1]->ptr<float>() + at : nullptr) : y.ptr<float>() + at;
          store_pixels_nhwc(gc.table, cbuf + b0 * C, b1 - b0, C, R.at(at), post, yf, out_quant_ ? y.ptr<uint8_t>() + at : nullptr,
                            static_cast<size_t>(C), out_params_);
        } else {
          const int64_t at = n * C * OP + p0 + b0;
          store_pixels_to_planes(gc.table, cbuf + b0 * C, b1 - b0, C, static_cast<size_t>(C), y.ptr<float>() + at, static_cast<size_t>(OP),
                                 R.f32 ? R.f32 + at : nullptr, post);
        }
      });
    }
  }

  Window3 window(const Tensor& x) const {
    return resolve_window(node_, attrs_, x.shape.data() + (in_nhwc_ ? 1 : 2), nd_, attrs_.kernel);
  }

  bool read_layout(const char* key) const {
    const std::string v = node_.get_string(key, "nchw");
    if (v != "nchw" && v != "nhwc") fail("ERR_MODEL_FORMAT", where_ + ": " + key + " must be \"nchw\" or \"nhwc\", got \"" + v + "\"");
    return v == "nhwc";
  }

  NodeDesc node_;
  std::string where_;
  WindowAttrs attrs_;
  int nd_ = 2;
  int64_t group_ = 1, cin_ = 1, P_ = 1;
  Activation act_;
  quant::ActConfig act_config_;
  bool in_nhwc_ = false, out_nhwc_ = false, out_quant_ = false, out_f32_ = false;
  quant::ActParams out_params_;
  bool res_quant_ = false;    // the residual is quantized (residual_scale ...) before the add
  quant::ActParams res_params_;
  quant::PackedLayer layer_;
  std::vector<float> bias_;  // constant bias (empty: from input 3 at run time, or none)
};

std::unique_ptr<Op> make_qconv(const BuildContext& bc) { return std::make_unique<QConvOp>(bc); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(TernionQConv, ternion::exec::ops::make_qconv);
