// Reads the graph section's JSON document (graph-document.ts) back into an IR graph, checking
// every field's type on the way: a file that passed its checksums but holds a malformed document
// (a buggy or hostile writer) gives ERR_MODEL_FORMAT naming the field, never a half-built graph.
// Keys this version does not know are ignored (a later minor version may add some).
import { TernionError } from '../errors';
import type { AttributeValue, ConstantTensor, DataType, Dim, Graph, GraphMetadata, Node, StoredDataType, ValueInfo, ValueType } from '../ir';
import { ELEMENT_TYPES } from './tern-layout';
import type { TensorRef } from './graph-document';
import type { TernQuantizationInfo } from './types';

/** Every IR DataType (the Record type makes the compiler keep this list complete). */
const DATA_TYPES: Readonly<Record<DataType, true>> = {
  float32: true, float64: true, float16: true, bfloat16: true, int8: true, uint8: true, int16: true, uint16: true,
  int32: true, uint32: true, int64: true, uint64: true, bool: true, string: true, complex64: true, complex128: true,
};

type Json = unknown;

function bad(where: string, what: string, got: Json): TernionError {
  let shown: string;
  try {
    shown = JSON.stringify(got) ?? String(got);
  } catch {
    shown = String(got);
  }
  if (shown.length > 60) shown = shown.slice(0, 57) + '...';
  return new TernionError('ERR_MODEL_FORMAT', `graph section: ${where} must be ${what}, got ${shown}`);
}

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function object(v: Json, where: string): Record<string, Json> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad(where, 'an object', v);
  return v as Record<string, Json>;
}

function field(o: Record<string, Json>, key: string, where: string): Json {
  if (!has(o, key)) throw new TernionError('ERR_MODEL_FORMAT', `graph section: ${where} has no "${key}"`);
  return o[key];
}

function array(v: Json, where: string): Json[] {
  if (!Array.isArray(v)) throw bad(where, 'an array', v);
  return v;
}

function string(v: Json, where: string): string {
  if (typeof v !== 'string') throw bad(where, 'a string', v);
  return v;
}

function integer(v: Json, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(where, 'an integer', v);
  return v;
}

function count(v: Json, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(where, 'a non-negative integer', v);
  return v;
}

function float(v: Json, where: string): number {
  if (typeof v === 'number') return v;
  switch (v) {
    case 'NaN': return NaN;
    case 'Infinity': return Infinity;
    case '-Infinity': return -Infinity;
    case '-0': return -0;
  }
  throw bad(where, 'a number (or "NaN", "Infinity", "-Infinity", "-0")', v);
}

/** Sets an own property even for names like "__proto__". */
function setOwn<T>(o: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function dataType(v: Json, where: string): DataType {
  if (typeof v !== 'string' || !has(DATA_TYPES, v)) throw bad(where, 'an element type name', v);
  return v as DataType;
}

function storedType(v: Json, where: string): StoredDataType {
  if (typeof v !== 'string' || !has(ELEMENT_TYPES, v)) throw bad(where, 'a stored element type name', v);
  return v as StoredDataType;
}

function valueType(o: Record<string, Json>, where: string): ValueType {
  const dtype = dataType(field(o, 'dtype', where), `${where}.dtype`);
  if (!has(o, 'shape')) return { dtype };
  const shape = array(o.shape, `${where}.shape`).map((d, i): Dim => (typeof d === 'string' ? d : count(d, `${where}.shape[${i}]`)));
  return { dtype, shape };
}

function valueInfo(v: Json, where: string): ValueInfo {
  const o = object(v, where);
  return { name: string(field(o, 'name', where), `${where}.name`), ...valueType(o, where) };
}

/** A TensorRef's fields, checked; the caller resolves it against the section table. */
export function tensorRef(v: Json, where: string): TensorRef {
  const o = object(v, where);
  return {
    name: string(field(o, 'name', where), `${where}.name`),
    dtype: storedType(field(o, 'dtype', where), `${where}.dtype`),
    dims: array(field(o, 'dims', where), `${where}.dims`).map((d, i) => count(d, `${where}.dims[${i}]`)),
    section: count(field(o, 'section', where), `${where}.section`),
  };
}

export type ResolveTensor = (ref: TensorRef, where: string) => ConstantTensor;

/** What every graph of a document shares: the tensor resolver and the top-level opsets and metadata. */
interface BodyScope {
  resolve: ResolveTensor;
  opsets: Record<string, number>;
  metadata: GraphMetadata;
}

function attribute(v: Json, where: string, scope: BodyScope): AttributeValue {
  const o = object(v, where);
  const type = field(o, 'type', where);
  const value = field(o, 'value', where);
  const at = `${where}.value`;
  switch (type) {
    case 'float': return { type, value: float(value, at) };
    case 'floats': return { type, value: array(value, at).map((x, i) => float(x, `${at}[${i}]`)) };
    case 'int': return { type, value: integer(value, at) };
    case 'ints': return { type, value: array(value, at).map((x, i) => integer(x, `${at}[${i}]`)) };
    case 'string': return { type, value: string(value, at) };
    case 'strings': return { type, value: array(value, at).map((x, i) => string(x, `${at}[${i}]`)) };
    case 'tensor': return { type, value: scope.resolve(tensorRef(value, at), at) };
    case 'graph': return { type, value: body(object(value, at), at, scope) };
  }
  throw bad(`${where}.type`, 'an attribute type (float, floats, int, ints, string, strings, tensor, graph)', type);
}

function node(v: Json, where: string, scope: BodyScope): Node {
  const o = object(v, where);
  const names = (key: string): string[] => array(field(o, key, where), `${where}.${key}`).map((s, i) => string(s, `${where}.${key}[${i}]`));
  const attrs = object(field(o, 'attributes', where), `${where}.attributes`);
  const attributes: Record<string, AttributeValue> = {};
  for (const [k, a] of Object.entries(attrs)) setOwn(attributes, k, attribute(a, `${where}.attributes.${k}`, scope));
  return {
    name: string(field(o, 'name', where), `${where}.name`),
    opType: string(field(o, 'opType', where), `${where}.opType`),
    domain: string(field(o, 'domain', where), `${where}.domain`),
    inputs: names('inputs'),
    outputs: names('outputs'),
    attributes,
  };
}

/** A graph's own parts (the top-level graph, or a subgraph in an attribute) at `where`. */
function body(g: Record<string, Json>, where: string, scope: BodyScope): Graph {
  const values = (key: string): ValueInfo[] => array(field(g, key, where), `${where}.${key}`).map((v, i) => valueInfo(v, `${where}.${key}[${i}]`));
  const inputs = values('inputs');
  const outputs = values('outputs');

  const initializers = new Map<string, ConstantTensor>();
  array(field(g, 'initializers', where), `${where}.initializers`).forEach((v, i) => {
    const at = `${where}.initializers[${i}]`;
    const t = scope.resolve(tensorRef(v, at), at);
    if (initializers.has(t.name)) throw new TernionError('ERR_MODEL_FORMAT', `graph section: initializer "${t.name}" is listed twice in ${where}`);
    initializers.set(t.name, t);
  });

  const nodes = array(field(g, 'nodes', where), `${where}.nodes`).map((v, i) => node(v, `${where}.nodes[${i}]`, scope));

  const valueInfoMap = new Map<string, ValueType>();
  array(field(g, 'valueInfo', where), `${where}.valueInfo`).forEach((v, i) => {
    const { name, ...type } = valueInfo(v, `${where}.valueInfo[${i}]`);
    if (valueInfoMap.has(name)) throw new TernionError('ERR_MODEL_FORMAT', `graph section: ${where}.valueInfo lists "${name}" twice`);
    valueInfoMap.set(name, type);
  });
  const name = string(field(g, 'name', where), `${where}.name`);
  return { name, opsets: scope.opsets, inputs, outputs, initializers, nodes, valueInfo: valueInfoMap, metadata: scope.metadata };
}

export interface ParsedDocument {
  graph: Graph;
  producer: { name: string; version: string };
  quantization: TernQuantizationInfo | null;
}

/** The graph of a parsed graph-section document; tensor data comes from `resolve`. */
export function parseGraphDocument(doc: Json, resolve: ResolveTensor): ParsedDocument {
  const root = object(doc, 'the document');
  const p = object(field(root, 'producer', 'the document'), 'producer');
  const producer = { name: string(field(p, 'name', 'producer'), 'producer.name'), version: string(field(p, 'version', 'producer'), 'producer.version') };
  const g = object(field(root, 'graph', 'the document'), 'graph');

  const opsetsDoc = object(field(g, 'opsets', 'graph'), 'graph.opsets');
  const opsets: Record<string, number> = {};
  for (const [domain, version] of Object.entries(opsetsDoc)) setOwn(opsets, domain, count(version, `graph.opsets[${JSON.stringify(domain)}]`));

  const m = object(field(g, 'metadata', 'graph'), 'graph.metadata');
  const metadata = {
    irVersion: integer(field(m, 'irVersion', 'graph.metadata'), 'graph.metadata.irVersion'),
    producerName: string(field(m, 'producerName', 'graph.metadata'), 'graph.metadata.producerName'),
    producerVersion: string(field(m, 'producerVersion', 'graph.metadata'), 'graph.metadata.producerVersion'),
  };

  const graph: Graph = body(g, 'graph', { resolve, opsets, metadata });
  let quantization: TernQuantizationInfo | null = null;
  const q = has(root, 'quantization') ? root.quantization : null;
  if (q !== null) {
    const qo = object(q, 'quantization');
    quantization = { options: object(field(qo, 'options', 'quantization'), 'quantization.options'), report: field(qo, 'report', 'quantization') };
  }

  return { graph, producer, quantization };
}
