// What the .tern reader returns and what the writer accepts besides the graph.
import type { Graph, StoredDataType } from '../ir';

/** The quantizer's settings and report, kept in the file for `ternion inspect` and provenance. */
export interface TernQuantizationInfo {
  /** quantize() options as resolved (the calibration data itself is summarized, not stored). */
  readonly options: Record<string, unknown>;
  /** quantize()'s report (non-finite numbers, if any, are stored as the strings "NaN", "Infinity", "-Infinity"). */
  readonly report: unknown;
}

export interface WriteTernOptions {
  quantization?: TernQuantizationInfo;
}

/** One entry of the section table, as read. */
export interface TernSection {
  readonly index: number;
  /** 'graph', 'tensor', or 'unknown' for a kind a later minor version added (skipped). */
  readonly kind: 'graph' | 'tensor' | 'unknown';
  readonly kindCode: number;
  readonly offset: number;
  readonly length: number;
  /** Tensor sections: element type and how the elements are stored. */
  readonly dtype?: StoredDataType;
  readonly encoding?: 'raw' | 'packed2' | 'packed4';
  readonly elementCount?: number;
  /** Tensor sections: the tensor's name (from the graph JSON). */
  readonly name?: string;
}

export interface TernModel {
  /** The graph as saved; raw float32 / int32 / ... tensors may view the file's bytes (no copy). */
  readonly graph: Graph;
  /** The file's format version. */
  readonly version: { readonly major: number; readonly minor: number };
  /** What wrote the file. */
  readonly producer: { readonly name: string; readonly version: string };
  readonly quantization: TernQuantizationInfo | null;
  readonly sections: readonly TernSection[];
}
