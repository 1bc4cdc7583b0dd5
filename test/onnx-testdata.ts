// Locating Debian's libonnx-testdata (ONNX's own conformance models) for tests. Missing test data
// is a loud failure, never a silent skip.

import * as fs from 'fs';
import * as path from 'path';
import { decodeTensorProto } from '../lib/onnx';
import type { ConstantTensor } from '../lib/ir/types';

export const ONNX_TESTDATA_ROOT = process.env.ONNX_TESTDATA_DIR ?? '/usr/share/libonnx-testdata/data';
export const INSTALL_HINT = 'ONNX test data not found: run `apt-get install -y libonnx-testdata` (or set ONNX_TESTDATA_DIR)';

/** The test data root, or an error telling how to install it. */
export function requireTestdataRoot(): string {
  if (!fs.existsSync(path.join(ONNX_TESTDATA_ROOT, 'node'))) throw new Error(`${INSTALL_HINT}; looked in ${ONNX_TESTDATA_ROOT}`);
  return ONNX_TESTDATA_ROOT;
}

/** Node-test folder names (test_conv_with_strides_padding, ...), sorted; [] when not installed. */
export function listNodeTests(): string[] {
  const dir = path.join(ONNX_TESTDATA_ROOT, 'node');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((name) => fs.existsSync(path.join(dir, name, 'model.onnx'))).sort();
}

export function nodeTestDir(name: string): string {
  return path.join(requireTestdataRoot(), 'node', name);
}

export function readModelBytes(testDir: string): Uint8Array {
  return new Uint8Array(fs.readFileSync(path.join(testDir, 'model.onnx')));
}

/** The tensors input_<i>.pb or output_<i>.pb of test_data_set_<set>, in index order. */
export function readTestTensors(testDir: string, kind: 'input' | 'output', set = 0): ConstantTensor[] {
  const dir = path.join(testDir, `test_data_set_${set}`);
  const tensors: ConstantTensor[] = [];
  for (let i = 0; fs.existsSync(path.join(dir, `${kind}_${i}.pb`)); i++) {
    tensors.push(decodeTensorProto(new Uint8Array(fs.readFileSync(path.join(dir, `${kind}_${i}.pb`)))));
  }
  return tensors;
}
