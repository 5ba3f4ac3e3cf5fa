/**
 * A small client for OpenAI-compatible chat completions (OpenAI, Azure-style gateways, OpenRouter,
 * Ollama, vLLM, LiteLLM …): one POST to `{baseUrl}/chat/completions`, the first choice's text back.
 */

/** One message of a conversation. */
export type ChatMessage = { role: 'system' | 'user' | 'assistant'; content: string };

/** Where and with what the client talks. `baseUrl` has no trailing slash. */
export type ChatClientConfig = {
  baseUrl: string;
  model: string;
  apiKey?: string | undefined;
  /** Default CHAT_TIMEOUT_MS. */
  timeoutMs?: number;
};

export type ChatRequest = {
  messages: ChatMessage[];
  temperature?: number;
  /** Ask for a JSON object answer (`response_format: {type: "json_object"}`). */
  json?: boolean;
};

/** Generation is slow; a minute covers a long design without leaving a request hanging forever. */
export const CHAT_TIMEOUT_MS = 60_000;

/** Seconds suggested to a caller when the provider rate-limits without saying for how long. */
const DEFAULT_RETRY_AFTER = 30;

/**
 * The provider could not give an answer. `rate_limited` carries the provider's Retry-After (seconds);
 * `failed` covers HTTP errors, timeouts, network errors and bodies that are not a chat completion.
 */
export class ChatCompletionError extends Error {
  readonly reason: 'rate_limited' | 'failed';
  readonly status: number | undefined;
  readonly retryAfter: number | undefined;
  constructor(
    reason: 'rate_limited' | 'failed',
    message: string,
    options: { status?: number; retryAfter?: number } = {},
  ) {
    super(message);
    this.name = 'ChatCompletionError';
    this.reason = reason;
    this.status = options.status;
    this.retryAfter = options.retryAfter;
  }
}

/** A Retry-After header (delta-seconds or an HTTP date) as whole seconds from `now`; undefined if unusable. */
export function parseRetryAfter(value: string | null, now: Date = new Date()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const raw = value.trim();
  if (/^\d+$/.test(raw)) return Number(raw);
  const at = Date.parse(raw);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}

/**
 * Sends one chat-completions request and returns `choices[0].message.content`. Redirects are refused
 * so the API key is never replayed to another host. Throws ChatCompletionError on any failure.
 */
export async function chatCompletion(config: ChatClientConfig, request: ChatRequest): Promise<string> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (config.apiKey) headers['authorization'] = `Bearer ${config.apiKey}`;
  const body = {
    model: config.model,
    messages: request.messages,
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.json ? { response_format: { type: 'json_object' } } : {}),
  };
  let res: Response;
  try {
    res = await fetch(`${config.baseUrl}/chat/completions`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      redirect: 'error',
      signal: AbortSignal.timeout(config.timeoutMs ?? CHAT_TIMEOUT_MS),
    });
  } catch (err) {
    const e = err as Error;
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    throw new ChatCompletionError(
      'failed',
      timedOut
        ? 'the AI provider did not answer in time'
        : `the AI provider could not be reached (${e.message})`,
    );
  }
  if (res.status === 429) {
    await res.body?.cancel();
    throw new ChatCompletionError('rate_limited', 'the AI provider is rate limiting requests', {
      status: 429,
      retryAfter: parseRetryAfter(res.headers.get('retry-after')) ?? DEFAULT_RETRY_AFTER,
    });
  }
  if (!res.ok) {
    // The provider's own message helps an operator (bad model name, bad key); it is short and not secret.
    const detail = providerMessage(await res.text().catch(() => ''));
    throw new ChatCompletionError(
      'failed',
      `the AI provider answered HTTP ${res.status}${detail ? `: ${detail}` : ''}`,
      { status: res.status },
    );
  }
  let parsed: unknown;
  try {
    parsed = await res.json();
  } catch {
    throw new ChatCompletionError('failed', 'the AI provider answered with a body that is not JSON');
  }
  const content = (parsed as { choices?: { message?: { content?: unknown } }[] } | null)?.choices?.[0]
    ?.message?.content;
  if (typeof content !== 'string') {
    throw new ChatCompletionError('failed', 'the AI provider answered without choices[0].message.content');
  }
  return content;
}

/** `error.message` of an OpenAI-style error body, trimmed; empty when there is none. */
function providerMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const msg =
      typeof body.error === 'string'
        ? body.error
        : typeof body.error?.message === 'string'
          ? body.error.message
          : typeof body.message === 'string'
            ? body.message
            : '';
    return msg.slice(0, 300);
  } catch {
    return '';
  }
}
