// Typed reads of node attributes, with one error wording for a wrong or missing attribute.

import { TernionError } from '../errors';
import type { AttributeType, AttributeValue, ConstantTensor, Graph, Node } from './types';

interface AttributeValueTypes {
  float: number;
  int: number;
  string: string;
  tensor: ConstantTensor;
  floats: readonly number[];
  ints: readonly number[];
  strings: readonly string[];
  graph: Graph;
}
type ValueOf<T extends AttributeType> = AttributeValueTypes[T];

function read<T extends AttributeType>(node: Node, name: string, type: T): ValueOf<T> | undefined {
  const attribute = node.attributes[name];
  if (attribute === undefined) return undefined;
  if (attribute.type !== type) {
    throw new TernionError(
      'ERR_MODEL_FORMAT',
      `Expected attribute "${name}" of node "${node.name}" (${node.opType}) to be of type ${type} but it is of type ${attribute.type}`,
    );
  }
  return attribute.value as ValueOf<T>;
}

function required<V>(node: Node, name: string, value: V | undefined): V {
  if (value === undefined) {
    throw new TernionError('ERR_MODEL_FORMAT', `Node "${node.name}" (${node.opType}) is missing its required attribute "${name}"`);
  }
  return value;
}

export function hasAttribute(node: Node, name: string): boolean {
  return node.attributes[name] !== undefined;
}

export function intAttribute(node: Node, name: string, fallback: number): number;
export function intAttribute(node: Node, name: string): number;
export function intAttribute(node: Node, name: string, fallback?: number): number {
  return read(node, name, 'int') ?? required(node, name, fallback);
}

export function floatAttribute(node: Node, name: string, fallback: number): number;
export function floatAttribute(node: Node, name: string): number;
export function floatAttribute(node: Node, name: string, fallback?: number): number {
  return read(node, name, 'float') ?? required(node, name, fallback);
}

export function stringAttribute(node: Node, name: string, fallback: string): string;
export function stringAttribute(node: Node, name: string): string;
export function stringAttribute(node: Node, name: string, fallback?: string): string {
  return read(node, name, 'string') ?? required(node, name, fallback);
}

/** An ints attribute, or undefined when absent (callers pick defaults that depend on the rank). */
export function intsAttribute(node: Node, name: string): readonly number[] | undefined {
  return read(node, name, 'ints');
}

export function floatsAttribute(node: Node, name: string): readonly number[] | undefined {
  return read(node, name, 'floats');
}

export function stringsAttribute(node: Node, name: string): readonly string[] | undefined {
  return read(node, name, 'strings');
}

export function tensorAttribute(node: Node, name: string): ConstantTensor | undefined {
  return read(node, name, 'tensor');
}

/** A copy of the node with one attribute set (passes use it to record fusions). */
export function withAttributes(node: Node, extra: Record<string, AttributeValue>): Node {
  return { ...node, attributes: { ...node.attributes, ...extra } };
}
