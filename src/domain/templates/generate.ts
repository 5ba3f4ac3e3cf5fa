import type { Config } from '../../config.ts';
import { AppError, invalid, type ValidationErrors } from '../../lib/errors.ts';
import type { Design } from '../../render/components.ts';
import { validateDesign } from '../../render/components.ts';
import { templateSpec } from '../../render/spec.ts';
import { consumeUsageWithin } from '../../store/enrichment.ts';
import type { Account, Brand } from '../../store/schema.ts';
import { addUsage } from '../../store/usage.ts';
import { allowanceFor, planBySlug, usagePeriod } from '../accounts/plans.ts';
import {
  type ChatClientConfig,
  ChatCompletionError,
  type ChatMessage,
  chatCompletion,
} from '../ai/chat-completions.ts';
import type { Deps } from '../deps.ts';

/** Identifies the prompt wording; bumped whenever the prompt changes so answers can be traced to it. */
export const PROMPT_VERSION = '2026-11-23.1';

/** The kinds of email a template may be generated for (the starters use the same set). */
export const TEMPLATE_CATEGORIES = [
  'welcome',
  'newsletter',
  'promotion',
  'abandoned_cart',
  'order_confirmation',
  'password_reset',
  're_engagement',
  'product_announcement',
  'other',
] as const;

export type TemplateCategory = (typeof TEMPLATE_CATEGORIES)[number];

/** Longest accepted goal. */
export const GOAL_MAX_LENGTH = 2000;

/** Sampling temperature: varied copy, still following the schema. */
const TEMPERATURE = 0.7;

/** What the caller asks for. `sections` switches to refine mode. */
export type GenerateInput = {
  goal: string;
  category?: TemplateCategory | undefined;
  tone?: string | undefined;
  sections?: unknown[] | undefined;
};

/** A generated (not stored) template. */
export type GeneratedTemplate = {
  design: Design;
  subject: string;
  preheader: string;
  category: TemplateCategory;
  prompt_version: string;
};

/** The model's answer once it passed validation; `category` is the model's pick, if a known one. */
type ModelAnswer = {
  design: Design;
  subject: string;
  preheader: string;
  category: TemplateCategory | undefined;
};

const isCategory = (v: unknown): v is TemplateCategory =>
  typeof v === 'string' && (TEMPLATE_CATEGORIES as readonly string[]).includes(v);

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** The chat client settings, or 503 `ai_not_configured` naming the variables an operator must set. */
export function aiClientConfig(config: Pick<Config, 'aiBaseUrl' | 'aiModel' | 'aiApiKey'>): ChatClientConfig {
  if (!config.aiBaseUrl || !config.aiModel) {
    throw new AppError(
      'unavailable',
      'AI generation is not configured on this server: set AI_BASE_URL (an OpenAI-compatible API base, ' +
        'e.g. https://api.openai.com/v1) and AI_MODEL (and AI_API_KEY if the provider needs one)',
      { errorCode: 'ai_not_configured', extra: { retryable: false } },
    );
  }
  return { baseUrl: config.aiBaseUrl, model: config.aiModel, apiKey: config.aiApiKey };
}

/** The brand's voice, colours and fonts as prompt lines; empty fields are left out. */
function brandLines(brand: Brand): string[] {
  const lines: string[] = [];
  const add = (label: string, value: string | null | undefined, max = 2000) => {
    if (value && value.trim() !== '') lines.push(`- ${label}: ${clip(value.trim(), max)}`);
  };
  add('Company name', brand.company_name, 200);
  add('Company description', brand.company_description);
  add('Industry', brand.industry, 200);
  add('Tone of voice', brand.tone, 500);
  add('Style notes', brand.style_notes, 3000);
  const examples = (Array.isArray(brand.example_copy) ? brand.example_copy : [])
    .filter((e): e is string => typeof e === 'string' && e.trim() !== '')
    .slice(0, 5);
  if (examples.length > 0) {
    lines.push('- Example copy in the brand’s voice (match it, do not copy it):');
    for (const e of examples) lines.push(`  • ${JSON.stringify(clip(e.trim(), 1000))}`);
  }
  add('Brand (accent) colour', brand.brand_color, 32);
  add('Text colour', brand.text_color, 32);
  add('Background colour', brand.bg_color, 32);
  add('Heading font', brand.font_heading, 200);
  add('Body font', brand.font_body, 200);
  add('Logo URL', brand.logo, 2000);
  return lines;
}

/** The system prompt: what to answer, the rules, the component spec and the brand. */
export function systemPrompt(brand: Brand): string {
  const brandInfo = brandLines(brand);
  return [
    'You design emails for Mailwright, an email marketing platform. An email is a design document: an',
    'ordered list of typed sections plus an optional theme; Mailwright renders it to responsive HTML.',
    '',
    'Rules:',
    '1. Answer with ONLY one JSON object — no prose, no Markdown — of exactly this shape:',
    `   {"subject": string, "preheader": string, "category": one of ${JSON.stringify(TEMPLATE_CATEGORIES)},`,
    '    "design": {"sections": [{"type": ..., "props": {...}, "styles": {...}}, ...], "theme": {...} (optional)}}',
    '2. Use only the section types and props listed in the component spec below, with the types it gives;',
    '   always include required props. Section-level overrides go in "styles" (see common_styles); theme keys',
    '   are theme_fields. Do not invent other keys.',
    '3. Merge tags (Liquid) are allowed in text props, subject and preheader, e.g.',
    '   {{ contact.first_name | default: "there" }}; use only the variables listed in the spec.',
    '4. Do not invent image URLs. Use the brand logo URL below or URLs the user gives; otherwise leave',
    '   image props out or choose sections without images. Links may use https://example.com placeholders.',
    '5. The brand’s colours and fonts apply automatically; set "theme" only to depart from them. Use the',
    '   brand colours when a prop asks for a colour.',
    '6. Mailwright adds the footer (company name, postal address, unsubscribe link) to marketing emails;',
    '   add a footer section only to place it or change its text.',
    '7. Subject: under 60 characters. Preheader: 40–110 characters that complement the subject.',
    '8. Write in the brand’s voice described below; a tone given by the user overrides the brand tone.',
    '',
    'Component spec (JSON):',
    JSON.stringify(templateSpec()),
    '',
    ...(brandInfo.length > 0 ? ['Brand:', ...brandInfo] : ['Brand: no brand details are known yet.']),
  ].join('\n');
}

/** The user message: goal, category, tone and, in refine mode, the existing sections. */
export function userPrompt(input: GenerateInput, existing: unknown[] | undefined): string {
  const lines = [`Goal: ${input.goal.trim()}`];
  lines.push(
    input.category
      ? `Category: ${input.category}`
      : 'Category: choose the best fitting one and return it as "category".',
  );
  if (input.tone?.trim()) lines.push(`Tone: ${input.tone.trim()}`);
  if (existing) {
    lines.push(
      '',
      'Refine the existing email below rather than starting over: keep what serves the goal, improve the',
      'rest, and return the complete design with all its sections.',
      'Existing sections (JSON):',
      JSON.stringify(existing),
    );
  } else {
    lines.push('', 'Design a complete email for this goal.');
  }
  return lines.join('\n');
}

/** The JSON text inside a model answer: inside ```json fences if present, else from the first `{` to the last `}`. */
export function extractJson(content: string): string {
  const fenced = /```(?:json|JSON)?\s*([\s\S]*?)```/.exec(content);
  const text = (fenced ? fenced[1]! : content).trim();
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  return start >= 0 && end > start ? text.slice(start, end + 1) : text;
}

/** The model's answer checked against the design schema: the answer, or the errors to send back. */
export function parseAnswer(
  content: string,
): { ok: true; answer: ModelAnswer } | { ok: false; errors: ValidationErrors } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(extractJson(content));
  } catch (err) {
    return { ok: false, errors: { base: [`the answer is not valid JSON (${(err as Error).message})`] } };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, errors: { base: ['the answer must be a JSON object'] } };
  }
  const obj = parsed as Record<string, unknown>;
  const errors: ValidationErrors = {};
  const subject = typeof obj['subject'] === 'string' ? obj['subject'].trim() : '';
  if (subject === '') errors['subject'] = ['must be a non-empty string'];
  const preheaderRaw = obj['preheader'] ?? '';
  if (typeof preheaderRaw !== 'string') errors['preheader'] = ['must be a string'];
  // Some models put sections at the top level; that is the same design.
  const designRaw =
    obj['design'] ??
    (Array.isArray(obj['sections']) ? { sections: obj['sections'], theme: obj['theme'] } : undefined);
  let design: Design | undefined;
  if (designRaw === undefined) {
    errors['design'] = ['is missing: answer {"design": {"sections": [...]}}'];
  } else {
    try {
      design = validateDesign(designRaw);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (err.validationErrors) {
        for (const [field, messages] of Object.entries(err.validationErrors)) {
          errors[field === 'base' ? 'design' : `design.${field}`] = messages;
        }
      } else {
        errors['design'] = [err.message];
      }
    }
  }
  if (Object.keys(errors).length > 0 || !design) return { ok: false, errors };
  return {
    ok: true,
    answer: {
      design,
      subject,
      preheader: typeof preheaderRaw === 'string' ? preheaderRaw.trim() : '',
      category: isCategory(obj['category']) ? obj['category'] : undefined,
    },
  };
}

/** Validation errors as short lines for the repair message and the final error. */
function errorLines(errors: ValidationErrors, max = 30): string[] {
  return Object.entries(errors)
    .flatMap(([field, messages]) => messages.map((m) => `${field}: ${m}`))
    .slice(0, max);
}

/** The message that asks the model to fix its answer. */
export function repairPrompt(errors: ValidationErrors): string {
  return [
    'Your answer could not be used. It has these problems:',
    ...errorLines(errors).map((line) => `- ${line}`),
    'Answer again with the complete corrected JSON object only, following the rules and the component spec.',
  ].join('\n');
}

/** Whole seconds from `now` to the first instant of the next UTC month (when the AI allowance resets). */
export function secondsUntilNextPeriod(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}

/** Email design generation through an OpenAI-compatible chat-completions provider. */
export function createTemplateGenerationService(deps: Deps) {
  const { db, clock, config, log } = deps;

  /** One chat call, with provider failures mapped to the API's 429/503. */
  async function ask(client: ChatClientConfig, messages: ChatMessage[]): Promise<string> {
    try {
      return await chatCompletion(client, { messages, temperature: TEMPERATURE, json: true });
    } catch (err) {
      if (!(err instanceof ChatCompletionError)) throw err;
      log.warn({ err: err.message, status: err.status }, 'AI chat completion failed');
      if (err.reason === 'rate_limited') {
        throw new AppError('rate_limited', 'The AI provider is rate limiting requests; retry later', {
          errorCode: 'ai_rate_limited',
          retryAfter: err.retryAfter,
          extra: { retryable: true },
        });
      }
      throw new AppError('unavailable', `AI generation failed: ${err.message}`, {
        errorCode: 'ai_provider_error',
        extra: { retryable: true },
      });
    }
  }

  /** Asks, validates, and asks once more with the errors if the first answer is unusable. */
  async function converse(client: ChatClientConfig, messages: ChatMessage[]): Promise<ModelAnswer> {
    const first = await ask(client, messages);
    const firstResult = parseAnswer(first);
    if (firstResult.ok) return firstResult.answer;
    const second = await ask(client, [
      ...messages,
      { role: 'assistant', content: first },
      { role: 'user', content: repairPrompt(firstResult.errors) },
    ]);
    const secondResult = parseAnswer(second);
    if (secondResult.ok) return secondResult.answer;
    log.warn({ errors: secondResult.errors }, 'AI answer invalid after repair');
    throw new AppError(
      'unavailable',
      `The AI model did not produce a valid design, even after one repair attempt (${errorLines(
        secondResult.errors,
        3,
      ).join('; ')}); try again or rephrase the goal`,
      { errorCode: 'ai_invalid_output', extra: { retryable: true } },
    );
  }

  /** Reserves one use of the month's AI allowance, or answers 429 `ai_allowance_exhausted`. */
  async function reserve(account: Account, now: Date, period: string): Promise<boolean> {
    const plan = planBySlug(account.plan);
    const allowance = allowanceFor(plan, 'ai', account.created_at, now);
    // Unlimited: counted after success only, so there is nothing to give back.
    if (allowance === null) return false;
    if (!(await consumeUsageWithin(db, account.id, 'ai', period, 1, allowance))) {
      throw new AppError(
        'rate_limited',
        `AI allowance exhausted: the ${plan.name} plan includes ${allowance} AI generations a month`,
        { errorCode: 'ai_allowance_exhausted', retryAfter: secondsUntilNextPeriod(now) },
      );
    }
    return true;
  }

  return {
    /**
     * Generates a design with subject and preheader for `input.goal` in the brand's voice (or refines
     * `input.sections`). Not stored. Uses one unit of the account's monthly AI allowance, reserved
     * before the provider is called (so concurrent requests cannot overdraw) and given back if
     * generation fails.
     */
    async generate(
      scope: { account: Account; brand: Brand },
      input: GenerateInput,
    ): Promise<GeneratedTemplate> {
      if (input.goal.trim() === '') throw invalid({ goal: ["can't be blank"] });
      let existing: unknown[] | undefined;
      if (input.sections && input.sections.length > 0) {
        // The sections to refine must be a valid design themselves; errors name `sections[i]…`.
        existing = validateDesign({ sections: input.sections }).sections;
      }
      const client = aiClientConfig(config);
      const messages: ChatMessage[] = [
        { role: 'system', content: systemPrompt(scope.brand) },
        { role: 'user', content: userPrompt(input, existing) },
      ];

      const now = clock.now();
      const period = usagePeriod(now);
      const reserved = await reserve(scope.account, now, period);
      let answer: ModelAnswer;
      try {
        answer = await converse(client, messages);
      } catch (err) {
        // No design was delivered, so no use is owed; a failing refund must not hide the cause.
        if (reserved) await addUsage(db, scope.account.id, 'ai', period, -1).catch(() => {});
        throw err;
      }
      if (!reserved) await addUsage(db, scope.account.id, 'ai', period, 1);
      return {
        design: answer.design,
        subject: answer.subject,
        preheader: answer.preheader,
        category: input.category ?? answer.category ?? 'other',
        prompt_version: PROMPT_VERSION,
      };
    },
  };
}

export type TemplateGenerationService = ReturnType<typeof createTemplateGenerationService>;
