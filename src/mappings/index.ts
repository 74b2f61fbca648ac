// The mapping engine's public API: compile, validate and preview declarative field mappings.
export { clearMappingCache, compileMapping, MAX_ERRORS_PER_RECORD } from './compile.ts';
export type { BatchResult, CompiledMapping, CompileOptions, MappingResult } from './compile.ts';
export type * from './document.ts';
export { checkDocument } from './document-check.ts';
export { canonicalJson, hashMapping } from './hash.ts';
export type { MappingIssue } from './ir.ts';
export { MAX_PREVIEW_RECORDS, previewMapping } from './preview.ts';
export type { MappingPreview, PreviewRecord } from './preview.ts';
export { collectUses } from './reuse.ts';
export type { ResolveMapping } from './reuse.ts';
export type { MappingRunError } from './runtime.ts';
export { registrySchemaFor } from './schema-walk.ts';
export type { SchemaFor } from './schema-walk.ts';
export { assertValidMapping, validateMapping } from './validate-mapping.ts';
export type { MappingValidation, ValidateOptions } from './validate-mapping.ts';
