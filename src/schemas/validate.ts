// Turns ajv's errors into the hub's per-field errors, and validation into a thrown HubError.
import type { ErrorObject, ValidateFunction } from 'ajv';
import { HubError, type FieldError } from '../errors.ts';

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function toFieldErrors(errors: ErrorObject[] | null | undefined, root = ''): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    let field = root + e.instancePath;
    let message = e.message ?? 'is not valid';
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'required':
        field += `/${escapePointer(String(params.missingProperty))}`;
        message = 'is required';
        break;
      case 'additionalProperties':
        field += `/${escapePointer(String(params.additionalProperty))}`;
        message = 'is not a known field';
        break;
      case 'enum':
        message = `must be one of: ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      case 'type':
        message = `must be of type ${Array.isArray(params.type) ? params.type.join(' or ') : String(params.type)}`;
        break;
      case 'if':
        continue; // the failing branch reports its own errors
      case 'false schema':
        message = 'is not allowed here';
        break;
      case 'propertyNames':
        field += `/${escapePointer(String(params.propertyName))}`;
        message = 'is not an allowed name';
        break;
    }
    const key = `${field}|${e.keyword}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ field: field || '/', code: e.keyword, message });
  }
  return out;
}

/** Validates `value` or throws `validation_failed` with one entry per failing field. */
export function assertValid<T>(validate: ValidateFunction, value: unknown, what: string, root = ''): T {
  if (!validate(value)) {
    throw new HubError('validation_failed', `${what} is not valid`, { errors: toFieldErrors(validate.errors, root) });
  }
  return value as T;
}
