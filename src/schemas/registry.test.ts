import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ajv, BUILT_IN_SCHEMAS, characterLength, validatorFor } from './registry.ts';

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

describe('string lengths', () => {
  // Ajv as it comes, counting every string: the hub's shortcut must give the same verdicts and the same errors.
  const stock = new Ajv2020({ allErrors: true, strict: true });
  const pieces = fc.constantFrom('a', 'é', '😀', '\ud83d', '\ude00', '漢', ' ');

  it('counts characters as Ajv does: an astral character is one, a lone surrogate is one', () => {
    expect(characterLength('')).toBe(0);
    expect(characterLength('abc')).toBe(3);
    expect(characterLength('😀😀')).toBe(2);
    expect(characterLength('a\ud83d')).toBe(2);
    expect(characterLength('\ude00\ud83d')).toBe(2);
  });

  it('judges maxLength and minLength exactly as Ajv does, errors included', () => {
    let n = 0;
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 12 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 12 }), (parts, min, max) => {
        const text = parts.join('');
        const schema = { type: 'object', properties: { s: { type: 'string', minLength: min, maxLength: max } } };
        const ours = ajv.compile({ ...schema, $id: `hub:test/length-${n++}` });
        const theirs = stock.compile(schema);
        expect(ours({ s: text })).toBe(theirs({ s: text }));
        expect(ours.errors ?? null).toEqual(theirs.errors ?? null);
      }),
      { numRuns: 400 },
    );
  });

  it('refuses an over-long stored value with the usual message', () => {
    const validate = validatorFor('hub:tables/events');
    const event = { id: 'evt_1', type: 'stock.updated', source: 'x'.repeat(256), subject: null, time: '2026-11-22T00:00:00.000Z', workspaceId: 'ws_1', correlationId: null, data: {}, version: 1, createdAt: '2026-11-22T00:00:00.000Z', updatedAt: '2026-11-22T00:00:00.000Z' };
    expect(validate(event)).toBe(false);
    expect(validate.errors).toContainEqual(expect.objectContaining({ instancePath: '/source', keyword: 'maxLength', message: 'must NOT have more than 255 characters', params: { limit: 255 } }));
    expect(validate({ ...event, source: '😀'.repeat(255) })).toBe(true);
  });
});
