// How a step says "this value cannot be made" without throwing or allocating on the success path: it returns BAD
// and leaves its reason here, where the compiled mapping picks it up when it builds the record's error.

/** Returned by a coercion or transform that cannot handle its input; steps pass it through untouched. */
export const BAD: unique symbol = Symbol('mapping.bad');
/** A path went through a value of the wrong shape (a text where an object was needed). */
export const SHAPE: unique symbol = Symbol('mapping.shape');

let lastCode = 'coercion_failed';
let lastMessage = 'cannot be converted';

/** Records why a value failed and returns BAD, so a step can `return reject(...)`. */
export function reject(code: string, message: string): typeof BAD {
  lastCode = code;
  lastMessage = message;
  return BAD;
}

export function lastReason(): { code: string; message: string } {
  return { code: lastCode, message: lastMessage };
}

/** A short description of a value for error messages: never the whole value, never more than 60 characters. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string': {
      const text = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
      return `the text ${text}`;
    }
    case 'number':
    case 'boolean':
      return `the ${typeof value} ${String(value)}`;
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}
