import { COMMON_STYLES, COMPONENTS, MERGE_VARIABLES, type PropDef, THEME_FIELDS } from './components.ts';

/** Bumped whenever the registry changes in a way a design writer must know about. */
export const SPEC_VERSION = 1;

const DESIGN_GUIDELINES = [
  'An email is a list of sections rendered top to bottom in a 600px column. Start with a header, lead with ' +
    'one clear message (a hero or a short text), give one primary call to action, and end with a footer. ' +
    'Five to ten sections is typical; fewer, shorter sections read better on phones.',
  'Colours and fonts come from the brand: leave them out unless a section must differ. A value resolves in ' +
    'this order: the section props, then its styles, then the design theme, then the brand defaults. ' +
    'Colours are hex ("#1a73e8"); lengths are CSS strings ("16px", "8px 24px").',
  'Write for people skimming: a headline under about eight words, paragraphs of two or three sentences, ' +
    'buttons that say what happens ("Reset password", "Shop the sale"). Every image needs alt text, ' +
    'because many inboxes block images until asked.',
  'Personalise with merge tags such as {{ first_name | default: "there" }}; they work in any text, heading, ' +
    'button label or link. Marketing emails always get a footer with the company name, postal address and ' +
    'unsubscribe link; add a footer section yourself only to change where it sits or its link text.',
].join('\n\n');

type SpecProp = {
  type: PropDef['type'];
  required: boolean;
  default: unknown;
  description: string;
  enum?: string[];
  items?: Record<string, SpecProp>;
  min_items?: number;
  max_items?: number;
};

function specProps(props: Record<string, PropDef>): Record<string, SpecProp> {
  const out: Record<string, SpecProp> = {};
  for (const [name, def] of Object.entries(props)) {
    const prop: SpecProp = {
      type: def.type,
      required: def.required ?? false,
      default: def.default ?? null,
      description: def.description,
    };
    if (def.enum) prop.enum = [...def.enum];
    if (def.items) prop.items = specProps(def.items);
    if (def.min_items !== undefined) prop.min_items = def.min_items;
    if (def.max_items !== undefined) prop.max_items = def.max_items;
    out[name] = prop;
  }
  return out;
}

/** The body of `GET /v1/my/templates/spec`, derived from the component registry. */
export function templateSpec() {
  return {
    version: SPEC_VERSION,
    design_guidelines: DESIGN_GUIDELINES,
    components: Object.entries(COMPONENTS).map(([type, def]) => ({
      type,
      description: def.description,
      tips: [...def.tips],
      props: specProps(def.props),
    })),
    common_styles: specProps(COMMON_STYLES),
    // The API reference types `variables` as strings: each is a merge tag; details are alongside.
    variables: MERGE_VARIABLES.map((v) => v.name),
    variable_details: MERGE_VARIABLES.map((v) => ({ ...v })),
    theme_fields: Object.keys(THEME_FIELDS),
    theme_field_details: specProps(THEME_FIELDS),
  };
}

export type TemplateSpec = ReturnType<typeof templateSpec>;
