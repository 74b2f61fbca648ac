// previewMapping: what an admin sees before saving: the validation report, and each sample record mapped (or why
// it failed), without storing anything.
import { compileMapping } from './compile.ts';
import type { MappingRunError } from './runtime.ts';
import { validateMapping, type MappingValidation, type ValidateOptions } from './validate-mapping.ts';

export interface PreviewRecord {
  index: number;
  ok: boolean;
  value?: Record<string, unknown>;
  errors?: MappingRunError[];
}

export interface MappingPreview {
  validation: MappingValidation;
  /** Empty when the document is not valid: an invalid mapping is never run. */
  records: PreviewRecord[];
}

/** At most this many samples are mapped in one preview. */
export const MAX_PREVIEW_RECORDS = 100;

export function previewMapping(doc: unknown, samples: readonly unknown[], options: ValidateOptions = {}): MappingPreview {
  const validation = validateMapping(doc, options);
  if (!validation.valid) return { validation, records: [] };
  const compiled = compileMapping(doc, { resolve: options.resolve, schemaFor: options.schemaFor });
  const records = samples.slice(0, MAX_PREVIEW_RECORDS).map((sample, index): PreviewRecord => {
    const r = compiled.apply(sample, index);
    return r.ok ? { index, ok: true, value: r.value } : { index, ok: false, errors: r.errors };
  });
  return { validation, records };
}
