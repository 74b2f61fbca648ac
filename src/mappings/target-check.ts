// Run-time validation of each output record against the target schema, with every ajv error turned into a
// MappingRunError that names the target path and the source path of the rule that filled it.
import type { ValidateFunction } from 'ajv';
import { ajv, compileSchema, validatorFor, type JsonSchema } from '../schemas/registry.ts';
import { toFieldErrors } from '../schemas/validate.ts';
import { canonicalJson } from './hash.ts';
import type { ExprIR, FieldIR, ValueIR } from './ir.ts';
import { joinPathText } from './path.ts';
import { pointerSegments } from './pointer.ts';
import type { MappingRunError } from './runtime.ts';

const inlineValidators = new Map<string, ValidateFunction>();
const MAX_INLINE = 500;

/**
 * The ajv validator of a side's schema: a registered id uses the registry's validator; an inline schema (or one
 * another resolver gave) is compiled once per content, without its `$id` so that versions never collide.
 * Throws when ajv cannot compile the schema.
 */
export function validatorForSchema(ref: string | JsonSchema, schema: JsonSchema): ValidateFunction {
  if (typeof ref === 'string' && ajv.getSchema(ref)) return validatorFor(ref);
  const key = canonicalJson(schema);
  let fn = inlineValidators.get(key);
  if (!fn) {
    const { $id: _ignored, ...rest } = schema;
    fn = compileSchema(rest);
    if (inlineValidators.size >= MAX_INLINE) inlineValidators.clear();
    inlineValidators.set(key, fn);
  }
  return fn;
}

/** The source path of the rule that fills `targetPath` (concrete indexes where they are known), or null. */
export function sourceForTarget(fields: FieldIR[], targetPath: string): string | null {
  const segs = pointerSegments(targetPath);
  let list: FieldIR[] | undefined = fields;
  let prefix = '$';
  let i = 0;
  let value: ValueIR | undefined;
  while (i < segs.length) {
    if (!list) break;
    value = list.find((f) => f.name === segs[i]);
    i++;
    if (!value) return null;
    list = undefined;
    const e: ExprIR = value.expr;
    if (e.kind === 'object') {
      if (e.base) prefix = joinPathText(prefix, e.base.text);
      list = e.fields;
    } else if (e.kind === 'each' && i < segs.length) {
      const exact = !e.filter && !e.flatten;
      prefix = joinPathText(prefix, `${e.path.text}[${exact ? segs[i] : '*'}]`);
      i++;
      if (e.element.kind === 'object') list = e.element.fields;
      else if (e.element.kind === 'value') value = e.element.value;
      else return prefix;
    }
  }
  if (!value) return null;
  if (value.sourcePath === null) return prefix === '$' ? null : prefix;
  return value.sourcePath.startsWith('$root') ? value.sourcePath : joinPathText(prefix, value.sourcePath);
}

/** One MappingRunError per failing place of the output, from the validator's errors. */
export function targetErrors(validate: ValidateFunction, fields: FieldIR[], recordIndex: number): MappingRunError[] {
  return toFieldErrors(validate.errors).map((e) => {
    const targetPath = e.field === '/' ? '' : e.field;
    return {
      recordIndex,
      targetPath,
      sourcePath: sourceForTarget(fields, targetPath),
      code: 'target_invalid',
      message: `${targetPath || 'the record'} ${e.message} (target schema)`,
    };
  });
}
