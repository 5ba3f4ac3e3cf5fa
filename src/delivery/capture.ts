import nodemailer from 'nodemailer';
import { type Clock, systemClock } from '../lib/clock.ts';
import type { Db } from '../store/db.ts';
import { insertOutboxMessage } from '../store/outbox.ts';
import { mailOptions } from './mime.ts';
import type { OutgoingMessage, SendContext, SendResult, Transport } from './transport.ts';

/**
 * The transport used when no SMTP server or provider is configured: every message is kept in the
 * `outbox` table (email as its full raw MIME, built by the same nodemailer pipeline SMTP uses, DKIM
 * included; SMS as its body) and reported as `provider: capture`. Nothing leaves the machine.
 */
export function createCaptureTransport(db: Db, clock: Clock = systemClock): Transport {
  // Builds the message without sending it; CRLF line ends make the stored text valid RFC 5322.
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  return {
    name: 'capture',
    channels: ['email', 'sms'] as const,
    // Capture never delivers, so a repeated send is harmless; it does not dedupe by key.
    dedupesByKey: false,
    async send(message: OutgoingMessage, context: SendContext): Promise<SendResult> {
      const scope = { account_id: context.account_id, brand_id: context.brand_id };
      const now = clock.now();
      let id: number;
      if (message.kind === 'email') {
        const info = await composer.sendMail(mailOptions(message, context.dkim ?? null));
        const mime = Buffer.isBuffer(info.message) ? info.message.toString('utf8') : '';
        id = await insertOutboxMessage(
          db,
          scope,
          {
            message_id: message.message_id ?? null,
            kind: 'email',
            to: message.to,
            from: message.from.name ? `${message.from.name} <${message.from.email}>` : message.from.email,
            subject: message.subject,
            mime,
            body: null,
          },
          now,
        );
      } else {
        id = await insertOutboxMessage(
          db,
          scope,
          {
            message_id: message.message_id ?? null,
            kind: 'sms',
            to: message.to,
            from: message.from ?? null,
            subject: null,
            mime: null,
            body: message.body,
          },
          now,
        );
      }
      return { status: 'sent', provider: 'capture', provider_id: `capture-${id}` };
    },
    async close() {
      composer.close();
    },
  };
}
