import { describe, expect, it } from 'vitest';
import { ajv, BUILT_IN_SCHEMAS, validatorFor } from './registry.ts';

describe('the built-in schemas', () => {
  it('are each valid against the JSON Schema 2020-12 meta-schema, and compile in strict mode', () => {
    expect(BUILT_IN_SCHEMAS.length).toBeGreaterThan(50);
    for (const schema of BUILT_IN_SCHEMAS) {
      const id = schema.$id as string;
      const valid = ajv.validateSchema(schema);
      expect({ id, valid, errors: ajv.errors ?? null }).toEqual({ id, valid: true, errors: null });
      expect(typeof validatorFor(id)).toBe('function');
    }
  });

  it('would catch a schema that breaks the meta-schema', () => {
    expect(ajv.validateSchema({ type: 'object', properties: { a: { type: 'strnig' } } })).toBe(false);
    expect(ajv.validateSchema({ type: 'object', required: 'a' })).toBe(false);
  });
});
