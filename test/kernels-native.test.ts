// Runs the native kernel tests (native/tests/kernel_tests.cc): every kernel set this CPU supports
// against the scalar reference, bit-exact, on odd sizes, all group sizes and forms, 1 and 2
// threads. One vitest case per kernel set and kind so a failure names both.
import { beforeAll, describe, expect, it } from 'vitest';
import { buildKernelTests, runProgram } from './native-build';

let exe = '';
beforeAll(async () => {
  exe = await buildKernelTests();
}, 600_000);

async function listed(): Promise<{ name: string; supported: boolean }[]> {
  return (await runProgram(exe, ['--list'])).out
    .trim()
    .split('\n')
    .map((l) => ({ name: l.split(' ')[0], supported: l.endsWith(' supported') }));
}

const run = (args: string[]) => runProgram(exe, args);

describe('native kernels', () => {
  it('dispatch reports scalar last and every table it offers runs here', async () => {
    const r = await run(['--kind', 'dispatch']);
    expect(r.out).toMatch(/PASS dispatch: tables here:.* scalar;/);
    expect(r.code).toBe(0);
  });

  it('2-bit and 4-bit code packing round-trips and rejects bad codes', async () => {
    const r = await run(['--kind', 'pack']);
    expect(r.out).toMatch(/PASS pack: \d+ cases, 0 failed/);
    expect(r.code).toBe(0);
  });

  it('x86-64 builds carry the AVX2, AVX-512 VNNI and AVX-VNNI tables', async () => {
    const names = (await listed()).map((t) => t.name);
    if (process.arch === 'x64') expect(names).toEqual(['avx512vnni', 'avxvnni', 'avx2', 'scalar']);
    else expect(names.at(-1)).toBe('scalar');
  });

  for (const kind of ['f32', 'q8', 'lowbit', 'dw', 'dw_f32', 'quant', 'threads']) {
    it(`${kind}: every supported kernel set matches scalar`, async (ctx) => {
      const tables = (await listed()).filter((t) => t.supported && (kind === 'threads' || t.name !== 'scalar'));
      if (tables.length === 0) ctx.skip();
      for (const t of tables) {
        const r = await run(['--isa', t.name, '--kind', kind]);
        expect(r.out, r.out).toMatch(new RegExp(`PASS ${kind} ${t.name}: \\d+ cases, 0 failed`));
        expect(r.code, r.out).toBe(0);
      }
    });
  }

  // The optional segment GEMMs (an implicit im2col): the tables that have them against their
  // gathered-row forms, bit for bit; on x86-64 the AVX-512 table has all three.
  for (const kind of ['f32_segs', 'q8_segs', 'lowbit_segs']) {
    it(`${kind}: the tables that have it match their gathered-row GEMM`, async (ctx) => {
      const tables = (await listed()).filter((t) => t.supported && t.name !== 'scalar');
      if (tables.length === 0) ctx.skip();
      let tested = 0;
      for (const t of tables) {
        const r = await run(['--isa', t.name, '--kind', kind]);
        expect(r.code, r.out).toBe(0);
        if (r.out.includes(`${kind} ${t.name}:`)) {
          expect(r.out, r.out).toMatch(new RegExp(`PASS ${kind} ${t.name}: \\d+ cases, 0 failed`));
          tested++;
        }
      }
      if (tables.some((t) => t.name === 'avx512vnni')) expect(tested).toBeGreaterThan(0);
    });
  }
});
