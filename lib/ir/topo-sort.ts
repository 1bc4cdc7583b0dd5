// Topological order of nodes (Kahn's algorithm), with the errors a malformed graph deserves:
// a tensor produced twice, an input nobody produces, a cycle.

import { TernionError } from '../errors';
import type { Node } from './types';

function formatError(message: string): TernionError {
  return new TernionError('ERR_MODEL_FORMAT', message);
}

/**
 * Sort `nodes` so every node comes after the producers of its inputs. `available` are the names
 * that exist before any node runs (graph inputs and initializers). Stable: independent nodes keep
 * their original order.
 */
export function topologicalSort(nodes: readonly Node[], available: ReadonlySet<string>): Node[] {
  const producerIndex = new Map<string, number>();
  nodes.forEach((node, index) => {
    for (const output of node.outputs) {
      if (output === '') continue;
      if (available.has(output)) throw formatError(`Node "${node.name}" (${node.opType}) writes tensor "${output}", which is already a graph input or initializer`);
      const previous = producerIndex.get(output);
      if (previous !== undefined) {
        throw formatError(`Tensor "${output}" is produced by two nodes: "${nodes[previous].name}" and "${node.name}"`);
      }
      producerIndex.set(output, index);
    }
  });

  const pending = new Array<number>(nodes.length).fill(0);
  const dependents: number[][] = nodes.map(() => []);
  nodes.forEach((node, index) => {
    for (const input of new Set(node.inputs)) {
      if (input === '' || available.has(input)) continue;
      const producer = producerIndex.get(input);
      if (producer === undefined) {
        throw formatError(`Node "${node.name}" (${node.opType}) reads tensor "${input}", which is not a graph input, an initializer or any node's output`);
      }
      pending[index]++;
      dependents[producer].push(index);
    }
  });

  // Among ready nodes the lowest original index goes first, so a sorted list stays as it is.
  const ready = nodes.map((_, i) => i).filter((i) => pending[i] === 0);
  const order: Node[] = [];
  while (ready.length > 0) {
    const index = ready.shift() as number;
    order.push(nodes[index]);
    let added = false;
    for (const next of dependents[index]) {
      if (--pending[next] === 0) {
        ready.push(next);
        added = true;
      }
    }
    if (added) ready.sort((a, b) => a - b);
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.filter((_, i) => pending[i] > 0).map((n) => `"${n.name}"`);
    throw formatError(`The graph has a cycle through nodes ${stuck.slice(0, 5).join(', ')}${stuck.length > 5 ? ', ...' : ''}`);
  }
  return order;
}
