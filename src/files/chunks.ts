// Readers give a large import their records a chunk at a time (one await per chunk of the file rather than per
// record); callers that want records one by one get them flattened.
export async function* flatten<T>(chunks: AsyncIterable<T[]>): AsyncGenerator<T> {
  for await (const chunk of chunks) yield* chunk;
}

/** Items of a one-at-a-time source as chunks of one. */
export async function* chunksOfOne<T>(items: AsyncIterable<T>): AsyncGenerator<T[]> {
  for await (const item of items) yield [item];
}
