import Type from 'typebox';
import type { Services } from '../../domain/services.ts';
import { GOAL_MAX_LENGTH, PROMPT_VERSION, TEMPLATE_CATEGORIES } from '../../domain/templates/generate.ts';
import { tenant } from '../plugins/auth.ts';
import { errors, JsonObject, ref, StringEnum } from '../schemas/common.ts';
import { TemplateDesign } from '../schemas/template.ts';
import type { TypedApp } from '../typed.ts';

const GenerateBody = Type.Object({
  goal: Type.String({
    minLength: 1,
    maxLength: GOAL_MAX_LENGTH,
    description: 'What the email should achieve, in plain words',
  }),
  category: Type.Optional(
    StringEnum(TEMPLATE_CATEGORIES, { description: 'Kind of email; the model picks one when omitted' }),
  ),
  tone: Type.Optional(
    Type.String({ maxLength: 500, description: 'Tone for this email; overrides the brand’s tone' }),
  ),
  sections: Type.Optional(
    Type.Array(JsonObject, {
      maxItems: 100,
      description: 'Refine mode: the existing design’s sections, improved rather than replaced',
    }),
  ),
});

const GeneratedTemplate = Type.Object({
  design: ref(TemplateDesign),
  subject: Type.String(),
  preheader: Type.String(),
  category: StringEnum(TEMPLATE_CATEGORIES),
  prompt_version: Type.String({
    description: `Version of the prompt that produced it, e.g. ${PROMPT_VERSION}`,
  }),
});

/** POST /v1/my/templates/generate: an AI-written design, subject and preheader (not stored). */
export function templateGenerateRoutes(app: TypedApp, services: Services): void {
  app.post(
    '/v1/my/templates/generate',
    {
      schema: {
        summary: 'Generate a template design with AI',
        description:
          'Writes a design document, subject and preheader for `goal` in the brand’s voice, colours and ' +
          'fonts, through the server’s OpenAI-compatible model (AI_BASE_URL, AI_MODEL). With `sections` ' +
          'it refines an existing design instead. The answer is validated against the component spec ' +
          '(one automatic repair round) and is not saved: create a template with it. Uses one unit of ' +
          'the account’s monthly AI allowance (429 `ai_allowance_exhausted` with Retry-After when spent). ' +
          '503 `ai_not_configured` when no model is configured, `ai_provider_error` when the provider ' +
          'fails, `ai_invalid_output` when its answer is unusable; 429 `ai_rate_limited` passes the ' +
          'provider’s Retry-After on.',
        tags: ['Templates'],
        operationId: 'generateTemplate',
        body: GenerateBody,
        response: { 200: GeneratedTemplate, ...errors(400, 401, 403, 404, 413, 422, 429, 503) },
      },
    },
    async (request) => {
      const p = tenant(request);
      return services.templateGeneration.generate({ account: p.account, brand: p.brand }, request.body);
    },
  );
}
