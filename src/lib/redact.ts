// Header values the API does not show back: credentials a user gave an endpoint to send (Authorization, an API key),
// or that a sender put on an inbound webhook. Readers with only read access see that the header is there, not its value.

/** What the API shows in place of a value it keeps to itself. */
export const REDACTED = '[redacted]';

/**
 * Names that carry credentials: the standard ones, and any that say token, secret, password, key, auth, session or
 * credential (X-Api-Key, X-Auth-Token, X-Shopify-Access-Token). Signatures are not among them: a signature proves one
 * body and is of no use for another, and seeing it helps to debug a verification.
 */
const SENSITIVE = /^(?:authorization|proxy-authorization|cookie|set-cookie)$|token|secret|passw|api[-_]?key|auth|session|credential/i;

export function isSensitiveHeader(name: string): boolean {
  return SENSITIVE.test(name);
}

/** The headers with the values of credential-bearing ones replaced by REDACTED. */
export function redactHeaders(headers: Record<string, string> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) out[name] = isSensitiveHeader(name) ? REDACTED : value;
  return out;
}
