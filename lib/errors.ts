// One error class with a stable `code`, and the one table of codes (documented in the README).
// Users branch on `err.code`; the message names the offending value.

export const ErrorCodes = {
  ERR_INVALID_ARGUMENT: 'An argument has the wrong type or an out-of-range value.',
  ERR_DTYPE: 'A tensor has a data type that is not supported here.',
  ERR_SHAPE_MISMATCH: 'Tensor dims do not match the data length or the expected shape.',
  ERR_NATIVE_LOAD: 'The native addon could not be loaded (missing, or built for another Node ABI or CPU).',
  ERR_MODEL_FORMAT: 'A model file is corrupt, truncated, or of an unsupported format version.',
  ERR_UNSUPPORTED_OP: 'The model uses an operator (or an attribute of one) that ternion does not implement.',
  ERR_INPUT_NAME: 'A feed names an input the model does not have, or misses one it needs.',
  ERR_OUTPUT_NAME: 'A run asks for an output the model does not have.',
  ERR_SESSION_RELEASED: 'The session was released; create a new one.',
  ERR_ABORTED: 'The operation was cancelled through its AbortSignal.',
  ERR_INTERNAL: 'An internal invariant failed; please report it with the model that caused it.',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class TernionError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TernionError';
    this.code = code;
  }
}

/** Describe a received value for an error message: "0 of type number", "[Array of length 3]". */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as unknown as { length?: number }).length ?? value.byteLength}`;
  if (typeof value === 'string') return `"${value.length > 60 ? value.slice(0, 57) + '...' : value}" of type string`;
  if (typeof value === 'object') return `an object of type ${value.constructor?.name ?? 'Object'}`;
  return `${String(value)} of type ${typeof value}`;
}

/** An option that must be one of `allowed` (undefined: `fallback`), named in the error otherwise. */
export function oneOf<T>(value: unknown, allowed: readonly T[], name: string, fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw invalidArgument(`one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, name, value);
  return value as T;
}

/**
 * Throws when `signal` has fired: its reason if that is an Error (other than a plain
 * AbortError), else ERR_ABORTED saying `what` was aborted.
 */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'The operation'): void {
  if (!signal?.aborted) return;
  const reason = signal.reason;
  throw reason instanceof Error && reason.name !== 'AbortError' ? reason : new TernionError('ERR_ABORTED', `${what} was aborted`, { cause: reason });
}

/** The one formatter for bad arguments: "Expected <what> for <name> but received <v>". */
export function invalidArgument(what: string, name: string, value: unknown, code: ErrorCode = 'ERR_INVALID_ARGUMENT'): TernionError {
  return new TernionError(code, `Expected ${what} for ${name} but received ${describe(value)}`);
}
