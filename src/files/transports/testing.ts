// Shared by the transports' tests (not used by the transports): files written with a given time, and the failures
// a transport must give, caught and checked to be HubErrors.
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'vitest';
import { HubError } from '../../errors.ts';

/** Writes `rel` under `root` (its folders made), dated `mtime` when given. */
export async function putFile(root: string, rel: string, content: string | Buffer, mtime?: string): Promise<void> {
  const file = join(root, rel);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, content);
  if (mtime) await utimes(file, new Date(mtime), new Date(mtime));
}

/** The HubError `promise` rejects with; fails the test when it resolves or rejects with something else. */
export async function failure(promise: Promise<unknown>): Promise<HubError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HubError);
  return err as HubError;
}

/** The validation_failed HubError creating a transport with a bad configuration throws. */
export function configFailure(create: () => unknown): HubError {
  try {
    create();
  } catch (err) {
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('validation_failed');
    return err as HubError;
  }
  throw new Error('expected the configuration to be refused');
}

/** A body that gives some bytes and then fails, as an export whose query breaks halfway does. */
export function failingBody(chunks: string[]): Readable {
  return Readable.from(
    (async function* () {
      for (const chunk of chunks) yield Buffer.from(chunk);
      throw new Error('the export failed halfway');
    })(),
  );
}
