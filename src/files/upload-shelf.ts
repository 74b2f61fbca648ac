// Where an upload waits for the job that imports it. Embedded, the API and the worker are one process and share
// the spool folder, so nothing is needed. On Appwrite the api execution that receives the file and the worker
// execution that imports it are different machines: the upload is put in the file exchange's Storage bucket
// (exchange-inbox, as uploads/<run id>.<format>) before its job is queued, and the worker fetches it into its own
// spool. After the run it is renamed to archive/ or error/, as files a Storage exchange imported are.
import { createStorageSource, createStorageTarget, type StorageOptions } from './transports/appwrite-storage.ts';
import { contentTypeOf } from './runs.ts';
import { stageFile, type StagedFile } from './stage.ts';

export type UploadFormat = 'csv' | 'xml' | 'xlsx';

export interface UploadShelf {
  /** Keeps the staged upload of run `runId` where its job will find it. */
  put(runId: string, format: UploadFormat, staged: StagedFile): Promise<void>;
  /** The upload of run `runId` staged at `path`; null when the shelf does not have it. */
  fetch(runId: string, format: UploadFormat, path: string): Promise<StagedFile | null>;
  /** After the run: the upload is moved out of the way (archive when applied, error when not). */
  finish(runId: string, format: UploadFormat, outcome: 'archive' | 'error'): Promise<void>;
}

/** The bucket Storage exchanges read from by default, which uploads share under their own prefix. */
export const UPLOAD_BUCKET = 'exchange-inbox';
const PREFIX = 'uploads/';

const nameOf = (runId: string, format: string) => `${runId}.${format}`;

export function createStorageShelf(options: Omit<StorageOptions, 'bucketId'> & { bucketId?: string }): UploadShelf {
  const bucket = { ...options, bucketId: options.bucketId ?? UPLOAD_BUCKET };
  return {
    async put(runId, format, staged) {
      const target = createStorageTarget({ ...bucket, prefix: PREFIX });
      try {
        await target.put(nameOf(runId, format), staged.open(), { contentType: contentTypeOf(format) });
      } finally {
        await target.close();
      }
    },
    async fetch(runId, format, path) {
      const source = createStorageSource({ ...bucket, prefix: PREFIX, pattern: nameOf(runId, format) });
      try {
        if ((await source.list()).length === 0) return null;
        return await stageFile(await source.open(nameOf(runId, format)), path);
      } finally {
        await source.close();
      }
    },
    async finish(runId, format, outcome) {
      const source = createStorageSource({ ...bucket, prefix: PREFIX, pattern: nameOf(runId, format) });
      try {
        await source.finish(nameOf(runId, format), outcome);
      } finally {
        await source.close();
      }
    },
  };
}

