// Which axis of each model input holds the samples. Most models take every input as [batch, ...],
// but a stateful model also takes values that are not per sample: a sample rate (a scalar), an
// RNN's state [layers, batch, hidden] whose batch is not its first dim. Calibration splits its
// data into runs along these axes and the benchmark builds its batches along them; an input
// without one is fed whole to every run.
import type { Shape, ValueInfo } from './types';

/** Per input name: the axis of its samples, or null when it is fed whole to every run. */
export type BatchAxes = ReadonlyMap<string, number | null>;

/** The symbol most inputs have as their first dim (the first such input wins a tie). */
function batchSymbol(inputs: readonly ValueInfo[]): string | undefined {
  const counts = new Map<string, number>();
  for (const i of inputs) {
    const d = i.shape?.[0];
    if (typeof d === 'string') counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  let best: string | undefined, most = 0;
  for (const [s, n] of counts) if (n > most) [best, most] = [s, n];
  return best;
}

/**
 * The batch axis of every input, from the declared shapes:
 * - the axis holding the symbol most inputs have as their first dim (the common case: dim 0;
 *   an RNN state's [2, batch, 128]); otherwise a symbolic first dim;
 * - an input with neither, a scalar among them, is not per sample (null) when some other input
 *   has a symbolic batch; when none has, the model has a fixed batch and dim 0 holds it;
 * - an input of unknown rank is taken as [batch, ...].
 */
export function batchAxes(inputs: readonly ValueInfo[]): BatchAxes {
  const symbol = batchSymbol(inputs);
  const axisOf = (shape: Shape | undefined): number | null => {
    if (!shape) return 0;
    const at = symbol === undefined ? -1 : shape.indexOf(symbol);
    if (at >= 0) return at;
    if (typeof shape[0] === 'string') return 0;
    if (symbol !== undefined || shape.length === 0) return null;
    return 0;
  };
  return new Map(inputs.map((i) => [i.name, axisOf(i.shape)]));
}

/**
 * batchAxes refined by data: an input the declared shapes leave without a batch axis, whose
 * symbolic dims are all unnamed elsewhere ([2, unk__10, 128] beside [unk__8, unk__9]), takes as
 * its batch the one symbolic dim whose size in `dims` is the other inputs' sample count.
 */
export function batchAxesOf(inputs: readonly ValueInfo[], dims: Readonly<Record<string, readonly number[]>>): BatchAxes {
  const axes = new Map(batchAxes(inputs));
  let count: number | undefined;
  for (const [name, axis] of axes) if (axis !== null && dims[name] && count === undefined) count = dims[name][axis];
  if (count === undefined) return axes;
  for (const input of inputs) {
    const d = dims[input.name];
    if (axes.get(input.name) !== null || !input.shape || !d || d.length !== input.shape.length) continue;
    const candidates = input.shape.flatMap((s, k) => (typeof s === 'string' && d[k] === count ? [k] : []));
    if (candidates.length === 1) axes.set(input.name, candidates[0]);
  }
  return axes;
}
