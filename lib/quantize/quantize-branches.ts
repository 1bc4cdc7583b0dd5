// Layers inside If branches: a model that takes one path per sample rate or input size (Silero
// VAD's 16 kHz and 8 kHz encoders) holds its convolutions there. A branch is a graph of its own
// whose inputs are the outer values it reads (ir/subgraphs.ts), so it is quantized by quantize()
// as a model, calibrated on those values in the calibration batches that take it, and put back
// in its If. The If still chooses at run time: a branch no calibration batch took stays float32
// (correct for the inputs that take it, only not quantized), as do Loop and Scan bodies, whose
// values change from one iteration to the next.
import type { Graph, Node } from '../ir';
import { mapNodeSubgraphs, someNodeDeep, subgraphsOf } from '../ir/subgraphs';
import type { Tensor } from '../tensor';
import type { CalibrationFeeds } from './calibration-data';

/** Bytes of captured values kept per branch: past it, a branch calibrates on the batches before. */
const BRANCH_CALIBRATION_BYTES = 256 << 20;

const isLayer = (n: Node) => n.domain === '' && (n.opType === 'Conv' || n.opType === 'Gemm' || n.opType === 'MatMul');

/** Names of the weight layers that control-flow subgraphs hold, at any depth. */
export function layersInSubgraphs(graph: Graph): string[] {
  const names: string[] = [];
  const visit = (g: Graph, nested: boolean): void => {
    for (const node of g.nodes) {
      if (nested && isLayer(node)) names.push(node.name);
      for (const [, sub] of subgraphsOf(node)) visit(sub, true);
    }
  };
  visit(graph, false);
  return names;
}

/** What quantizing one branch gives back: the branch quantized, its layers' reports, its warnings. */
export interface QuantizedBranch<R> {
  graph: Graph;
  report: R;
}

export interface BranchesResult<R> {
  graph: Graph;
  /** Per quantized branch: where it is ("If node 'x', then_branch") and its result. */
  branches: { where: string; report: R }[];
  /** Branches that could not be quantized (left float32), with the reason. */
  failed: { where: string; message: string }[];
}

/**
 * The If nodes of a graph whose branches hold layers: `names` are the tensors to fetch in the
 * calibration pass (each If's condition and captured values), `collect` files each batch's
 * values under the branch it takes, and `quantize` then quantizes every branch taken.
 */
export class IfBranches {
  private readonly ifs: Node[];
  private readonly taken = new Map<string, CalibrationFeeds[]>(); // "node/attribute" -> input records
  private readonly bytes = new Map<string, number>();
  readonly names: string[];

  /** `budget`: bytes of captured values kept per branch (past it, the batches before serve). */
  constructor(graph: Graph, private readonly budget = BRANCH_CALIBRATION_BYTES) {
    // (Constants an If reads were moved into its branches by optimizeGraph; one that was not
    // cannot be fetched as a run's output, so its If is left as it is.)
    this.ifs = graph.nodes.filter((n) => n.domain === '' && n.opType === 'If' && subgraphsOf(n).some(([, g]) => someNodeDeep(g, isLayer)) &&
      !n.inputs.some((x) => graph.initializers.has(x)));
    this.names = [...new Set(this.ifs.flatMap((n) => n.inputs.filter((x) => x !== '')))];
  }

  /** Files one calibration batch's values (`names`, fetched from the fp32 graph). */
  collect(values: ReadonlyMap<string, Tensor>): void {
    for (const node of this.ifs) {
      const cond = values.get(node.inputs[0])!;
      const attribute = (cond.data as ArrayLike<number | bigint>)[0] ? 'then_branch' : 'else_branch';
      const branch = subgraphsOf(node).find(([a]) => a === attribute)?.[1];
      if (!branch) continue;
      // If has no formal inputs: the branch's inputs are its captures, bound to node.inputs[1..].
      const record: Record<string, Tensor> = {};
      branch.inputs.forEach((input, i) => (record[input.name] = values.get(node.inputs[1 + i])!));
      const key = `${node.name}/${attribute}`;
      // The captures may be large activations, kept until the branch is quantized: a budget.
      const size = Object.values(record).reduce((n, t) => n + t.data.byteLength, 0);
      if (!this.taken.has(key)) this.taken.set(key, []);
      if (this.taken.get(key)!.length > 0 && (this.bytes.get(key) ?? 0) + size > this.budget) continue;
      this.bytes.set(key, (this.bytes.get(key) ?? 0) + size);
      this.taken.get(key)!.push(record);
    }
  }

  /** `quantized` (the top-level graph, quantized; the same If nodes) with the taken branches quantized. */
  async quantize<R>(
    quantized: Graph,
    quantizeBranch: (branch: Graph, batches: CalibrationFeeds[], where: string) => Promise<QuantizedBranch<R>>,
  ): Promise<BranchesResult<R>> {
    const branches: { where: string; report: R }[] = [];
    const failed: { where: string; message: string }[] = [];
    const replaced = new Map<string, Node>();
    for (const node of quantized.nodes) {
      if (!this.ifs.some((n) => n.name === node.name)) continue;
      const done = new Map<string, Graph>();
      for (const [attribute, branch] of subgraphsOf(node)) {
        const batches = this.taken.get(`${node.name}/${attribute}`);
        if (!batches?.length || !someNodeDeep(branch, isLayer)) continue;
        const where = `If node '${node.name}', ${attribute}`;
        let q: QuantizedBranch<R>;
        try {
          q = await quantizeBranch(branch, batches, where);
        } catch (e) {
          // A branch that cannot be quantized (values it reads that do not split into samples,
          // say) stays float32: the model as a whole still quantizes. A cancel is a cancel.
          if ((e as { code?: string }).code === 'ERR_ABORTED' || (e as Error).name === 'AbortError') throw e;
          failed.push({ where, message: (e as Error).message });
          continue;
        }
        // Bound by position to the If's inputs: the quantized branch must keep them, and its outputs.
        const same = (a: readonly { name: string }[], b: readonly { name: string }[]) => a.length === b.length && a.every((v, i) => v.name === b[i].name);
        if (!same(q.graph.inputs, branch.inputs) || !same(q.graph.outputs, branch.outputs)) continue;
        done.set(attribute, { ...q.graph, name: branch.name });
        branches.push({ where, report: q.report });
      }
      if (done.size) replaced.set(node.name, mapNodeSubgraphs(node, (sub, attribute) => done.get(attribute) ?? sub));
    }
    if (replaced.size === 0) return { graph: quantized, branches, failed };
    return { graph: { ...quantized, nodes: quantized.nodes.map((n) => replaced.get(n.name) ?? n) }, branches, failed };
  }
}
