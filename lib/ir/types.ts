// The IR: what onnx/ produces, what the passes transform, and what the native executor consumes.
// Everything here is plain data (no classes, no methods), so a graph can be cloned, compared in
// tests and serialized for the addon. Passes never mutate a graph: they return a new one.

import type { DataType, StoredDataType, TensorData } from './dtype';

/**
 * One dimension of a shape. A number is a known size (>= 0). A string is a size known only at
 * run time: either a name from the model (ONNX `dim_param`, e.g. "batch_size" or "N"), a name the
 * loader made up for an unnamed unknown dim ("unk__0", "unk__1", ...), or a product derived by
 * shape inference ("2*N", "N*seq"). Equal strings mean equal sizes.
 */
export type Dim = number | string;

/** Dimensions, outermost first. A scalar has shape []. */
export type Shape = readonly Dim[];

/** The static type of a tensor-valued edge. `shape` is undefined when even the rank is unknown. */
export interface ValueType {
  readonly dtype: DataType;
  readonly shape?: Shape;
}

/** A named edge of the graph with its type (graph inputs/outputs, inferred intermediate values). */
export interface ValueInfo extends ValueType {
  readonly name: string;
}

/**
 * A tensor whose contents are known when the model loads: an initializer, a Constant's value or
 * a tensor attribute. `dims` are all known. `data.length` equals the product of `dims`.
 * float16/bfloat16 data is stored as float32 (dtype 'float32'); bool as 0/1 bytes.
 */
export interface ConstantTensor {
  readonly name: string;
  readonly dtype: StoredDataType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

/**
 * A node attribute, tagged by its ONNX type. Integers are int64 in ONNX and JS numbers here:
 * values beyond ±2^53 (INT64_MAX used as "to the end" in Slice) are rounded, which keeps their
 * order, and that is all such sentinels need. A graph-valued attribute (an If branch, a Loop or
 * Scan body) is a Graph of its own: its inputs are the op's formal inputs (none for If) followed by
 * the outer values it reads, which the node lists as its last inputs (see ir/subgraphs.ts).
 */
export type AttributeValue =
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'int'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'tensor'; readonly value: ConstantTensor }
  | { readonly type: 'floats'; readonly value: readonly number[] }
  | { readonly type: 'ints'; readonly value: readonly number[] }
  | { readonly type: 'strings'; readonly value: readonly string[] }
  | { readonly type: 'graph'; readonly value: Graph };

export type AttributeType = AttributeValue['type'];

/** Attributes by name. Passes may add ternion's own (see FUSED_ATTRIBUTES in ops.ts). */
export type Attributes = Readonly<Record<string, AttributeValue>>;

/**
 * One operator application. Inputs and outputs are tensor names; the empty string marks an
 * optional input or output that is absent (ONNX convention), so positions keep their meaning.
 */
export interface Node {
  /** Unique within the graph; the loader names unnamed nodes "<OpType>_<index>". */
  readonly name: string;
  readonly opType: string;
  /** '' is the default ONNX domain (ai.onnx); 'ai.onnx' is normalized to ''. */
  readonly domain: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Attributes;
}

/**
 * A model's computation graph.
 *
 * Invariants (checked by validateGraph, kept by every pass):
 * - `nodes` are in topological order: every node input is a graph input, an initializer, or an
 *   output of an earlier node; the graph has no cycles.
 * - every tensor name is produced exactly once (by an input, an initializer or one node output).
 * - graph inputs never share a name with an initializer (initializers listed as inputs in old
 *   models are constants here, not overridable defaults).
 */
export interface Graph {
  readonly name: string;
  /** Imported opset version per domain: { '': 13 } for ai.onnx opset 13. */
  readonly opsets: Readonly<Record<string, number>>;
  /** Tensors fed at run time, in model order. */
  readonly inputs: readonly ValueInfo[];
  /** Tensors returned by a run, in model order. */
  readonly outputs: readonly ValueInfo[];
  /** Weights and other constants, by tensor name. */
  readonly initializers: ReadonlyMap<string, ConstantTensor>;
  /** Operators, topologically sorted. */
  readonly nodes: readonly Node[];
  /**
   * Types of intermediate tensors: those the model declares (ONNX value_info) and, after
   * inferShapes, every node output.
   */
  readonly valueInfo: ReadonlyMap<string, ValueType>;
  /** Provenance, for messages and the .tern file. */
  readonly metadata: GraphMetadata;
}

export interface GraphMetadata {
  readonly irVersion: number;
  readonly producerName: string;
  readonly producerVersion: string;
}
