// The email export transport against a real SMTP dialogue (the local smtp-server in test/smtp-server.ts).
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rejectedHubError, thrownHubError } from '../../../test/hub-error.ts';
import { startSmtpServer, type TestSmtpServer } from '../../../test/smtp-server.ts';
import { createEmailTarget, type EmailTargetOptions } from './email.ts';
import type { FileTarget } from './types.ts';

let smtp: TestSmtpServer;
const targets: FileTarget[] = [];

function target(options: Partial<EmailTargetOptions> = {}): FileTarget {
  const t = createEmailTarget({
    smtpUrl: smtp.url('hub', 'secret'),
    from: 'Inventory hub <hub@example.com>',
    to: ['buyer@example.com'],
    subject: 'Stock export',
    ...options,
  });
  targets.push(t);
  return t;
}

/** Some hundred KB of CSV, in many chunks as an exporter writes it. */
function csvChunks(rows: number): string[] {
  const chunks = ['sku,name,warehouse,quantity\r\n'];
  for (let i = 0; i < rows; i++) chunks.push(`SKU-${String(i).padStart(6, '0')},"Widget, size ${i % 40}",WH-${i % 7},${(i * 37) % 1000}\r\n`);
  return chunks;
}

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

describe('email target', () => {
  beforeEach(async () => {
    smtp = await startSmtpServer({ users: { hub: 'secret' }, rejectRecipients: ['nobody@example.com'] });
  });
  afterEach(async () => {
    await Promise.all(targets.splice(0).map((t) => t.close()));
    await smtp.close();
  });

  it('sends the file as the attachment of one message, byte for byte', async () => {
    const chunks = csvChunks(6000);
    const content = chunks.join('');
    expect(content.length).toBeGreaterThan(200_000);
    const { location } = await target({ cc: ['audit@example.com'], text: 'Nightly stock.' }).put('stock-2026-03-01.csv', Readable.from(chunks), { contentType: 'text/csv' });

    const [mail] = await smtp.waitFor(1);
    expect(location).toBe(mail!.messageId);
    expect(mail!.subject).toBe('Stock export');
    expect(mail!.from?.value).toEqual([{ name: 'Inventory hub', address: 'hub@example.com' }]);
    expect(mail!.to).toMatchObject({ value: [{ address: 'buyer@example.com' }] });
    expect(mail!.cc).toMatchObject({ value: [{ address: 'audit@example.com' }] });
    expect(mail!.envelope).toEqual({ mailFrom: 'hub@example.com', rcptTo: ['buyer@example.com', 'audit@example.com'] });
    expect(mail!.text?.trim()).toBe('Nightly stock.');
    expect(mail!.attachments).toHaveLength(1);
    const attachment = mail!.attachments[0]!;
    expect(attachment.filename).toBe('stock-2026-03-01.csv');
    expect(attachment.contentType).toBe('text/csv');
    expect(sha(attachment.content)).toBe(sha(content));
  });

  it('sends each export as its own message, with its own name and content type', async () => {
    const t = target();
    await t.put('a.csv', Readable.from(['a\n']), { contentType: 'text/csv' });
    await t.put('b.xml', Readable.from(['<b/>']), { contentType: 'application/xml' });
    const mails = await smtp.waitFor(2);
    expect(mails.map((m) => [m.attachments[0]!.filename, m.attachments[0]!.contentType])).toEqual([
      ['a.csv', 'text/csv'],
      ['b.xml', 'application/xml'],
    ]);
  });

  it('maps a refused password to upstream_auth_failed', async () => {
    const error = await rejectedHubError(target({ smtpUrl: smtp.url('hub', 'wrong') }).put('a.csv', Readable.from(['a']), { contentType: 'text/csv' }));
    expect({ code: error.code, retryable: error.retryable }).toEqual({ code: 'upstream_auth_failed', retryable: false });
    expect(error.message).toContain('535');
    expect(smtp.messages).toEqual([]);
  });

  it('maps missing credentials on a server that requires them to upstream_auth_failed', async () => {
    const error = await rejectedHubError(target({ smtpUrl: smtp.url() }).put('a.csv', Readable.from(['a']), { contentType: 'text/csv' }));
    expect(error.code).toBe('upstream_auth_failed');
  });

  it('maps a refused recipient to upstream_rejected', async () => {
    const error = await rejectedHubError(target({ to: ['nobody@example.com'] }).put('a.csv', Readable.from(['a']), { contentType: 'text/csv' }));
    expect({ code: error.code, retryable: error.retryable }).toEqual({ code: 'upstream_rejected', retryable: false });
    expect(error.message).toContain('550');
    expect(smtp.messages).toEqual([]);
  });

  it('reports a partly refused message without pretending it was not sent', async () => {
    const error = await rejectedHubError(target({ to: ['buyer@example.com', 'nobody@example.com'] }).put('a.csv', Readable.from(['a']), { contentType: 'text/csv' }));
    expect(error.code).toBe('upstream_rejected');
    expect(error.extra).toMatchObject({ rejected: ['nobody@example.com'], accepted: ['buyer@example.com'] });
    expect(await smtp.waitFor(1)).toHaveLength(1);
  });

  it('maps a closed port to upstream_unreachable', async () => {
    const closed = await startSmtpServer();
    const url = closed.url();
    await closed.close();
    const error = await rejectedHubError(target({ smtpUrl: url }).put('a.csv', Readable.from(['a']), { contentType: 'text/csv' }));
    expect({ code: error.code, retryable: error.retryable }).toEqual({ code: 'upstream_unreachable', retryable: true });
  });

  it('refuses an attachment over the limit before connecting, and says what to use instead', async () => {
    const error = await rejectedHubError(target({ maxBytes: 100_000 }).put('big.csv', Readable.from(csvChunks(3000)), { contentType: 'text/csv' }));
    expect(error.code).toBe('validation_failed');
    expect(error.message).toMatch(/more than the 100000 bytes.*another transport/);
    expect(error.errors).toEqual([expect.objectContaining({ field: '/maxBytes', code: 'too_large' })]);
    expect(smtp.connections).toBe(0);
  });

  it('sends nothing when the export fails mid-stream', async () => {
    const broken = new Readable({
      read() {
        this.push('sku,qty\n');
        this.destroy(new Error('the export broke'));
      },
    });
    await expect(target().put('a.csv', broken, { contentType: 'text/csv' })).rejects.toThrow('the export broke');
    expect(smtp.connections).toBe(0);
  });

  it('refuses bad addresses and settings, naming each field', () => {
    const error = thrownHubError(() =>
      createEmailTarget({
        smtpUrl: 'http://mail.example.com',
        from: 'hub at example.com',
        to: ['buyer@example.com', 'a@b.com, c@d.com', 'x@'],
        cc: ['Team: a@b.com;'],
        subject: 'Stock\r\nBcc: evil@example.com',
        maxBytes: 0,
      }),
    );
    expect(error.code).toBe('validation_failed');
    expect(error.errors?.map((e) => e.field)).toEqual(['/smtpUrl', '/from', '/to/1', '/to/2', '/cc/0', '/subject', '/maxBytes']);
    expect(thrownHubError(() => createEmailTarget({ smtpUrl: smtp.url(), from: 'hub@example.com', to: [], subject: 'x' })).errors?.map((e) => e.field)).toEqual(['/to']);
  });

  it('refuses an attachment name that could break the headers', async () => {
    const error = await rejectedHubError(target().put('a.csv\r\nX-Evil: 1', Readable.from(['a']), { contentType: 'text/csv' }));
    expect(error.code).toBe('validation_failed');
  });
});
