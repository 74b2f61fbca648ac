import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { validateMapping } from './validate-mapping.ts';

describe('the README', () => {
  it('shows a mapping that is valid and passes its own example', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Mappings'));
    const json = /```json\n([\s\S]*?)```/.exec(section)![1]!;
    const result = validateMapping(JSON.parse(json));
    expect(result.errors).toEqual([]);
    expect(result.valid).toBe(true);
  });
});
