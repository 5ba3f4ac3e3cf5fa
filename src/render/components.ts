import { AppError, invalid, type ValidationErrors } from '../lib/errors.ts';
import { mergeTagError } from './merge.ts';

/**
 * The single registry of email sections. The same definitions validate designs, build
 * `GET /v1/my/templates/spec` (spec.ts) and drive rendering (mjml.ts), so they cannot drift apart.
 */

export type PropType =
  | 'string'
  | 'url'
  | 'color'
  | 'length'
  | 'number'
  | 'boolean'
  | 'enum'
  | 'html'
  | 'array';

export type PropDef = {
  type: PropType;
  required?: boolean;
  default?: unknown;
  description: string;
  enum?: readonly string[];
  /** For `array` props: the shape of each item (`sections` means a list of nested sections). */
  items?: Record<string, PropDef>;
  min_items?: number;
  max_items?: number;
  /** For `number` props. */
  min?: number;
  max?: number;
};

export type ComponentDef = {
  description: string;
  tips: readonly string[];
  props: Record<string, PropDef>;
};

const ALIGN = ['left', 'center', 'right'] as const;
const SOCIAL_PLATFORMS = [
  'facebook',
  'x',
  'twitter',
  'instagram',
  'linkedin',
  'youtube',
  'tiktok',
  'pinterest',
  'github',
  'snapchat',
  'vimeo',
  'medium',
  'tumblr',
  'web',
] as const;

/** Every section type, its props and advice for whoever (person or model) writes a design. */
export const COMPONENTS = {
  header: {
    description: 'Top band with the brand logo or a text wordmark.',
    tips: [
      'Use once, as the first section.',
      'Leave logo_url empty to use the brand logo; without a logo the wordmark text is shown.',
    ],
    props: {
      variant: {
        type: 'enum',
        enum: ['logo', 'wordmark', 'logo_and_wordmark'],
        default: 'logo',
        description: 'What the header shows.',
      },
      wordmark_text: { type: 'string', description: 'Text wordmark; defaults to the brand company name.' },
      logo_url: { type: 'url', description: 'Logo image URL; defaults to the theme or brand logo.' },
      logo_alt: { type: 'string', description: 'Alt text of the logo; defaults to the company name.' },
      logo_width: { type: 'length', default: '140px', description: 'Displayed logo width, e.g. "140px".' },
      background_color: { type: 'color', description: 'Band colour; defaults to the email background.' },
    },
  },
  hero: {
    description: 'Large headline with optional image, subtitle and call-to-action button.',
    tips: [
      'Keep the title under about 8 words; put detail in the subtitle.',
      'Give cta_text and cta_url together; one clear call to action converts best.',
    ],
    props: {
      image_url: { type: 'url', description: 'Full-width image shown above the title.' },
      title: { type: 'string', required: true, description: 'Headline. Merge tags allowed.' },
      subtitle: { type: 'string', description: 'Supporting sentence under the title.' },
      cta_text: { type: 'string', description: 'Button label.' },
      cta_url: { type: 'url', description: 'Button link; required when cta_text is set.' },
    },
  },
  text: {
    description: 'Rich text paragraph(s). HTML is allowed (p, a, strong, em, ul, ol, li, h1–h4, br, …).',
    tips: [
      'Short paragraphs read better on phones: two or three sentences each.',
      'Merge tags work here, e.g. "Hi {{ first_name | default: \'there\' }},".',
      'Scripts, styles, iframes, event handlers and javascript: links are removed.',
    ],
    props: {
      content: { type: 'html', required: true, description: 'The HTML content. Merge tags allowed.' },
    },
  },
  image: {
    description: 'A single image, optionally linked.',
    tips: ['Always set alt text: many clients block images by default.', 'Use public https URLs.'],
    props: {
      src: { type: 'url', required: true, description: 'Image URL (public https).' },
      alt: { type: 'string', default: '', description: 'Alternative text.' },
      href: { type: 'url', description: 'Link opened when the image is clicked.' },
      width: { type: 'length', description: 'Displayed width, e.g. "300px"; full width when empty.' },
    },
  },
  button: {
    description: 'A call-to-action button.',
    tips: ['Use a verb: "Shop the sale", "Reset password".', 'One primary button per email works best.'],
    props: {
      text: { type: 'string', required: true, description: 'Button label.' },
      href: { type: 'url', required: true, description: 'Button link.' },
      background_color: { type: 'color', description: 'Button fill; defaults to the brand colour.' },
      text_color: { type: 'color', default: '#ffffff', description: 'Label colour.' },
      section_background_color: { type: 'color', description: 'Colour of the band around the button.' },
      align: { type: 'enum', enum: ALIGN, default: 'center', description: 'Horizontal position.' },
      border_radius: { type: 'length', default: '6px', description: 'Corner radius.' },
      inner_padding: { type: 'length', default: '12px 24px', description: 'Padding inside the button.' },
      font_weight: {
        type: 'enum',
        enum: ['normal', 'bold', '400', '500', '600', '700', '800'],
        default: 'bold',
        description: 'Label weight.',
      },
      font_family: { type: 'string', description: 'Label font; defaults to the body font.' },
      text_transform: {
        type: 'enum',
        enum: ['none', 'uppercase', 'lowercase', 'capitalize'],
        default: 'none',
        description: 'Label case.',
      },
    },
  },
  columns: {
    description: 'Two or three side-by-side columns, each holding its own sections (no nested columns).',
    tips: [
      'Columns stack on phones; keep each column self-contained.',
      'Widths are percentages or pixels and should add up to 100% (omit them for equal columns).',
    ],
    props: {
      columns: {
        type: 'array',
        required: true,
        min_items: 2,
        max_items: 3,
        description: 'The columns, left to right.',
        items: {
          width: { type: 'length', description: 'Column width, e.g. "50%"; equal widths when omitted.' },
          sections: {
            type: 'array',
            required: true,
            description: 'Sections inside the column (any type except columns).',
          },
        },
      },
    },
  },
  product: {
    description: 'A product card: image, name, price, description and a buy button.',
    tips: ['Use square product images for a tidy grid inside columns.', 'Include the currency in price.'],
    props: {
      name: { type: 'string', required: true, description: 'Product name.' },
      price: { type: 'string', description: 'Display price, e.g. "$24.00".' },
      image_url: { type: 'url', description: 'Product image.' },
      href: { type: 'url', description: 'Product page link (image, name and button link here).' },
      description: { type: 'string', description: 'One or two sentences.' },
      cta_text: {
        type: 'string',
        default: 'Shop now',
        description: 'Button label (shown when href is set).',
      },
    },
  },
  social: {
    description: 'Row of social network icons.',
    tips: ['Leave links empty to use the brand links.', 'Three to five networks is plenty.'],
    props: {
      links: {
        type: 'array',
        max_items: 12,
        description: "Networks and profile URLs; defaults to the brand's social links.",
        items: {
          platform: { type: 'enum', enum: SOCIAL_PLATFORMS, required: true, description: 'Network.' },
          url: { type: 'url', required: true, description: 'Profile URL.' },
        },
      },
      align: { type: 'enum', enum: ALIGN, default: 'center', description: 'Horizontal position.' },
    },
  },
  divider: {
    description: 'A horizontal rule.',
    tips: ['Use sparingly: white space usually separates better than lines.'],
    props: {
      color: { type: 'color', default: '#e5e7eb', description: 'Line colour.' },
      width: { type: 'length', default: '1px', description: 'Line thickness.' },
      padding: { type: 'length', default: '16px 24px', description: 'Space around the line.' },
    },
  },
  spacer: {
    description: 'Vertical white space.',
    tips: ['16–32px between groups of content.'],
    props: {
      height: { type: 'length', default: '24px', description: 'Height of the space.' },
    },
  },
  footer: {
    description:
      'Closing block with the company name, physical address and unsubscribe link (filled in from the brand).',
    tips: [
      'Marketing emails always get this footer; add it yourself only to control where it sits and its text.',
      'The company name and address come from the brand settings.',
    ],
    props: {
      unsubscribe_text: {
        type: 'string',
        default: 'Unsubscribe',
        description: 'Label of the unsubscribe link.',
      },
      company_name: {
        type: 'string',
        description: 'Deprecated: used only when the brand has no company name.',
      },
      address: {
        type: 'string',
        description: 'Deprecated: used only when the brand has no physical address.',
      },
    },
  },
} as const satisfies Record<string, ComponentDef>;

export type SectionType = keyof typeof COMPONENTS;
export const SECTION_TYPES = Object.keys(COMPONENTS) as SectionType[];

/** Styles every section accepts, resolved after the section's own props. */
export const COMMON_STYLES = {
  background_color: { type: 'color', description: 'Background of the section band.' },
  padding: { type: 'length', description: 'CSS padding of the section, e.g. "24px" or "16px 24px".' },
  align: { type: 'enum', enum: ALIGN, description: 'Horizontal alignment of the content.' },
  font_size: { type: 'length', description: 'Base font size of the section text, e.g. "16px".' },
  text_color: { type: 'color', description: 'Text colour.' },
  border_radius: { type: 'length', description: 'Corner radius of buttons and images in the section.' },
} as const satisfies Record<string, PropDef>;

/** Theme fields; the design theme is merged over the brand's default theme and colours. */
export const THEME_FIELDS = {
  brand_color: { type: 'color', description: 'Accent colour: buttons, links.' },
  bg_color: { type: 'color', description: 'Email background.' },
  text_color: { type: 'color', description: 'Body text colour.' },
  font_body: { type: 'string', description: 'Body font (a Google Fonts name is loaded as a web font).' },
  font_heading: { type: 'string', description: 'Heading font.' },
  logo_url: { type: 'url', description: 'Logo used by the header.' },
} as const satisfies Record<string, PropDef>;

/** The merge variables templates may use, for the spec and for writers. */
export const MERGE_VARIABLES = [
  { name: 'contact.first_name', description: "Contact's first name", example: '{{ contact.first_name }}' },
  { name: 'contact.last_name', description: "Contact's last name", example: '{{ contact.last_name }}' },
  { name: 'contact.email', description: "Contact's email address", example: '{{ contact.email }}' },
  { name: 'contact.phone', description: "Contact's phone number", example: '{{ contact.phone }}' },
  { name: 'contact.data.*', description: 'A custom contact field', example: '{{ contact.data.plan }}' },
  {
    name: 'first_name',
    description: 'Short form of contact.first_name',
    example: "{{ first_name | default: 'there' }}",
  },
  { name: 'last_name', description: 'Short form of contact.last_name', example: '{{ last_name }}' },
  { name: 'email', description: 'Short form of contact.email', example: '{{ email }}' },
  { name: 'phone', description: 'Short form of contact.phone', example: '{{ phone }}' },
  { name: '<data key>', description: 'Custom contact fields at top level too', example: '{{ plan }}' },
  { name: 'brand.company_name', description: 'The brand company name', example: '{{ brand.company_name }}' },
  {
    name: 'unsubscribe_url',
    description: 'Unsubscribe link for this recipient',
    example: '{{ unsubscribe_url }}',
  },
  { name: 'event.*', description: 'The triggering event (flows)', example: '{{ event.resource_name }}' },
  { name: 'data.*', description: 'Data passed with a transactional message', example: '{{ data.order_id }}' },
] as const;

export type Styles = {
  background_color?: string;
  padding?: string;
  align?: 'left' | 'center' | 'right';
  font_size?: string;
  text_color?: string;
  border_radius?: string;
};

export type Theme = {
  brand_color?: string;
  bg_color?: string;
  text_color?: string;
  font_body?: string;
  font_heading?: string;
  logo_url?: string;
};

export type Section = {
  id?: string;
  type: SectionType;
  props: Record<string, unknown>;
  styles: Styles;
};

export type Design = { version?: number; sections: Section[]; theme: Theme };

/** Bounds that keep one design from costing unbounded render time or storage. */
export const DESIGN_LIMITS = { sections: 100, text_bytes: 200_000, string_chars: 20_000 } as const;

const HEX = /^#(?:[0-9a-f]{3}|[0-9a-f]{4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;
const FUNC_COLOR = /^(?:rgb|rgba|hsl|hsla)\(\s*[\d.%\s,/]+\)$/i;
const NAMED_COLORS = new Set([
  'transparent',
  'white',
  'black',
  'red',
  'green',
  'blue',
  'gray',
  'grey',
  'orange',
  'yellow',
  'purple',
  'pink',
  'navy',
  'teal',
  'silver',
  'maroon',
  'olive',
  'lime',
  'aqua',
  'fuchsia',
]);
const LENGTH_ONE = /^(?:0|\d+(?:\.\d+)?(?:px|%|em|rem|pt))$/;

/** True for a CSS colour we can put in an email attribute safely. */
export function isColor(value: string): boolean {
  return HEX.test(value) || FUNC_COLOR.test(value) || NAMED_COLORS.has(value.toLowerCase());
}

/** True for one to four CSS lengths ("12px", "8px 16px", "50%"). */
export function isLength(value: string): boolean {
  const parts = value.trim().split(/\s+/);
  return parts.length >= 1 && parts.length <= 4 && parts.every((p) => LENGTH_ONE.test(p));
}

const MERGE_TAG = /\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g;

/**
 * True for a link we will put in an email: http(s), mailto:, tel:, an in-page anchor, or a merge tag
 * (alone or inside an http(s) URL, e.g. `{{ unsubscribe_url }}`, `https://x.test/?e={{ email }}`).
 */
export function isSafeUrl(value: string): boolean {
  const v = value.trim();
  if (v.length === 0 || /[\s<>"]/.test(v.replace(MERGE_TAG, ''))) return false;
  if (/^\{\{[^}]*\}\}/.test(v)) return true;
  if (v.startsWith('#')) return true;
  const concrete = v.replace(MERGE_TAG, 'x');
  try {
    const url = new URL(concrete);
    return ['http:', 'https:', 'mailto:', 'tel:'].includes(url.protocol);
  } catch {
    return false;
  }
}

type Ctx = { errors: ValidationErrors; textBytes: number };

function add(ctx: Ctx, path: string, message: string): void {
  const list = ctx.errors[path] ?? [];
  list.push(message);
  ctx.errors[path] = list;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const TEXT_TYPES = new Set<PropType>(['string', 'url', 'html']);

/** Checks one value against its definition; returns the normalised value (or undefined when bad). */
function checkValue(def: PropDef, value: unknown, path: string, ctx: Ctx, depth: number): unknown {
  switch (def.type) {
    case 'string':
    case 'html':
    case 'url': {
      if (typeof value !== 'string') return add(ctx, path, 'must be a string');
      if (value.length > DESIGN_LIMITS.string_chars)
        return add(ctx, path, `must be at most ${DESIGN_LIMITS.string_chars} characters`);
      ctx.textBytes += Buffer.byteLength(value);
      if (def.type === 'url' && value !== '' && !isSafeUrl(value))
        return add(ctx, path, 'must be an http(s), mailto: or tel: URL or a merge tag');
      const tagError = TEXT_TYPES.has(def.type) ? mergeTagError(value) : null;
      if (tagError) return add(ctx, path, `has an invalid merge tag: ${tagError}`);
      return value;
    }
    case 'color':
      if (typeof value !== 'string' || !isColor(value.trim()))
        return add(ctx, path, 'must be a colour such as "#1a73e8"');
      return value.trim();
    case 'length':
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return `${value}px`;
      if (typeof value !== 'string' || !isLength(value))
        return add(ctx, path, 'must be a CSS length such as "12px" or "8px 16px"');
      return value.trim();
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return add(ctx, path, 'must be a number');
      if (def.min !== undefined && value < def.min) return add(ctx, path, `must be at least ${def.min}`);
      if (def.max !== undefined && value > def.max) return add(ctx, path, `must be at most ${def.max}`);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') return add(ctx, path, 'must be true or false');
      return value;
    case 'enum':
      if (typeof value !== 'string' || !def.enum?.includes(value))
        return add(ctx, path, `must be one of: ${def.enum?.join(', ')}`);
      return value;
    case 'array': {
      if (!Array.isArray(value)) return add(ctx, path, 'must be an array');
      if (def.min_items !== undefined && value.length < def.min_items)
        return add(ctx, path, `must have at least ${def.min_items} items`);
      if (def.max_items !== undefined && value.length > def.max_items)
        return add(ctx, path, `must have at most ${def.max_items} items`);
      if (!def.items) return value;
      return value.map((item, j) => checkObject(def.items!, item, `${path}[${j}]`, ctx, depth));
    }
  }
}

/** Validates an object of props against `defs` (unknown keys are errors, required ones must be present). */
function checkObject(
  defs: Record<string, PropDef>,
  input: unknown,
  path: string,
  ctx: Ctx,
  depth: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (input === undefined || input === null) input = {};
  if (!isPlainObject(input)) {
    add(ctx, path, 'must be an object');
    return out;
  }
  for (const [key, value] of Object.entries(input)) {
    const def = defs[key];
    if (!def) {
      add(ctx, `${path}.${key}`, 'is not a known property');
      continue;
    }
    if (value === null || value === undefined) continue;
    // Nested sections of a column are validated as sections, one level deep only.
    if (def.type === 'array' && key === 'sections') {
      out[key] = checkSections(value, `${path}.${key}`, ctx, depth + 1);
      continue;
    }
    const checked = checkValue(def, value, `${path}.${key}`, ctx, depth);
    if (checked !== undefined) out[key] = checked;
  }
  for (const [key, def] of Object.entries(defs)) {
    const v = input[key];
    if (def.required && (v === undefined || v === null || v === ''))
      add(ctx, `${path}.${key}`, 'is required');
  }
  return out;
}

function checkSections(input: unknown, path: string, ctx: Ctx, depth: number): Section[] {
  if (!Array.isArray(input)) {
    add(ctx, path, 'must be an array');
    return [];
  }
  return input.map((raw, i) => checkSection(raw, `${path}[${i}]`, ctx, depth));
}

function checkSection(raw: unknown, path: string, ctx: Ctx, depth: number): Section {
  const empty: Section = { type: 'spacer', props: {}, styles: {} };
  if (!isPlainObject(raw)) {
    add(ctx, path, 'must be an object');
    return empty;
  }
  for (const key of Object.keys(raw)) {
    if (!['id', 'type', 'props', 'styles'].includes(key))
      add(ctx, `${path}.${key}`, 'is not a known property');
  }
  const type = raw.type;
  if (typeof type !== 'string' || !(type in COMPONENTS)) {
    add(ctx, `${path}.type`, `must be one of: ${SECTION_TYPES.join(', ')}`);
    return empty;
  }
  if (type === 'columns' && depth > 0) {
    add(ctx, `${path}.type`, 'columns cannot be nested inside columns');
    return empty;
  }
  const def: ComponentDef = COMPONENTS[type as SectionType];
  const props = checkObject(def.props, raw.props, `${path}.props`, ctx, depth);
  const styles = checkObject(COMMON_STYLES, raw.styles, `${path}.styles`, ctx, depth) as Styles;
  if (type === 'hero' && props.cta_text && !props.cta_url)
    add(ctx, `${path}.props.cta_url`, 'is required with cta_text');
  const section: Section = { type: type as SectionType, props, styles };
  if (raw.id !== undefined) {
    if (typeof raw.id === 'string' || typeof raw.id === 'number') section.id = String(raw.id);
    else add(ctx, `${path}.id`, 'must be a string');
  }
  return section;
}

/**
 * Validates a design document and returns it normalised (defaults are applied at render time, not
 * stored). Throws 400 when it is not a design at all, 422 `invalid_design` naming each bad field.
 */
export function validateDesign(input: unknown): Design {
  if (!isPlainObject(input)) throw new AppError('bad_request', 'The design must be a JSON object');
  if (!Array.isArray(input.sections))
    throw new AppError('bad_request', 'The design must have a sections array', { errorCode: 'bad_request' });
  const ctx: Ctx = { errors: {}, textBytes: 0 };
  for (const key of Object.keys(input)) {
    if (!['version', 'sections', 'theme', 'id'].includes(key)) add(ctx, key, 'is not a known property');
  }
  if (input.sections.length > DESIGN_LIMITS.sections)
    add(ctx, 'sections', `must have at most ${DESIGN_LIMITS.sections} sections`);
  const sections =
    input.sections.length > DESIGN_LIMITS.sections ? [] : checkSections(input.sections, 'sections', ctx, 0);
  const theme = checkObject(THEME_FIELDS, input.theme, 'theme', ctx, 0) as Theme;
  if (ctx.textBytes > DESIGN_LIMITS.text_bytes)
    add(ctx, 'sections', `must hold at most ${DESIGN_LIMITS.text_bytes / 1000} KB of text`);
  if (input.version !== undefined && (typeof input.version !== 'number' || !Number.isInteger(input.version)))
    add(ctx, 'version', 'must be an integer');
  if (Object.keys(ctx.errors).length > 0) throw invalid(ctx.errors, undefined, 'invalid_design');
  const design: Design = { sections, theme };
  if (typeof input.version === 'number') design.version = input.version;
  return design;
}
