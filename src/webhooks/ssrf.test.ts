import type { LookupAddress, LookupOptions } from 'node:dns';
import { describe, expect, it, vi } from 'vitest';
import { checkWebhookUrl, createAddressPolicy, parseAllowList, SSRF_BLOCKED, type AddressPolicy } from './ssrf.ts';

const LOOPBACK_ALLOWED = ['127.0.0.1/32', '::1/128'];

// Names under .test answer from this table, so multi-address answers can be tested without a DNS server.
const fakeDns = vi.hoisted(() => new Map<string, LookupAddress[]>());
vi.mock('node:dns', async (importOriginal) => {
  const dns = await importOriginal<typeof import('node:dns')>();
  const lookup = (hostname: string, options: LookupOptions, callback: (err: Error | null, addresses: LookupAddress[]) => void) => {
    const answer = fakeDns.get(hostname);
    if (answer) return process.nextTick(callback, null, answer);
    return dns.lookup(hostname, { ...options, all: true }, callback);
  };
  return { ...dns, lookup, default: { ...dns, lookup } };
});
fakeDns.set('round-robin.test', [
  { address: '93.184.216.34', family: 4 },
  { address: '10.0.0.5', family: 4 },
]);
fakeDns.set('dual-stack.test', [
  { address: '2606:4700::1111', family: 6 },
  { address: '1.1.1.1', family: 4 },
]);
fakeDns.set('mapped-metadata.test', [{ address: '::ffff:169.254.169.254', family: 6 }]);

/** Calls a policy's lookup and returns what its callback received, in the shape the options asked for. */
function resolveWith(policy: AddressPolicy, hostname: string, options: { all?: boolean; family?: number } = {}) {
  return new Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number }>((resolve) => {
    policy.lookup(hostname, options, (err, address, family) => resolve({ err, address, family }));
  });
}

describe('createAddressPolicy().allows', () => {
  const policy = createAddressPolicy();

  it.each([
    ['0.0.0.0/8', ['0.0.0.0', '0.255.255.255']],
    ['10/8', ['10.0.0.1', '10.255.255.254']],
    ['100.64/10 (carrier-grade NAT)', ['100.64.0.1', '100.127.255.255']],
    ['127/8', ['127.0.0.1', '127.1.2.3']],
    ['169.254/16 (link-local, metadata)', ['169.254.169.254', '169.254.0.1']],
    ['172.16/12', ['172.16.0.1', '172.31.255.255']],
    ['192.0.0/24', ['192.0.0.8']],
    ['192.0.2/24 (TEST-NET-1)', ['192.0.2.10']],
    ['192.88.99/24 (6to4 relay)', ['192.88.99.1']],
    ['192.168/16', ['192.168.0.1', '192.168.255.255']],
    ['198.18/15 (benchmarking)', ['198.18.0.1', '198.19.255.255']],
    ['198.51.100/24 (TEST-NET-2)', ['198.51.100.7']],
    ['203.0.113/24 (TEST-NET-3)', ['203.0.113.200']],
    ['224/4 (multicast)', ['224.0.0.1', '239.255.255.250']],
    ['240/4 and broadcast', ['240.0.0.1', '255.255.255.255']],
  ])('blocks IPv4 %s', (_range, samples) => {
    for (const address of samples) expect(policy.allows(address), address).toBe(false);
  });

  it.each([
    ['the unspecified address', ['::', '0:0:0:0:0:0:0:0']],
    ['loopback', ['::1', '0:0:0:0:0:0:0:1']],
    ['unique local fc00::/7, incl. AWS metadata', ['fd00:ec2::254', 'fc00::1', 'fdff:ffff::1']],
    ['link-local fe80::/10', ['fe80::1', 'febf::1', 'fe80::1%eth0']],
    ['multicast ff00::/8', ['ff02::1', 'ff05::1:3']],
    ['documentation 2001:db8::/32', ['2001:db8::1', '2001:db8:ffff::1']],
    ['site-local fec0::/10 (deprecated)', ['fec0::1', 'feff::1']],
    ['discard-only 100::/64', ['100::1', '100::ffff:ffff:ffff:ffff']],
    ['local-use NAT64 64:ff9b:1::/48 (RFC 8215)', ['64:ff9b:1::a00:1', '64:ff9b:1:ffff::808:808']],
  ])('blocks IPv6 %s', (_range, samples) => {
    for (const address of samples) expect(policy.allows(address), address).toBe(false);
  });

  it.each([
    ['IPv4-mapped, dotted', '::ffff:127.0.0.1'],
    ['IPv4-mapped, hex', '::ffff:7f00:1'],
    ['IPv4-mapped metadata', '::ffff:169.254.169.254'],
    ['IPv4-mapped private, expanded', '0:0:0:0:0:ffff:a00:1'],
    ['IPv4-compatible (deprecated)', '::127.0.0.1'],
    ['NAT64, hex', '64:ff9b::7f00:1'],
    ['NAT64, dotted', '64:ff9b::10.0.0.1'],
    ['IPv4-translated (SIIT)', '::ffff:0:10.0.0.1'],
    ['IPv4-translated loopback, hex', '::ffff:0:7f00:1'],
    ['6to4 of loopback', '2002:7f00:0001::'],
    ['6to4 of a private network', '2002:c0a8:0101::1'],
  ])('judges %s (%s) by the IPv4 address inside', (_form, address) => {
    expect(policy.allows(address)).toBe(false);
  });

  it('allows public addresses, including public IPv4 inside mapped, NAT64 and 6to4 forms', () => {
    const samples = ['8.8.8.8', '1.1.1.1', '93.184.216.34', '2606:4700::1111', '2a00:1450:4001::200e'];
    for (const address of [...samples, '::ffff:8.8.8.8', '::ffff:0:8.8.8.8', '64:ff9b::808:808', '2002:0808:0808::1']) {
      expect(policy.allows(address), address).toBe(true);
    }
  });

  it('allows the edges just outside blocked ranges', () => {
    const edges = ['100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '198.17.255.255', '198.20.0.0', '223.255.255.255'];
    for (const address of [...edges, 'fbff::1', 'fe7f::1', '100:0:0:1::', '64:ff9b:2::1']) {
      expect(policy.allows(address), address).toBe(true);
    }
  });

  it('blocks anything that is not an IP address', () => {
    for (const address of ['', 'localhost', 'example.com', '127.0.0.1.', '256.0.0.1', '[::1]', '1.2.3']) {
      expect(policy.allows(address), address).toBe(false);
    }
  });

  it('lets the allow list open single addresses and ranges inside blocked space, and nothing more', () => {
    const allowing = createAddressPolicy({ allow: ['127.0.0.1/32', '::1/128', '10.1.0.0/16', 'fd00:ec2::254'] });
    expect(allowing.allows('127.0.0.1')).toBe(true);
    expect(allowing.allows('::1')).toBe(true);
    expect(allowing.allows('::ffff:127.0.0.1')).toBe(true);
    expect(allowing.allows('10.1.200.3')).toBe(true);
    expect(allowing.allows('fd00:ec2::254')).toBe(true);
    expect(allowing.allows('127.0.0.2')).toBe(false);
    expect(allowing.allows('10.2.0.1')).toBe(false);
    expect(allowing.allows('169.254.169.254')).toBe(false);
    expect(allowing.allows('fd00:ec2::253')).toBe(false);
  });

  it('refuses an invalid allow entry when the policy is created', () => {
    expect(() => createAddressPolicy({ allow: ['10.0.0.0/33'] })).toThrow(/10\.0\.0\.0\/33/);
  });
});

describe('createAddressPolicy().lookup', () => {
  it('refuses a name that resolves to loopback, with the ssrf_blocked code', async () => {
    const { err } = await resolveWith(createAddressPolicy(), 'localhost');
    expect(err?.code).toBe(SSRF_BLOCKED);
    expect(err?.message).toMatch(/localhost/);
    // The attempt log shows the message to the endpoint's workspace: it names no internal address.
    expect(err?.message).not.toMatch(/127\.0\.0\.1|::1/);
  });

  it('refuses in the all:true shape too', async () => {
    const { err } = await resolveWith(createAddressPolicy(), 'localhost', { all: true });
    expect(err?.code).toBe(SSRF_BLOCKED);
  });

  it('answers with one address and its family when all is not set', async () => {
    const { err, address, family } = await resolveWith(createAddressPolicy({ allow: LOOPBACK_ALLOWED }), 'localhost', { family: 4 });
    expect(err).toBeNull();
    expect(address).toBe('127.0.0.1');
    expect(family).toBe(4);
  });

  it('answers with the whole list when all is set', async () => {
    const { err, address } = await resolveWith(createAddressPolicy({ allow: LOOPBACK_ALLOWED }), 'localhost', { all: true, family: 4 });
    expect(err).toBeNull();
    expect(address).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });

  it('refuses a name when any one of its addresses is blocked', async () => {
    const { err } = await resolveWith(createAddressPolicy(), 'round-robin.test', { all: true });
    expect(err?.code).toBe(SSRF_BLOCKED);
    // The address refused is on the error, not in its message.
    expect((err as { address?: string }).address).toBe('10.0.0.5');
    expect(err?.message).not.toMatch(/10\.0\.0\.5/);
  });

  it('refuses a name that resolves to an IPv4-mapped metadata address', async () => {
    const { err } = await resolveWith(createAddressPolicy(), 'mapped-metadata.test');
    expect(err?.code).toBe(SSRF_BLOCKED);
  });

  it('passes every public address through, first one first', async () => {
    const policy = createAddressPolicy();
    expect(await resolveWith(policy, 'dual-stack.test')).toEqual({ err: null, address: '2606:4700::1111', family: 6 });
    expect((await resolveWith(policy, 'dual-stack.test', { all: true })).address).toEqual(fakeDns.get('dual-stack.test'));
  });

  it('passes DNS failures through unchanged', async () => {
    const { err } = await resolveWith(createAddressPolicy(), 'does-not-exist.invalid');
    expect(err?.code).toMatch(/^(ENOTFOUND|EAI_AGAIN)$/);
  });
});

describe('parseAllowList', () => {
  it('reads comma-separated IPs and CIDRs, ignoring blanks and spaces', () => {
    expect(parseAllowList(' 127.0.0.1/32, ::1 ,10.0.0.0/8,,fd00::/8 ')).toEqual(['127.0.0.1/32', '::1', '10.0.0.0/8', 'fd00::/8']);
  });

  it('gives an empty list when unset or empty', () => {
    expect(parseAllowList(undefined)).toEqual([]);
    expect(parseAllowList('')).toEqual([]);
  });

  it.each(['localhost', '10.0.0.0/33', '::1/129', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/-1', '10.0.0.0/abc', 'fe80::1%eth0', '300.1.1.1'])(
    'throws an error naming the bad entry %s',
    (entry) => {
      expect(() => parseAllowList(`127.0.0.1, ${entry}`)).toThrow(entry);
    },
  );
});

describe('checkWebhookUrl', () => {
  const policy = createAddressPolicy();
  const codes = (url: string, p: AddressPolicy = policy) => checkWebhookUrl(url, p).map((problem) => problem.code);

  it('accepts public http and https URLs, with ports, queries and fragments', () => {
    expect(checkWebhookUrl('https://hooks.example.com/inventory?token=abc#frag', policy)).toEqual([]);
    expect(checkWebhookUrl('http://8.8.8.8:8080/hook', policy)).toEqual([]);
    expect(checkWebhookUrl('https://[2606:4700::1111]/hook', policy)).toEqual([]);
  });

  it('does not resolve host names', () => {
    expect(checkWebhookUrl('https://resolves-to-anything.invalid/hook', policy)).toEqual([]);
  });

  it('rejects what is not a URL', () => {
    expect(codes('not a url')).toEqual(['invalid_url']);
    expect(codes('/relative/path')).toEqual(['invalid_url']);
  });

  it('rejects schemes other than http and https', () => {
    expect(codes('ftp://example.com/x')).toEqual(['scheme']);
    expect(codes('file:///etc/passwd')).toEqual(['scheme']);
    expect(codes('javascript:alert(1)')).toEqual(['scheme']);
  });

  it('rejects credentials in the URL', () => {
    expect(codes('https://user:pass@example.com/')).toEqual(['credentials']);
    expect(codes('https://user@example.com/')).toEqual(['credentials']);
  });

  it('rejects URLs longer than 2048 characters', () => {
    const base = 'https://example.com/';
    expect(codes(base + 'a'.repeat(2048 - base.length))).toEqual([]);
    expect(codes(base + 'a'.repeat(2049 - base.length))).toEqual(['length']);
  });

  it('rejects blocked IP literals, however the address is spelled', () => {
    for (const url of [
      'http://127.0.0.1/',
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1:8080/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://[fd00:ec2::254]/',
      'http://2130706433/', // 127.0.0.1 as one decimal number
      'http://0x7f.1/', // and in hex shorthand
      'http://0/',
    ]) {
      expect(codes(url), url).toEqual(['blocked_address']);
    }
  });

  it('rejects localhost and *.localhost unless 127.0.0.1 is allowed', () => {
    for (const url of ['http://localhost:3000/', 'http://LOCALHOST/', 'http://localhost./', 'http://api.localhost/']) {
      expect(codes(url), url).toEqual(['blocked_address']);
    }
    const allowing = createAddressPolicy({ allow: LOOPBACK_ALLOWED });
    expect(codes('http://localhost:3000/', allowing)).toEqual([]);
    expect(codes('http://127.0.0.1:3000/', allowing)).toEqual([]);
    expect(codes('http://[::1]:3000/', allowing)).toEqual([]);
  });

  it('reports every problem at once, each with a sentence', () => {
    const problems = checkWebhookUrl('ftp://user:pw@127.0.0.1/', policy);
    expect(problems.map((problem) => problem.code)).toEqual(['scheme', 'credentials', 'blocked_address']);
    for (const problem of problems) expect(problem.message).toMatch(/^[A-Z].*\.$/);
  });
});
