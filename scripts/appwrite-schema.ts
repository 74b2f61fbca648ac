// `npm run appwrite:schema`: writes the tablesDB and tables sections of appwrite.json from schemas/ (the rest of
// the file is kept). `--check` only compares, and fails when appwrite.json and the schemas disagree (CI runs it
// through scripts/appwrite-schema.test.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { appwriteSchemaSection } from '../src/store/appwrite-schema.ts';

export const APPWRITE_JSON = fileURLToPath(new URL('../appwrite.json', import.meta.url));

export function renderAppwriteJson(current: string): string {
  const doc = JSON.parse(current) as Record<string, unknown>;
  return JSON.stringify({ ...doc, ...appwriteSchemaSection() }, null, 2) + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const current = readFileSync(APPWRITE_JSON, 'utf8');
  const wanted = renderAppwriteJson(current);
  if (process.argv.includes('--check')) {
    if (current !== wanted) {
      console.error('appwrite.json disagrees with schemas/: run npm run appwrite:schema');
      process.exit(1);
    }
    console.log('appwrite.json matches schemas/');
  } else {
    writeFileSync(APPWRITE_JSON, wanted);
    console.log(`wrote ${APPWRITE_JSON}`);
  }
}
