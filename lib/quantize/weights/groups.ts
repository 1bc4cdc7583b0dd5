// Which weights share a scale (fgq.md section 2), as contiguous runs of the GEMM row layout
// (layout.ts), and how those runs map onto the kernels' uniform groups of G columns.
//
//  - grouping 'channels', N a number (the default): a group is N consecutive input channels at
//    one (co, kh, kw). The layout pads each (kh, kw) run to a multiple of N, so G = N and the
//    group in scale slot j of row co starts at column j * N; its real length is N, or shorter
//    for the last group of a run (the method's short group), followed by zero codes.
//  - grouping 'channels', N = 'filter': one group per output channel (all Cin * S weights),
//    G = K, no padding: the coarse TWN-like baseline.
//  - grouping 'filters' (paper v1, arXiv 1701.08978): N whole output channels share one scale.
//    The kernels have no cross-row groups, so this maps to one group per row (G = K, no padding)
//    whose scale is the same number replicated over the N rows of a block; the block's weights
//    are contiguous in the layout (rows are), so it is quantized as one run of N * K weights.
//    The last block holds the remaining rows when N does not divide Co.
import type { GemmLayout } from './layout';

export type Grouping = 'channels' | 'filters';
/** N: weights per group along input channels, or 'filter' (a whole output channel). */
export type GroupSize = number | 'filter';

export interface GroupScheme {
  readonly grouping: Grouping;
  readonly groupSize: GroupSize;
  readonly layout: GemmLayout;
  /** Kernel group size: columns per scale slot, a divisor of K. */
  readonly G: number;
  /** Scale slots per row: K / G. */
  readonly slotsPerRow: number;
  /** Groups of the method (distinct scale parameters, counting one side of an asymmetric pair). */
  readonly groupCount: number;
  /** Longest run of real weights in one group (sizes scratch buffers). */
  readonly maxGroupLength: number;
}

/** How much the layout must pad each (kh, kw) run of input channels for this grouping. */
export function channelMultiple(grouping: Grouping, groupSize: GroupSize): number {
  return grouping === 'channels' && typeof groupSize === 'number' ? groupSize : 1;
}

export function groupScheme(layout: GemmLayout, grouping: Grouping, groupSize: GroupSize): GroupScheme {
  const { rows, K } = layout;
  if (grouping === 'filters') {
    const n = groupSize as number;
    return { grouping, groupSize, layout, G: K, slotsPerRow: 1, groupCount: Math.ceil(rows / n), maxGroupLength: Math.min(n, rows) * K };
  }
  if (groupSize === 'filter') {
    return { grouping, groupSize, layout, G: K, slotsPerRow: 1, groupCount: rows, maxGroupLength: K };
  }
  const slotsPerRow = K / groupSize;
  return { grouping, groupSize, layout, G: groupSize, slotsPerRow, groupCount: rows * slotsPerRow, maxGroupLength: groupSize };
}

/**
 * Walks the groups of a scheme in a fixed order (row by row, then column): no callbacks, no
 * allocation per group. After next() returns true, the group is the real weights
 * [start, start + length) of the row-layout buffer (zero-padding excluded), and its scale
 * goes to slot `slot` of rows [row, row + rowCount).
 */
export class GroupCursor {
  start = 0;
  length = 0;
  row = 0;
  rowCount = 1;
  slot = 0;
  private index = -1;
  private readonly filters: boolean;
  private readonly wholeRow: boolean;
  private readonly blockRows: number;

  constructor(private readonly scheme: GroupScheme) {
    this.filters = scheme.grouping === 'filters';
    this.wholeRow = scheme.groupSize === 'filter';
    this.blockRows = this.filters ? (scheme.groupSize as number) : 1;
  }

  next(): boolean {
    const s = this.scheme;
    const { K, rows, inputChannels, paddedInputChannels } = s.layout;
    if (++this.index >= s.groupCount) return false;
    if (this.filters) {
      this.row = this.index * this.blockRows;
      this.rowCount = Math.min(this.blockRows, rows - this.row);
      this.start = this.row * K;
      this.length = this.rowCount * K;
      this.slot = 0;
    } else if (this.wholeRow) {
      this.row = this.index;
      this.start = this.index * K;
      this.length = K;
    } else {
      const G = s.G;
      this.row = Math.floor(this.index / s.slotsPerRow);
      this.slot = this.index - this.row * s.slotsPerRow;
      this.start = this.index * G;
      const channel = (this.slot * G) % paddedInputChannels;
      this.length = Math.min(G, inputChannels - channel);
    }
    return true;
  }
}
