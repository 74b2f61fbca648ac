// Strict, streaming UTF-8 for the CSV and XML readers. A partner file in the wrong encoding must stop the import
// with a pointer to the first bad byte, not slip through as U+FFFD in product names; and since chunk boundaries
// fall anywhere, a character split across two chunks must still decode. TextDecoder (fatal, streaming) does the
// work; only after it refuses a chunk do we scan that chunk in JS to say where.

/** The input is not UTF-8 from byte `offset` (0-based, in the whole file) on. */
export class InvalidUtf8 extends Error {
  constructor(
    readonly offset: number,
    /** Where the bad byte is in the chunk being decoded; 0 when it began in an earlier chunk. */
    readonly index: number,
    /** The text of the chunk's valid bytes before it, so a caller can parse up to the bad byte. */
    readonly validText: string,
  ) {
    super(`The file is not valid UTF-8 at byte ${offset}`);
  }
}

const EMPTY = new Uint8Array(0);

export class Utf8Decoder {
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });
  /** Bytes before the current chunk. */
  #consumed = 0;
  /** The last bytes seen that start a character the next chunk must finish (what the decoder holds back). */
  #pending: Uint8Array = EMPTY;

  /** The text of one more chunk (a leading BOM dropped); throws InvalidUtf8. */
  decode(chunk: Uint8Array): string {
    let text: string;
    try {
      text = this.#decoder.decode(chunk, { stream: true });
    } catch {
      throw this.#locate(chunk);
    }
    const recent = chunk.length >= 3 ? chunk.subarray(chunk.length - 3) : concat(this.#pending, chunk).subarray(-3);
    this.#pending = recent.slice(recent.length - unfinishedLength(recent));
    this.#consumed += chunk.length;
    return text;
  }

  /** At the end of the input: throws InvalidUtf8 when the last character is cut off. */
  end(): void {
    try {
      this.#decoder.decode();
    } catch {
      throw new InvalidUtf8(this.#consumed - this.#pending.length, 0, '');
    }
  }

  #locate(chunk: Uint8Array): InvalidUtf8 {
    const bytes = concat(this.#pending, chunk);
    let at = firstInvalid(bytes);
    if (at < 0) at = bytes.length;
    const validText = new TextDecoder('utf-8', { ignoreBOM: this.#consumed > 0 }).decode(bytes.subarray(0, at));
    const index = Math.max(0, at - this.#pending.length);
    return new InvalidUtf8(this.#consumed - this.#pending.length + at, index, validText);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** How many of the last bytes begin a character that is not finished (0 to 3). */
function unfinishedLength(tail: Uint8Array): number {
  for (let k = 1; k <= tail.length; k++) {
    const c = tail[tail.length - k]!;
    if ((c & 0xc0) === 0x80) continue;
    const size = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return size > k ? k : 0;
  }
  return 0;
}

/** The index of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629), or -1. */
function firstInvalid(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let size: number;
    // The second byte's range rules out overlong forms, surrogates and code points above U+10FFFF.
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) size = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      size = 3;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      size = 4;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k < size; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += size;
  }
  return -1;
}
