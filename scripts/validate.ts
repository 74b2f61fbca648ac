// npm run validate: every mapping in mappings/ must be a valid document whose golden examples pass. Exit 1 otherwise.
import { validateMappingFiles } from '../src/mappings/files.ts';

const reports = validateMappingFiles(process.argv[2]);
let failed = 0;
for (const r of reports) {
  if (r.valid) console.log(`ok    ${r.file}${r.warnings.length ? ` (${r.warnings.length} warnings)` : ''}`);
  else failed++;
  for (const e of r.errors) console.log(`FAIL  ${r.file} ${e.path || '/'} ${e.code}: ${e.message}`);
  for (const w of r.warnings) console.log(`warn  ${r.file} ${w.path || '/'} ${w.code}: ${w.message}`);
}
console.log(`${reports.length} mappings, ${failed} invalid`);
if (reports.length === 0) console.log('no mappings found');
process.exitCode = failed ? 1 : 0;
