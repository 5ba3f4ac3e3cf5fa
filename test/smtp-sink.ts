/** An in-process SMTP server for tests, and a small reader for what reached it. */
import assert from 'node:assert/strict';
import { createHash, createVerify, type KeyObject } from 'node:crypto';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

// ---------------------------------------------------------------------------------------------
// A tiny RFC 5322 / MIME reader, enough to check what reached the SMTP server.

export type Parsed = { headerLines: string[]; headers: Map<string, string[]>; body: string };

/** Splits a raw message into unfolded headers (by lower-case name) and the body. */
export function parseMessage(raw: string): Parsed {
  const split = raw.indexOf('\r\n\r\n');
  const head = split === -1 ? raw : raw.slice(0, split);
  const body = split === -1 ? '' : raw.slice(split + 4);
  const headerLines: string[] = [];
  for (const line of head.split('\r\n')) {
    if (/^[ \t]/.test(line) && headerLines.length > 0) headerLines[headerLines.length - 1] += `\r\n${line}`;
    else headerLines.push(line);
  }
  const headers = new Map<string, string[]>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line
      .slice(colon + 1)
      .replace(/\r\n[ \t]/g, ' ')
      .trim();
    headers.set(name, [...(headers.get(name) ?? []), value]);
  }
  return { headerLines, headers, body };
}

export function header(p: Parsed, name: string): string | undefined {
  const values = p.headers.get(name.toLowerCase());
  assert.ok(!values || values.length === 1, `one ${name} header expected`);
  return values?.[0];
}

export function decodeQuotedPrintable(s: string): string {
  return s
    .replace(/=\r\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** The parts of a multipart body (headers + decoded content). */
export function parts(p: Parsed): { type: string; content: string }[] {
  const boundary = /boundary="?([^";]+)"?/.exec(header(p, 'content-type') ?? '')?.[1];
  assert.ok(boundary, 'multipart boundary');
  const chunks = p.body.split(`--${boundary}`).slice(1, -1);
  return chunks.map((chunk) => {
    const part = parseMessage(chunk.replace(/^\r\n/, ''));
    const encoding = header(part, 'content-transfer-encoding') ?? '7bit';
    const content = part.body.replace(/\r\n$/, '');
    return {
      type: (header(part, 'content-type') ?? '').split(';')[0]!.trim(),
      content:
        encoding === 'quoted-printable'
          ? decodeQuotedPrintable(content)
          : encoding === 'base64'
            ? Buffer.from(content, 'base64').toString('utf8')
            : content,
    };
  });
}

/** Verifies a relaxed/relaxed rsa-sha256 DKIM-Signature (RFC 6376 §3.4.2, §3.4.4, §3.7). */
export function verifyDkim(raw: string, publicKey: KeyObject): { d: string; s: string; h: string[] } {
  const parsed = parseMessage(raw);
  const sigLine = parsed.headerLines.find((l) => /^dkim-signature:/i.test(l));
  assert.ok(sigLine, 'DKIM-Signature header');
  const tags = new Map(
    sigLine
      .slice(sigLine.indexOf(':') + 1)
      .replace(/\s+/g, '')
      .split(';')
      .filter(Boolean)
      .map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)] as const),
  );
  assert.equal(tags.get('a'), 'rsa-sha256');
  assert.equal(tags.get('c'), 'relaxed/relaxed');

  const lines = parsed.body.split('\r\n').map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const canonicalBody = lines.length === 0 ? '' : `${lines.join('\r\n')}\r\n`;
  assert.equal(createHash('sha256').update(canonicalBody).digest('base64'), tags.get('bh'), 'body hash');

  const relaxed = (line: string) => {
    const colon = line.indexOf(':');
    const value = line
      .slice(colon + 1)
      .replace(/\r\n/g, '')
      .replace(/[ \t]+/g, ' ')
      .trim();
    return `${line.slice(0, colon).toLowerCase().trim()}:${value}`;
  };
  const signed = tags.get('h')!.split(':');
  const pool = [...parsed.headerLines];
  const input: string[] = [];
  for (const name of signed) {
    // Signed instances are taken from the bottom up; a name with no (remaining) instance is skipped.
    const index = pool.findLastIndex((l) => l.slice(0, l.indexOf(':')).toLowerCase() === name.toLowerCase());
    if (index === -1) continue;
    input.push(`${relaxed(pool[index]!)}\r\n`);
    pool.splice(index, 1);
  }
  input.push(
    relaxed(sigLine)
      .replace(/b=[^;]*$/, 'b=')
      .replace(/(;\s*)b=[^;]*;/, '$1b=;'),
  );
  const ok = createVerify('RSA-SHA256').update(input.join('')).verify(publicKey, tags.get('b')!, 'base64');
  assert.ok(ok, 'DKIM signature verifies');
  return { d: tags.get('d')!, s: tags.get('s')!, h: signed.map((n) => n.toLowerCase()) };
}

// ---------------------------------------------------------------------------------------------
// An in-process SMTP server.

export type Received = { from: string; to: string[]; raw: string };

export type Sink = { port: number; received: Received[]; authAttempts: string[]; close(): Promise<void> };

export function codeError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export async function startSink(options: Partial<SMTPServerOptions> = {}): Promise<Sink> {
  const received: Received[] = [];
  const authAttempts: string[] = [];
  const server = new SMTPServer({
    logger: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    onAuth(auth, _session, callback) {
      authAttempts.push(`${auth.username}:${auth.password}`);
      if (auth.username === 'mailer' && auth.password === 's3cret/pw')
        return callback(null, { user: 'mailer' });
      return callback(codeError(535, 'Authentication failed'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
    ...options,
  });
  // A client killed mid-session resets its connection: that is the crash tests' point, not an error.
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  assert.ok(address && typeof address === 'object');
  return {
    port: address.port,
    received,
    authAttempts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
