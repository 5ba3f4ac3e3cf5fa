import type { SendMailOptions } from 'nodemailer/lib/mailer';
import {
  type DkimKey,
  emailDomain,
  LIST_UNSUBSCRIBE_POST,
  listUnsubscribeHeader,
  MESSAGE_ID_HEADER,
  type OutgoingEmail,
} from './transport.ts';

/**
 * Headers covered by the DKIM signature: nodemailer's default list (RFC 6376 §5.4) plus
 * List-Unsubscribe-Post, which RFC 8058 §4 requires to be signed for one-click unsubscribe to count,
 * and our tracing header.
 */
export const DKIM_SIGNED_HEADERS = [
  'From',
  'Sender',
  'Reply-To',
  'Subject',
  'Date',
  'Message-ID',
  'To',
  'Cc',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
  'Content-ID',
  'Content-Description',
  'In-Reply-To',
  'References',
  'List-Id',
  'List-Help',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
  'List-Subscribe',
  'List-Post',
  'List-Owner',
  'List-Archive',
  'X-Mailwright-Message-Id',
].join(':');

/**
 * A stable Message-ID for our message id: the same message gets the same Message-ID on every
 * attempt, so a send that was accepted just before a crash can be traced at the receiving side.
 * Undefined without a message id (nodemailer then generates a random one).
 */
export function stableMessageId(email: OutgoingEmail): string | undefined {
  if (!email.message_id) return undefined;
  const domain = emailDomain(email.from.email) || 'mailwright.invalid';
  return `<mw.${email.message_id}@${domain}>`;
}

/**
 * Nodemailer message options for one email: From/To/Reply-To/Subject, html + text alternatives,
 * caller headers, our tracing header, the RFC 8058 List-Unsubscribe pair when set, a stable
 * Message-ID and, with a key, per-message DKIM signing. SMTP and capture both build from this, so
 * the captured MIME is what SMTP would have sent.
 */
export function mailOptions(email: OutgoingEmail, dkim?: DkimKey | null): SendMailOptions {
  const headers: Record<string, string> = { ...(email.headers ?? {}) };
  if (email.message_id) headers[MESSAGE_ID_HEADER] = email.message_id;
  if (email.list_unsubscribe) {
    headers['List-Unsubscribe'] = listUnsubscribeHeader(email.list_unsubscribe);
    headers['List-Unsubscribe-Post'] = LIST_UNSUBSCRIBE_POST;
  }
  const options: SendMailOptions = {
    from: email.from.name ? { name: email.from.name, address: email.from.email } : email.from.email,
    to: email.to,
    subject: email.subject,
    headers,
  };
  if (email.reply_to) options.replyTo = email.reply_to;
  if (email.html != null) options.html = email.html;
  if (email.text != null) options.text = email.text;
  if (email.text_encoding) options.textEncoding = email.text_encoding;
  const messageId = stableMessageId(email);
  if (messageId) options.messageId = messageId;
  if (dkim) {
    options.dkim = {
      domainName: dkim.domainName,
      keySelector: dkim.keySelector,
      privateKey: dkim.privateKey,
      headerFieldNames: DKIM_SIGNED_HEADERS,
    };
  }
  return options;
}
