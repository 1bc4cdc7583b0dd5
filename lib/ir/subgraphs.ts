// Control flow in the IR: If branches and Loop / Scan bodies are graphs held in node attributes.
//
// A subgraph reads outer values by name in ONNX; here those reads are explicit. The node lists
// the outer values its subgraphs read ("captures") as its last inputs, the integer attribute
// `captures` counts them, and every subgraph of the node ends its inputs with one input per
// capture, bound by position. So every pass sees a capture as an ordinary input of the node (dead
// code, renaming and topological order need nothing special), and the executor hands a subgraph
// its captures like any other inputs. Outer constants are copied into the subgraphs instead
// (sinkConstantCaptures), where they fold and pack like the subgraph's own.

import { TernionError } from '../errors';
import { toNumberArray } from './dtype';
import type { AttributeValue, ConstantTensor, Graph, Node, ValueInfo } from './types';

/** Ops that hold subgraphs, with the attribute names of their graphs. */
export const CONTROL_FLOW_OPS: Readonly<Record<string, readonly string[]>> = {
  If: ['then_branch', 'else_branch'],
  Loop: ['body'],
  Scan: ['body'],
};

export function isControlFlow(node: Node): boolean {
  return node.domain === '' && CONTROL_FLOW_OPS[node.opType] !== undefined;
}

/** The node's subgraphs by attribute name (none for other ops). */
export function subgraphsOf(node: Node): [string, Graph][] {
  const found: [string, Graph][] = [];
  for (const [name, a] of Object.entries(node.attributes)) if (a.type === 'graph') found.push([name, a.value]);
  return found;
}

/** How many of the node's last inputs are outer values its subgraphs read. */
export function captureCount(node: Node): number {
  const a = node.attributes.captures;
  return a !== undefined && a.type === 'int' ? a.value : 0;
}

/** The node with each subgraph replaced by fn(subgraph, attribute name); the same node when none changes. */
export function mapNodeSubgraphs(node: Node, fn: (graph: Graph, attribute: string) => Graph): Node {
  let changed = false;
  const attributes: Record<string, AttributeValue> = { ...node.attributes };
  for (const [name, sub] of subgraphsOf(node)) {
    const next = fn(sub, name);
    if (next !== sub) changed = true;
    attributes[name] = { type: 'graph', value: next };
  }
  return changed ? { ...node, attributes } : node;
}

/** The graph with fn applied to the subgraphs of each of its control-flow nodes (one level). */
export function mapSubgraphs(graph: Graph, fn: (sub: Graph, node: Node, attribute: string) => Graph): Graph {
  if (!graph.nodes.some((n) => subgraphsOf(n).length > 0)) return graph;
  const nodes = graph.nodes.map((node) => mapNodeSubgraphs(node, (sub, attribute) => fn(sub, node, attribute)));
  return nodes.every((n, i) => n === graph.nodes[i]) ? graph : { ...graph, nodes };
}

/** True when the graph or any subgraph, at any depth, holds a node for which `test` holds. */
export function someNodeDeep(graph: Graph, test: (node: Node) => boolean): boolean {
  return graph.nodes.some((n) => test(n) || subgraphsOf(n).some(([, sub]) => someNodeDeep(sub, test)));
}

/**
 * Captures that are constants of the outer graph become initializers of the subgraphs (and stop
 * being inputs of the node), at every depth. Run after constant folding: a value computed from
 * shapes often becomes constant then.
 */
export function sinkConstantCaptures(graph: Graph): Graph {
  let changed = false;
  const nodes = graph.nodes.map((node) => {
    const count = captureCount(node);
    if (count === 0 || !isControlFlow(node)) return node;
    const first = node.inputs.length - count;
    const sunk = new Set<number>();
    for (let i = first; i < node.inputs.length; i++) if (graph.initializers.has(node.inputs[i])) sunk.add(i - first);
    if (sunk.size === 0) return node;
    changed = true;
    const attributes: Record<string, AttributeValue> = { ...node.attributes, captures: { type: 'int', value: count - sunk.size } };
    for (const [name, sub] of subgraphsOf(node)) {
      const subFirst = sub.inputs.length - count;
      const initializers = new Map(sub.initializers);
      const inputs: ValueInfo[] = sub.inputs.slice(0, subFirst);
      sub.inputs.slice(subFirst).forEach((input, k) => {
        if (!sunk.has(k)) return void inputs.push(input);
        const tensor = graph.initializers.get(node.inputs[first + k]) as ConstantTensor;
        initializers.set(input.name, { ...tensor, name: input.name });
      });
      attributes[name] = { type: 'graph', value: { ...sub, inputs, initializers } };
    }
    const inputs = node.inputs.filter((_, i) => i < first || !sunk.has(i - first));
    return { ...node, inputs, attributes };
  });
  const result = changed ? { ...graph, nodes } : graph;
  return mapSubgraphs(result, (sub) => sinkConstantCaptures(sub));
}

/**
 * An If whose condition is a constant becomes the nodes of the branch it takes: its values and
 * nodes renamed under the If's name (they must not collide with the outer graph's), its captures
 * read from the outer values directly, its outputs produced under the If's output names.
 */
export function inlineConstantIfs(graph: Graph): Graph {
  const index = graph.nodes.findIndex((n) => n.opType === 'If' && n.domain === '' && graph.initializers.has(n.inputs[0]));
  if (index < 0) return graph;
  const node = graph.nodes[index];
  const cond = graph.initializers.get(node.inputs[0]) as ConstantTensor;
  if (cond.data.length !== 1) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `If node "${node.name}": its condition must hold one element, not ${cond.data.length}`);
  }
  const taken = toNumberArray(cond.data)[0] !== 0;
  const branchAttr = node.attributes[taken ? 'then_branch' : 'else_branch'];
  if (branchAttr === undefined || branchAttr.type !== 'graph') {
    throw new TernionError('ERR_MODEL_FORMAT', `If node "${node.name}" has no ${taken ? 'then_branch' : 'else_branch'} graph`);
  }
  const branch = branchAttr.value;
  if (branch.outputs.length !== node.outputs.length) {
    throw new TernionError('ERR_MODEL_FORMAT', `If node "${node.name}" has ${node.outputs.length} outputs but its ${taken ? 'then' : 'else'} branch ${branch.outputs.length}`);
  }
  const count = captureCount(node);
  const rename = new Map<string, string>();
  branch.inputs.forEach((input, k) => rename.set(input.name, node.inputs[node.inputs.length - count + k]));
  const fresh = (name: string): string => `${node.name}/${name}`;
  const initializers = new Map(graph.initializers);
  for (const [name, tensor] of branch.initializers) {
    rename.set(name, fresh(name));
    initializers.set(fresh(name), { ...tensor, name: fresh(name) });
  }
  // The branch's outputs take the If's output names where a branch node produces them.
  const outputOf = new Map<string, string>();
  branch.outputs.forEach((o, i) => {
    if (!rename.has(o.name) && !outputOf.has(o.name) && node.outputs[i] !== '') outputOf.set(o.name, node.outputs[i]);
  });
  for (const n of branch.nodes) for (const o of n.outputs) if (o !== '') rename.set(o, outputOf.get(o) ?? fresh(o));
  const mapName = (name: string): string => (name === '' ? '' : rename.get(name) ?? name);
  const inlined: Node[] = branch.nodes.map((n) => ({ ...n, name: fresh(n.name), inputs: n.inputs.map(mapName), outputs: n.outputs.map(mapName) }));
  // Outputs that are a capture, a constant or a second copy of another output: an Identity each.
  branch.outputs.forEach((o, i) => {
    if (node.outputs[i] === '' || mapName(o.name) === node.outputs[i]) return;
    inlined.push({ name: fresh(`output_${i}`), opType: 'Identity', domain: '', inputs: [mapName(o.name)], outputs: [node.outputs[i]], attributes: {} });
  });
  const valueInfo = new Map(graph.valueInfo);
  for (const [name, type] of branch.valueInfo) if (rename.has(name) && !node.outputs.includes(rename.get(name) as string)) valueInfo.set(mapName(name), type);
  const nodes = [...graph.nodes.slice(0, index), ...inlined, ...graph.nodes.slice(index + 1)];
  return inlineConstantIfs({ ...graph, nodes, initializers, valueInfo });
}
