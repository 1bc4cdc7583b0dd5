// Timing of one async run, repeated: with the `benchmark` package (benchmark.js) when it can be
// required (npm run bench always has it: a devDependency), else a plain loop with the same
// stopping rule, so `ternion bench` also works where only ternion is installed. Both take at
// least `minSamples` timed runs, then stop once the runs after those exceed `maxTime` seconds;
// both report every run's time and the median.

export interface TimingOptions {
  /** Timed runs at least (default 3). */
  minSamples?: number;
  /** Seconds of runs after the first minSamples (default 2). */
  maxTime?: number;
  /** 'benchmark' requires benchmark.js (an error without it), 'loop' never uses it, 'auto' (default) prefers it. */
  timer?: 'auto' | 'benchmark' | 'loop';
}

export interface Timing {
  /** Seconds per run, in the order measured. */
  samples: number[];
  median: number;
  /** 'benchmark.js 2.1.4' or 'loop'. */
  timer: string;
}

interface BenchmarkInstance {
  on(event: 'complete', fn: () => void): void;
  run(options: { async: boolean }): void;
  stats: { sample: number[] };
}
type BenchmarkConstructor = new (name: string, options: Record<string, unknown>) => BenchmarkInstance;

function loadBenchmark(): { Benchmark: BenchmarkConstructor; version: string } | null {
  for (const base of [process.cwd(), __dirname]) {
    try {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const Benchmark = require(require.resolve('benchmark', { paths: [base] })) as BenchmarkConstructor;
      const version = (require(require.resolve('benchmark/package.json', { paths: [base] })) as { version: string }).version;
      /* eslint-enable @typescript-eslint/no-require-imports */
      return { Benchmark, version };
    } catch {
      // next base
    }
  }
  return null;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function withBenchmark(B: BenchmarkConstructor, fn: () => Promise<unknown>, minSamples: number, maxTime: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    let failure: unknown;
    const bench = new B('run', {
      defer: true,
      // benchmark.js adds a run's time to its maxTime budget only once minSamples are in.
      minSamples,
      maxTime,
      fn: (deferred: { resolve(): void }) => {
        fn().then(
          () => deferred.resolve(),
          (e) => {
            failure ??= e ?? new Error('run failed');
            deferred.resolve();
          },
        );
      },
    });
    bench.on('complete', () => (failure !== undefined ? reject(failure) : resolve([...bench.stats.sample])));
    bench.run({ async: true });
  });
}

async function withLoop(fn: () => Promise<unknown>, minSamples: number, maxTime: number): Promise<number[]> {
  const samples: number[] = [];
  let extra = 0;
  for (;;) {
    const t = process.hrtime.bigint();
    await fn();
    const s = Number(process.hrtime.bigint() - t) / 1e9;
    samples.push(s);
    if (samples.length >= minSamples && (extra += s) > maxTime) return samples;
  }
}

/** Times `fn` (one run; call it once before, to warm up) and returns every run's time and the median. */
export async function timeRuns(fn: () => Promise<unknown>, options: TimingOptions = {}): Promise<Timing> {
  const minSamples = options.minSamples ?? 3;
  const maxTime = options.maxTime ?? 2;
  const which = options.timer ?? 'auto';
  const b = which === 'loop' ? null : loadBenchmark();
  if (which === 'benchmark' && !b) throw new Error('the benchmark package could not be required (npm install benchmark)');
  const samples = b ? await withBenchmark(b.Benchmark, fn, minSamples, maxTime) : await withLoop(fn, minSamples, maxTime);
  return { samples, median: median(samples), timer: b ? `benchmark.js ${b.version}` : 'loop' };
}
