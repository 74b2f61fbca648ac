// The SSRF guard for outbound webhooks: endpoint URLs come from users, so the hub must never be made to call
// loopback, private, link-local or cloud-metadata addresses on their behalf. The decisive check runs at connect
// time, on the addresses DNS actually returned (a `lookup` for http(s).request), so a name that re-binds to
// 127.0.0.1 after it was validated is still refused; `checkWebhookUrl` only gives early feedback when an endpoint
// is saved.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** The `code` of the error the guard's lookup fails with. */
export const SSRF_BLOCKED = 'ssrf_blocked';

export interface AddressPolicy {
  /** True when connecting to this IP (v4 or v6 literal) is allowed. */
  allows(address: string): boolean;
  /**
   * A drop-in `lookup` for http(s).request options: resolves every address of the name and refuses (error code
   * `ssrf_blocked`) when any of them is blocked, so a round-robin record cannot smuggle in one private address.
   */
  lookup: LookupFunction;
}

export interface AddressPolicyOptions {
  /** IPs or CIDRs permitted even inside a blocked range (see parseAllowList). */
  allow?: readonly string[];
}

export interface UrlProblem {
  code: string;
  message: string;
}

export const MAX_WEBHOOK_URL_LENGTH = 2048;

// Special-purpose ranges (RFC 6890 and the IANA registries) that no public webhook receiver lives in.
const BLOCKED_V4: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, and the cloud metadata service at 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4], // includes 255.255.255.255
];

const BLOCKED_V6: readonly (readonly [string, number])[] = [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7], // unique local, and AWS's metadata service at fd00:ec2::254
  ['fe80::', 10],
  ['fec0::', 10], // site-local (deprecated, still routed inside some networks)
  ['ff00::', 8],
  ['100::', 64], // discard-only
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215): reaches private IPv4 space through a site's own gateway
  ['2001:db8::', 32],
];

type Range = readonly [network: string, bits: number, type: 'ipv4' | 'ipv6'];

const BLOCKED = rangeList([
  ...BLOCKED_V4.map(([net, bits]): Range => [net, bits, 'ipv4']),
  ...BLOCKED_V6.map(([net, bits]): Range => [net, bits, 'ipv6']),
]);

/** The first 96 bits of the IPv6 forms whose last 32 bits are an IPv4 address: mapped, compatible, translated (SIIT), NAT64. */
const EMBEDDING_PREFIXES = new Set(['0:0:0:0:0:ffff', '0:0:0:0:0:0', '0:0:0:0:ffff:0', '64:ff9b:0:0:0:0']);

/** Thrown (through the lookup callback) when a name resolves to an address the policy refuses. */
export class SsrfBlockedError extends Error {
  readonly code = SSRF_BLOCKED;

  /**
   * The address refused is kept on the error, and left out of its message, which the attempt log shows to the
   * endpoint's workspace: a tenant must not learn the hub's internal addresses by naming hosts.
   */
  constructor(
    hostname: string,
    readonly address: string,
  ) {
    super(`Refusing to connect to ${hostname}: it resolves to an address that is not public (loopback, private, link-local or reserved).`);
    this.name = 'SsrfBlockedError';
  }
}

export function createAddressPolicy(options: AddressPolicyOptions = {}): AddressPolicy {
  const allowed = rangeList((options.allow ?? []).map(parseCidrOrThrow));

  const allows = (address: string): boolean => {
    const ip = stripZone(address);
    const family = isIP(ip);
    if (family === 0) return false;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (allowed.check(ip, type)) return true;
    if (BLOCKED.check(ip, type)) return false;
    const embedded = family === 6 ? embeddedIPv4(ip) : undefined;
    // Traffic to these forms ends up at the IPv4 address inside, so that address is what must be judged.
    return embedded === undefined || allowed.check(embedded, 'ipv4') || !BLOCKED.check(embedded, 'ipv4');
  };

  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    dnsLookup(hostname, { ...lookupOptions, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const refused = addresses.find((a) => !allows(a.address));
      if (refused) return callback(new SsrfBlockedError(hostname, refused.address), '');
      answer(lookupOptions, addresses, callback);
    });
  };

  return { allows, lookup };
}

/** Replies in the shape the caller asked for: the whole list with `all`, else the first address and its family. */
function answer(options: LookupOptions | undefined, addresses: LookupAddress[], callback: Parameters<LookupFunction>[2]): void {
  if (options?.all) return callback(null, addresses);
  const first = addresses[0];
  if (!first) return callback(Object.assign(new Error('No address found'), { code: 'ENOTFOUND' }), '');
  callback(null, first.address, first.family);
}

/**
 * Parses HUB_WEBHOOK_ALLOW: comma-separated IPs or CIDRs (127.0.0.1/32, ::1, 10.0.0.0/8). Throws an Error naming
 * the first bad entry, so a typo stops the hub at start-up instead of silently blocking (or opening) deliveries.
 */
export function parseAllowList(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const entries = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  for (const entry of entries) parseCidrOrThrow(entry);
  return entries;
}

/** Checks a URL when an endpoint is created or updated; an empty list means it is acceptable. */
export function checkWebhookUrl(url: string, policy: AddressPolicy): UrlProblem[] {
  if (url.length > MAX_WEBHOOK_URL_LENGTH) {
    return [{ code: 'length', message: `The URL must be at most ${MAX_WEBHOOK_URL_LENGTH} characters long.` }];
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [{ code: 'invalid_url', message: 'The URL is not a valid absolute URL.' }];
  }
  const problems: UrlProblem[] = [];
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    problems.push({ code: 'scheme', message: 'The URL must start with http:// or https://.' });
  }
  if (parsed.username !== '' || parsed.password !== '') {
    problems.push({ code: 'credentials', message: 'The URL must not contain a user name or password; send credentials in headers instead.' });
  }
  if (hostIsBlocked(parsed.hostname, policy)) {
    problems.push({ code: 'blocked_address', message: 'The URL points at a private, loopback or otherwise non-public address.' });
  }
  return problems;
}

/** Judges only what is knowable without DNS: IP literals and the names reserved for loopback. */
function hostIsBlocked(hostname: string, policy: AddressPolicy): boolean {
  const host = unbracket(hostname).toLowerCase().replace(/\.$/, '');
  if (isIP(host) !== 0) return !policy.allows(host);
  // RFC 6761: resolvers may answer *.localhost with loopback without asking DNS at all.
  if (host === 'localhost' || host.endsWith('.localhost')) return !policy.allows('127.0.0.1');
  return false;
}

function rangeList(ranges: readonly Range[]): BlockList {
  const list = new BlockList();
  for (const [net, bits, type] of ranges) list.addSubnet(net, bits, type);
  return list;
}

function parseCidrOrThrow(entry: string): Range {
  const cidr = parseCidr(entry);
  if (!cidr) throw new Error(`HUB_WEBHOOK_ALLOW: "${entry}" is not an IP address or a CIDR range (like 10.0.0.0/8 or ::1/128)`);
  return cidr;
}

/** An IP alone stands for itself (/32 or /128). Zone ids are refused: they name an interface, not a range. */
function parseCidr(entry: string): Range | undefined {
  const slash = entry.indexOf('/');
  const ip = slash === -1 ? entry : entry.slice(0, slash);
  const family = isIP(ip);
  if (family === 0 || ip.includes('%')) return undefined;
  const maxBits = family === 4 ? 32 : 128;
  const bitsText = slash === -1 ? String(maxBits) : entry.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  return bits <= maxBits ? [ip, bits, family === 4 ? 'ipv4' : 'ipv6'] : undefined;
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** fe80::1%eth0 is the address fe80::1; BlockList does not understand the zone and would let it through. */
function stripZone(address: string): string {
  const percent = address.indexOf('%');
  return percent === -1 ? address : address.slice(0, percent);
}

/**
 * The IPv4 address carried inside an IPv6 one, for the forms that deliver to it: IPv4-mapped (::ffff:0:0/96),
 * the deprecated IPv4-compatible ::/96, NAT64 (64:ff9b::/96) and 6to4 (2002::/16, address in bits 16–47).
 */
function embeddedIPv4(address: string): string | undefined {
  const words = ipv6Words(address);
  if (!words) return undefined;
  if (words[0] === 0x2002) return wordsToIPv4(words[1]!, words[2]!);
  const prefix = words.slice(0, 6).map((word) => word.toString(16)).join(':');
  return EMBEDDING_PREFIXES.has(prefix) ? wordsToIPv4(words[6]!, words[7]!) : undefined;
}

function wordsToIPv4(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** The eight 16-bit words of an IPv6 literal that isIP has accepted, a dotted IPv4 tail included. */
function ipv6Words(address: string): number[] | undefined {
  const lastColon = address.lastIndexOf(':');
  let text = address;
  if (address.includes('.', lastColon)) {
    const [a = 0, b = 0, c = 0, d = 0] = address.slice(lastColon + 1).split('.').map(Number);
    text = `${address.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const before = hexWords(head);
  const after = tail === undefined ? [] : hexWords(tail);
  const missing = 8 - before.length - after.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return undefined;
  return [...before, ...new Array<number>(missing).fill(0), ...after];
}

function hexWords(part: string): number[] {
  return part === '' ? [] : part.split(':').map((word) => parseInt(word, 16));
}
