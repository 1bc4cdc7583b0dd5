#!/usr/bin/env node
// Prints the README's conformance table from build/conformance-summary.json (written by
// test/conformance.test.ts): per op, the ONNX node tests passed, failed and unsupported.
'use strict';
const summary = require('../build/conformance-summary.json');
const rows = Object.entries(summary).filter(([, v]) => v.passed.length + v.failed.length + (v.diverged ?? []).length > 0);
let p = 0, f = 0, u = 0;
console.log('| op | passed | failed | rejected at load |\n|---|---|---|---|');
for (const [op, v] of rows) {
  console.log(`| ${op} | ${v.passed.length} | ${v.failed.length} | ${v.unsupported.length} |`);
  p += v.passed.length; f += v.failed.length; u += v.unsupported.length;
}
const diverged = Object.values(summary).flatMap((v) => v.diverged ?? []);
const other = Object.values(summary).filter((v) => v.passed.length + v.failed.length + (v.diverged ?? []).length === 0).reduce((a, v) => a + v.unsupported.length, 0);
console.log(`| **all supported ops** | **${p}** | **${f}** | **${u}** |`);
console.log(`\n${other} further node tests use ops outside ternion's set (control flow, sequences, training losses, ...) and are rejected at load with ERR_UNSUPPORTED_OP, or only element types it does not hold (bfloat16, double, 16-bit integer and string cases: ERR_DTYPE).`);
if (diverged.length > 0) {
  console.log(`\nFollowing onnxruntime where the spec is ambiguous (counted in no column above): ${diverged.join(', ')} (test/conformance.test.ts, FOLLOWS_ONNXRUNTIME, says why).`);
}
