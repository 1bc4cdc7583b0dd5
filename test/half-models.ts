// A float32 ONNX model rewritten in float16, as onnxconverter-common's float16 converter writes
// the `model_fp16.onnx` files published beside fp32 ones (keep_io_types off): every float
// initializer, Constant and ConstantOfShape value, graph input, output and value info becomes
// float16, every Cast to float a Cast to float16; constants are clamped to the half range
// (+-65504), as the converter clamps them.
import { ModelProtoType } from '../lib/onnx/proto';
import { numberToFloat16Bits } from '../lib/onnx/half-float';

const FLOAT = 1, FLOAT16 = 10;
const HALF_MAX = 65504;

interface TensorObject { data_type: number; dims?: number[]; float_data?: number[]; raw_data?: Uint8Array }
interface TypeObject { tensor_type?: { elem_type: number } }
interface AttributeObject { name: string; t?: TensorObject; i?: number | { toNumber(): number } }
interface NodeObject { op_type: string; attribute?: AttributeObject[] }
interface GraphObject {
  node: NodeObject[];
  initializer: TensorObject[];
  input: { type?: TypeObject }[];
  output: { type?: TypeObject }[];
  value_info?: { type?: TypeObject }[];
}

function toHalfTensor(t: TensorObject): void {
  if (t.data_type !== FLOAT) return;
  let values: Float32Array;
  if (t.float_data && t.float_data.length > 0) values = Float32Array.from(t.float_data);
  else if (t.raw_data) values = new Float32Array(t.raw_data.buffer.slice(t.raw_data.byteOffset, t.raw_data.byteOffset + t.raw_data.byteLength));
  else values = new Float32Array(0);
  const bits = Uint16Array.from(values, (v) => numberToFloat16Bits(Math.max(-HALF_MAX, Math.min(HALF_MAX, v))));
  t.data_type = FLOAT16;
  delete t.float_data;
  t.raw_data = new Uint8Array(bits.buffer);
}

function toHalfType(type: TypeObject | undefined): void {
  if (type?.tensor_type && type.tensor_type.elem_type === FLOAT) type.tensor_type.elem_type = FLOAT16;
}

export function toFloat16Model(bytes: Uint8Array): Uint8Array {
  const model = ModelProtoType.toObject(ModelProtoType.decode(bytes), { defaults: false }) as { graph: GraphObject };
  const g = model.graph;
  g.initializer.forEach(toHalfTensor);
  for (const v of [...g.input, ...g.output, ...(g.value_info ?? [])]) toHalfType(v.type);
  for (const n of g.node) {
    for (const a of n.attribute ?? []) {
      if (a.t && (n.op_type === 'Constant' || n.op_type === 'ConstantOfShape')) toHalfTensor(a.t);
      const to = typeof a.i === 'object' ? a.i.toNumber() : a.i;
      if (n.op_type === 'Cast' && a.name === 'to' && to === FLOAT) a.i = FLOAT16;
    }
  }
  return ModelProtoType.encode(ModelProtoType.fromObject(model)).finish();
}
