// Reads an uploaded file from a request as it streams in, straight into the spool (with its checksum), whether it
// is sent as the raw body or as the `file` part of multipart/form-data (busboy parses the parts as they arrive,
// so a gigabyte upload never sits in memory). Form fields sent before the file are returned with it.
import { Readable } from 'node:stream';
import busboy from 'busboy';
import { HubError } from '../errors.ts';
import { stageFile, type StagedFile } from './stage.ts';

export interface Upload {
  staged: StagedFile;
  /** The file name the client gave (multipart filename, or the fileName parameter). */
  fileName: string | null;
  contentType: string | null;
  fields: Record<string, string>;
}

function tooLarge(maxBytes: number): HubError {
  return new HubError('payload_too_large', `The file may be at most ${maxBytes} bytes (HUB_MAX_UPLOAD_BYTES)`, { extra: { maxBytes } });
}

export async function receiveUpload(request: Request, path: string, maxBytes: number): Promise<Upload> {
  const type = request.headers.get('content-type') ?? '';
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes && !type.startsWith('multipart/')) throw tooLarge(maxBytes);
  if (!request.body) {
    throw new HubError('validation_failed', 'The request has no file: send it as the body, or as the "file" part of multipart/form-data', { errors: [{ field: '/file', code: 'required', message: 'a file is required' }] });
  }
  const body = Readable.fromWeb(request.body as import('node:stream/web').ReadableStream);
  if (!type.startsWith('multipart/form-data')) {
    const staged = await stage(body, path, maxBytes);
    return { staged, fileName: null, contentType: type || null, fields: {} };
  }
  return new Promise<Upload>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: { 'content-type': type }, limits: { files: 1, fields: 50, fieldSize: 64 * 1024, fileSize: maxBytes } });
    } catch (err) {
      reject(new HubError('validation_failed', `The multipart body cannot be read: ${(err as Error).message}`, { errors: [{ field: '/', code: 'multipart', message: (err as Error).message }] }));
      return;
    }
    const fields: Record<string, string> = {};
    let found: Promise<Upload> | null = null;
    parser.on('field', (name, value) => (fields[name] = value));
    parser.on('file', (name, stream, info) => {
      if (name !== 'file' || found) {
        stream.resume();
        return;
      }
      let truncated = false;
      stream.on('limit', () => (truncated = true));
      found = stage(stream, path, maxBytes).then((staged) => {
        if (truncated) {
          void staged.remove();
          throw tooLarge(maxBytes);
        }
        return { staged, fileName: info.filename || null, contentType: info.mimeType || null, fields };
      });
      found.catch(() => undefined);
    });
    parser.on('error', (err: Error) => reject(new HubError('validation_failed', `The multipart body cannot be read: ${err.message}`, { errors: [{ field: '/', code: 'multipart', message: err.message }] })));
    parser.on('close', () => {
      if (!found) {
        reject(new HubError('validation_failed', 'The multipart body has no "file" part', { errors: [{ field: '/file', code: 'required', message: 'a part named "file" is required' }] }));
        return;
      }
      found.then(resolve, reject);
    });
    body.on('error', (err) => reject(new HubError('validation_failed', `The upload broke off: ${err.message}`, { errors: [{ field: '/file', code: 'incomplete', message: err.message }] })));
    body.pipe(parser);
  });
}

async function stage(input: Readable, path: string, maxBytes: number): Promise<StagedFile> {
  try {
    return await stageFile(input, path, { maxBytes });
  } catch (err) {
    if ((err as { code?: string }).code === 'too_large') throw tooLarge(maxBytes);
    throw new HubError('validation_failed', `The upload broke off: ${(err as Error).message}`, { errors: [{ field: '/file', code: 'incomplete', message: (err as Error).message }] });
  }
}
