import Type from 'typebox';
import { DateTime, JsonObject, Nullable, PageQuery } from './common.ts';

const SECTION_TYPES = [
  'header',
  'hero',
  'text',
  'image',
  'button',
  'columns',
  'product',
  'social',
  'divider',
  'spacer',
  'footer',
];

/** A design section as stored and returned (props and styles per `GET /v1/my/templates/spec`). */
const DesignSection = Type.Object(
  {
    id: Type.Optional(Type.String()),
    type: Type.String({ enum: SECTION_TYPES }),
    props: Type.Optional(JsonObject),
    styles: Type.Optional(JsonObject),
  },
  { additionalProperties: true },
);

/** The email design document: typed sections and theme overrides merged over the brand's theme. */
export const TemplateDesign = Type.Object(
  {
    version: Type.Optional(Type.Unknown()),
    sections: Type.Array(DesignSection),
    theme: Type.Optional(
      Type.Object(
        {
          brand_color: Type.Optional(Type.String()),
          bg_color: Type.Optional(Type.String()),
          text_color: Type.Optional(Type.String()),
          font_body: Type.Optional(Type.String()),
          font_heading: Type.Optional(Type.String()),
          logo_url: Type.Optional(Type.String()),
        },
        { additionalProperties: true },
      ),
    ),
  },
  { $id: 'TemplateDesign', additionalProperties: true, description: 'Email template design document' },
);

const TIMESTAMPS = { created_at: DateTime, updated_at: DateTime };

export const Template = Type.Object(
  {
    id: Type.Integer(),
    name: Nullable(Type.String()),
    flow_id: Nullable(Type.Integer({ description: 'The flow whose step owns the template, if any' })),
    action_id: Nullable(
      Type.Integer({ description: 'The flow step (action) that owns the template, if any' }),
    ),
    subject: Nullable(Type.String()),
    body: Nullable(Type.String({ description: 'Plain or HTML body, for templates without a design' })),
    preheader: Nullable(Type.String()),
    from_name: Nullable(Type.String()),
    from_email: Nullable(Type.String()),
    reply_to: Nullable(Type.String()),
    category: Nullable(Type.String()),
    design: Nullable(Type.Unsafe({ $ref: 'TemplateDesign#' })),
    variables: Type.Record(Type.String(), Nullable(Type.String()), {
      description:
        'Merge variables the template uses (e.g. `first_name`, `data.reset_url`), each with its `| default:` value or null',
    }),
    generation_id: Nullable(Type.Integer()),
    version: Type.Integer({ description: 'Increments on every change; send it back as `if_version`' }),
    ...TIMESTAMPS,
  },
  { $id: 'Template' },
);

export const TemplateSummary = Type.Object(
  {
    id: Type.Integer(),
    name: Nullable(Type.String()),
    subject: Nullable(Type.String()),
    preheader: Nullable(Type.String()),
    category: Nullable(Type.String()),
    flow_id: Nullable(Type.Integer()),
    action_id: Nullable(Type.Integer()),
    section_count: Type.Integer({ description: 'Top-level sections of the design' }),
    section_types: Type.Array(Type.String(), { description: 'Distinct top-level section types, in order' }),
    version: Type.Integer(),
    ...TIMESTAMPS,
  },
  { $id: 'TemplateSummary' },
);

export const EmailStarter = Type.Object(
  {
    id: Type.String(),
    category: Type.String(),
    name: Type.String(),
    description: Type.String(),
    icon: Type.String(),
    suggested_goals: Type.Array(Type.String()),
    design: Type.Unsafe({ $ref: 'TemplateDesign#' }),
    preview_html: Nullable(Type.String()),
  },
  { $id: 'EmailStarter' },
);

export const TemplateSpec = Type.Object(
  {
    version: Type.Integer(),
    design_guidelines: Type.String(),
    components: Type.Array(
      Type.Object(
        {
          type: Type.String(),
          description: Type.String(),
          tips: Type.Array(Type.String()),
          props: Type.Record(Type.String(), JsonObject),
        },
        { additionalProperties: true },
      ),
    ),
    common_styles: JsonObject,
    variables: Type.Array(Type.String()),
    theme_fields: Type.Array(Type.String()),
  },
  { $id: 'TemplateSpec', additionalProperties: true },
);

// Checked in full by the component registry (validateDesign), so every error names the section and prop.
const DesignInput = Nullable(
  Type.Object(
    {},
    {
      additionalProperties: true,
      description: 'Email template design document `{sections, theme}`; see `GET /v1/my/templates/spec`',
    },
  ),
);

const Text = (maxLength: number, description?: string) =>
  Nullable(Type.String({ maxLength, ...(description ? { description } : {}) }));
const Email = Nullable(Type.String({ format: 'email', maxLength: 320 }));

const FIELDS = {
  subject: Type.Optional(Text(998, 'Merge tags allowed, e.g. `{{ first_name | default: "there" }}`')),
  preheader: Type.Optional(Text(500, 'Hidden preview text; merge tags allowed')),
  body: Type.Optional(Text(1_000_000, 'Plain or HTML body for templates without a design')),
  from_name: Type.Optional(Text(255)),
  from_email: Type.Optional(Email),
  reply_to: Type.Optional(Email),
  category: Type.Optional(Text(64, 'welcome, newsletter, promotion, …')),
  generation_id: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))),
  design: Type.Optional(DesignInput),
};

const Name = Type.String({ minLength: 1, maxLength: 255 });

export const TemplateCreateBody = Type.Object({ name: Name, ...FIELDS });

export const TemplateUpdateBody = Type.Object({
  name: Type.Optional(Name),
  ...FIELDS,
  if_version: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'Only apply when the template is still at this version (else 409)',
    }),
  ),
});

export const TemplatePreviewBody = Type.Object({
  document: Type.Unknown({ description: 'Email template design document `{sections, theme}`' }),
});

export const TemplatePreview = Type.Object({ html: Type.String() }, { $id: 'TemplatePreview' });

export const TemplateListQuery = PageQuery;
