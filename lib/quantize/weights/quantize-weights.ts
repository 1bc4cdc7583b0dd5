// quantizeWeights: one layer's fp32 weights to FGQ codes and scales, in the kernels' layout.
// Steps: validate -> row layout (layout.ts) -> per-group codes and scales (ternary.ts, int4.ts)
// or per-row int8 (int8.ts) -> optional folding (folded.ts) -> report (stats.ts).
// Pure and deterministic: the same weights and options give the same bytes.
import { TernionError, invalidArgument, oneOf } from '../../errors';
import { dequantize, dequantizeRows } from './dequantize';
import { foldLayer } from './folded';
import { channelMultiple, GroupCursor, groupScheme, type GroupScheme } from './groups';
import { quantizeInt4Group } from './int4';
import { INT8_MAX, INT8_REDUCED_MAX, quantizeInt8Rows } from './int8';
import { checkWeightDims, gemmLayout, toGemmRows, type GemmLayout } from './layout';
import { DEFAULT_TERNARY_TOLERANCE, detectInRows } from './pre-ternarized';
import { layerStats } from './stats';
import { TernaryGroupQuantizer } from './ternary';
import type { FoldedWeights, GroupScaledWeights, Int8Weights, QuantizedWeights, WeightQuantOptions } from './types';

const OPTION_NAMES = ['bits', 'groupSize', 'grouping', 'threshold', 'asymmetric', 'form', 'clipping', 'preTernarized', 'tolerance', 'reduceRange'];

// form stays undefined when not asked: layerForm picks it once the groups are known.
type ResolvedOptions = Required<Omit<WeightQuantOptions, 'asymmetric' | 'form'>> & { asymmetric: boolean | undefined; form: WeightQuantOptions['form'] };

function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object') throw invalidArgument('an options object', 'options', options);
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!OPTION_NAMES.includes(key)) throw new TernionError('ERR_INVALID_ARGUMENT', `Unknown option "${key}"; expected one of ${OPTION_NAMES.join(', ')}`);
  }
  const bits = oneOf(o.bits, [2, 4, 8] as const, 'options.bits', 2);
  const grouping = oneOf(o.grouping, ['channels', 'filters'] as const, 'options.grouping', 'channels');
  const groupSize = o.groupSize ?? 4;
  const sizeOk = typeof groupSize === 'number' ? Number.isInteger(groupSize) && groupSize >= 1 && groupSize <= 65536 : groupSize === 'filter' && grouping === 'channels';
  if (!sizeOk) {
    throw invalidArgument(grouping === 'filters' ? 'an integer in [1, 65536] (output channels per group)' : 'an integer in [1, 65536] or "filter"', 'options.groupSize', groupSize);
  }
  if (o.asymmetric !== undefined && typeof o.asymmetric !== 'boolean') throw invalidArgument('a boolean', 'options.asymmetric', o.asymmetric);
  if (o.asymmetric === true && bits !== 2) throw new TernionError('ERR_INVALID_ARGUMENT', 'Asymmetric scales apply to ternary weights (bits = 2) only');
  const tolerance = o.tolerance ?? DEFAULT_TERNARY_TOLERANCE;
  if (typeof tolerance !== 'number' || !(tolerance >= 0 && tolerance < 1)) throw invalidArgument('a number in [0, 1)', 'options.tolerance', tolerance);
  if (o.reduceRange !== undefined && typeof o.reduceRange !== 'boolean') throw invalidArgument('a boolean', 'options.reduceRange', o.reduceRange);
  return {
    bits,
    grouping,
    groupSize: groupSize as number | 'filter',
    threshold: oneOf(o.threshold, ['exact', 'twn'] as const, 'options.threshold', 'exact'),
    asymmetric: o.asymmetric as boolean | undefined,
    form: o.form === undefined ? undefined : oneOf(o.form, ['group-scaled', 'folded'] as const, 'options.form', 'folded'),
    clipping: oneOf(o.clipping, ['max', 'mse'] as const, 'options.clipping', 'max'),
    preTernarized: oneOf(o.preTernarized, ['auto', 'off'] as const, 'options.preTernarized', 'auto'),
    tolerance,
    reduceRange: (o.reduceRange as boolean | undefined) ?? false,
  };
}

/** Per-group codes and scales of a ternary or 4-bit layer (group-scaled form). */
function quantizeGroups(rows: Float32Array, scheme: GroupScheme, o: ResolvedOptions) {
  const { layout, slotsPerRow } = scheme;
  const codes = new Int8Array(layout.rows * layout.K);
  const scalePos = new Float32Array(layout.rows * slotsPerRow);
  let asym = false, lossless = false;
  let ternary: TernaryGroupQuantizer | null = null;
  if (o.bits === 2) {
    let tolerance: number | null = o.preTernarized === 'auto' ? o.tolerance : null;
    asym = o.asymmetric ?? false;
    if (tolerance !== null) {
      const found = detectInRows(rows, scheme, tolerance);
      if (found.preTernarized && (!found.asymmetric || o.asymmetric !== false)) {
        lossless = true;
        asym = asym || found.asymmetric;
      }
    }
    ternary = new TernaryGroupQuantizer(scheme.maxGroupLength, { threshold: o.threshold, asymmetric: asym, losslessTolerance: tolerance });
  }
  const scaleNeg = asym ? new Float32Array(layout.rows * slotsPerRow) : null;
  const cursor = new GroupCursor(scheme);
  while (cursor.next()) {
    let pos: number, neg: number;
    if (ternary) {
      ternary.quantize(rows, cursor.start, cursor.length, codes);
      pos = Math.fround(ternary.alphaPos);
      neg = Math.fround(ternary.alphaNeg);
    } else {
      pos = neg = quantizeInt4Group(rows, cursor.start, cursor.length, codes, o.clipping);
    }
    for (let r = cursor.row; r < cursor.row + cursor.rowCount; r++) {
      scalePos[r * slotsPerRow + cursor.slot] = pos;
      if (scaleNeg) scaleNeg[r * slotsPerRow + cursor.slot] = neg;
    }
  }
  return { codes, scalePos, scaleNeg, asym, lossless };
}

/** Adds the report and dequantized() to a quantized layer (shared with the data-aware quantizer). */
export function finish<T extends QuantizedWeights>(layer: Omit<T, 'stats' | 'dequantized'>, rows: Float32Array, scheme: GroupScheme, lossless: boolean): T {
  const full = layer as T;
  full.dequantized = () => dequantize(full);
  full.stats = layerStats({
    scheme, bits: full.bits, form: full.form, asym: full.asym, weights: rows,
    reconstructed: dequantizeRows(full), codes: full.codes, lossless,
  });
  return full;
}

/**
 * The form a ternary / 4-bit layer takes when none is asked: folded for ternary (2 + 8/N bits
 * per weight, and it runs as int8: as fast or faster than group-scaled at every N, measured,
 * with the same accuracy), group-scaled for 4-bit (its fp32 scales keep the batched GEMM on the
 * 4-bit code loop, faster on AVX2 than the expanded int8 one) and for groups packed losslessly
 * from pre-ternarized weights (folding would round their scales).
 */
export function layerForm(form: 'group-scaled' | 'folded' | undefined, bits: 2 | 4, lossless: boolean): 'group-scaled' | 'folded' {
  return form ?? (bits === 2 && !lossless ? 'folded' : 'group-scaled');
}

/**
 * Quantizes one layer's weights. `weights` are output-channel major with `dims`
 * [Co, Cin, ...spatial] (Conv [Co][Ci/group][Kh][Kw], Gemm with transB = 1 [Co][Ci]; see
 * layout.ts for the GEMM row layout of the result and transposeToOutputMajor for [Ci][Co]).
 */
export function quantizeWeights(weights: Float32Array, dims: readonly number[], options?: WeightQuantOptions): QuantizedWeights {
  checkWeightDims(weights, dims);
  const o = resolveOptions(options);
  const multiple = o.bits === 8 ? 1 : channelMultiple(o.grouping, o.groupSize);
  const layout: GemmLayout = gemmLayout(dims, multiple);
  const rows = toGemmRows(weights, layout);
  const { K } = layout;

  if (o.bits === 8) {
    const scheme = groupScheme(layout, 'channels', 'filter');
    const codes = new Int8Array(layout.rows * K);
    const channelScale = new Float32Array(layout.rows);
    quantizeInt8Rows(rows, layout.rows, K, codes, channelScale, o.reduceRange ? INT8_REDUCED_MAX : INT8_MAX);
    return finish<Int8Weights>({ bits: 8, form: 'per-channel', rows: layout.rows, K, G: K, asym: false, codes, layout, channelScale }, rows, scheme, false);
  }

  const scheme = groupScheme(layout, o.grouping, o.groupSize);
  const bits = o.bits;
  const g = quantizeGroups(rows, scheme, o);
  const common = { bits, rows: layout.rows, K, G: scheme.G, asym: g.asym, codes: g.codes, layout };
  if (layerForm(o.form, bits, g.lossless) === 'folded') {
    const f = foldLayer(rows, g.codes, layout.rows, K, scheme.G, bits, g.asym, o.reduceRange);
    return finish<FoldedWeights>({ ...common, form: 'folded', multPos: f.multPos, multNeg: f.multNeg, channelScale: f.channelScale }, rows, scheme, false);
  }
  return finish<GroupScaledWeights>({ ...common, form: 'group-scaled', scalePos: g.scalePos, scaleNeg: g.scaleNeg }, rows, scheme, g.lossless);
}
