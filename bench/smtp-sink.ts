/**
 * An SMTP sink for the delivery benchmarks, meant to run in its own process (`fork` it): it accepts
 * every message (no TLS, authentication optional), reads each to the end, and records when it was
 * accepted and for whom. The parent talks to it over IPC:
 *
 *   → { type: 'ready', port }                         once it listens (127.0.0.1, random port)
 *   ← { cmd: 'reset', id }                            forget everything received so far
 *   ← { cmd: 'stats', id }  → { id, count, first, last, distinct, duplicates, bytes }
 *   ← { cmd: 'times', id }  → { id, times }           acceptance times (epoch ms, sub-ms precision), in order
 *   ← { cmd: 'prefixes', id } → { id, prefixes }       deliveries by recipient prefix (local part before its
 *                                                      last run of digits), to check where messages came from
 *   ← { cmd: 'close', id }  → { id }                  then the process exits
 *
 * Times are `performance.timeOrigin + performance.now()`, comparable with the parent's clock to a
 * millisecond or so.
 */
import { SMTPServer } from 'smtp-server';

const now = () => performance.timeOrigin + performance.now();

let times: number[] = [];
let prefixes: Record<string, number> = {};
let recipients = new Set<string>();
let duplicates = 0;
let bytes = 0;

const server = new SMTPServer({
  logger: false,
  disabledCommands: ['STARTTLS'],
  authOptional: true,
  allowInsecureAuth: true,
  // The pools under test keep a handful of connections; this only guards against a runaway.
  maxClients: 1000,
  size: 10 * 1024 * 1024,
  onAuth(auth, _session, callback) {
    callback(null, { user: auth.username ?? 'anyone' });
  },
  onData(stream, session, callback) {
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
    });
    stream.on('end', () => {
      times.push(now());
      bytes += size;
      for (const rcpt of session.envelope.rcptTo) {
        const address = rcpt.address.toLowerCase();
        if (recipients.has(address)) duplicates++;
        else recipients.add(address);
        const prefix = address.replace(/\d+@.*$/, '');
        prefixes[prefix] = (prefixes[prefix] ?? 0) + 1;
      }
      callback(null, 'OK: queued');
    });
  },
});
server.on('error', (err) => console.error('smtp sink error:', err));

type Command = { cmd: 'reset' | 'stats' | 'times' | 'prefixes' | 'close'; id: number };

process.on('message', (message: Command) => {
  const reply = (payload: object) => process.send?.({ id: message.id, ...payload });
  switch (message.cmd) {
    case 'reset':
      times = [];
      prefixes = {};
      recipients = new Set();
      duplicates = 0;
      bytes = 0;
      reply({});
      break;
    case 'stats':
      reply({
        count: times.length,
        first: times[0] ?? null,
        last: times.at(-1) ?? null,
        distinct: recipients.size,
        duplicates,
        bytes,
      });
      break;
    case 'times':
      reply({ times });
      break;
    case 'prefixes':
      reply({ prefixes });
      break;
    case 'close':
      server.close(() => {
        reply({});
        process.disconnect();
        process.exit(0);
      });
      break;
  }
});
// The parent went away: do not linger.
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  const address = server.server.address();
  process.send?.({ type: 'ready', port: typeof address === 'object' && address ? address.port : 0 });
});
