import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../src/lib/errors.ts';
import {
  COMMON_STYLES,
  COMPONENTS,
  type Design,
  THEME_FIELDS,
  validateDesign,
} from '../src/render/components.ts';
import { MERGE_LIMITS, mergeTagError } from '../src/render/merge.ts';
import { sanitizeHtml } from '../src/render/mjml.ts';
import {
  type BrandRenderContext,
  brandRenderContext,
  type CompiledEmail,
  compileDesign,
  compileUncached,
  personalize,
  preferredEncoding,
  renderText,
} from '../src/render/render.ts';
import { templateSpec } from '../src/render/spec.ts';

const brand: BrandRenderContext = brandRenderContext({
  company_name: 'Acme Outdoors',
  physical_address: '12 Harbour Road, Bristol BS1 5TT',
  logo: 'https://cdn.acme.test/logo.png',
  brand_color: '#aa0000',
  bg_color: '#fafafa',
  text_color: '#111111',
  font_heading: 'Montserrat',
  font_body: 'Georgia, serif',
  default_theme: {},
  links: [{ url: 'https://instagram.com/acme' }, { url: 'https://acme.test/about' }],
});

function design(sections: unknown[], theme: Record<string, unknown> = {}): Design {
  return validateDesign({ sections, theme });
}

async function compile(sections: unknown[], options = { marketing: false }, theme = {}, ctx = brand) {
  return compileDesign(design(sections, theme), ctx, options);
}

/** The validation_errors of a design that must fail, asserting it fails with 422 invalid_design. */
function errorsOf(input: unknown): Record<string, string[]> {
  try {
    validateDesign(input);
  } catch (error) {
    assert.ok(error instanceof AppError);
    assert.equal(error.status, 422);
    assert.equal(error.errorCode, 'invalid_design');
    return error.validationErrors ?? {};
  }
  assert.fail('design was accepted');
}

/** The opening tag of the first `tag` element in MJML, for attribute assertions. */
function tagOf(mjml: string, tag: string): string {
  const body = mjml.slice(mjml.indexOf('<mj-body'));
  const match = new RegExp(`<${tag}\\b[^>]*>`).exec(body);
  assert.ok(match, `${tag} not found`);
  return match[0];
}

describe('section types (golden)', () => {
  it('header: brand logo as mj-image, wordmark as text', async () => {
    const logo = await compile([{ type: 'header', props: { logo_width: '120px' } }]);
    const img = tagOf(logo.mjml, 'mj-image');
    assert.match(img, /src="https:\/\/cdn\.acme\.test\/logo\.png"/);
    assert.match(img, /width="120px"/);
    assert.match(img, /alt="Acme Outdoors"/);
    assert.match(logo.html, /<img[^>]+src="https:\/\/cdn\.acme\.test\/logo\.png"/);

    const word = await compile([
      { type: 'header', props: { variant: 'wordmark', wordmark_text: 'ACME & Co' } },
    ]);
    assert.doesNotMatch(word.mjml.slice(word.mjml.indexOf('<mj-body')), /<mj-image/);
    assert.match(tagOf(word.mjml, 'mj-text'), /font-family="Montserrat, Helvetica, Arial, sans-serif"/);
    assert.match(word.html, /ACME &amp; Co/);
  });

  it('hero: heading, subtitle and a brand-coloured CTA button', async () => {
    const c = await compile([
      {
        type: 'hero',
        props: {
          image_url: 'https://img.test/hero.jpg',
          title: 'Summer sale',
          subtitle: 'Up to 50% off',
          cta_text: 'Shop now',
          cta_url: 'https://acme.test/sale',
        },
      },
    ]);
    assert.match(tagOf(c.mjml, 'mj-image'), /src="https:\/\/img\.test\/hero\.jpg"/);
    const button = tagOf(c.mjml, 'mj-button');
    assert.match(button, /href="https:\/\/acme\.test\/sale"/);
    assert.match(button, /background-color="#aa0000"/);
    assert.match(c.html, /<h1[^>]*>Summer sale<\/h1>/);
    assert.match(c.html, /Up to 50% off/);
    assert.match(c.html, /href="https:\/\/acme\.test\/sale"[^>]*>/);
    assert.match(c.html, /#aa0000/);
  });

  it('text: sanitized HTML inside mj-text with brand-coloured links', async () => {
    const c = await compile([
      {
        type: 'text',
        props: { content: '<p>Hello <strong>world</strong> <a href="https://acme.test/x">read</a></p>' },
      },
    ]);
    assert.match(c.mjml, /<mj-text[^>]*color="#111111"[^>]*><p>Hello <strong>world<\/strong>/);
    assert.match(c.html, /<a href="https:\/\/acme\.test\/x" style="color:#aa0000;">read<\/a>/);
  });

  it('image: src, alt, link and width', async () => {
    const c = await compile([
      {
        type: 'image',
        props: {
          src: 'https://img.test/a.png',
          alt: 'A "quoted" tent',
          href: 'https://acme.test/t',
          width: '300px',
        },
      },
    ]);
    const img = tagOf(c.mjml, 'mj-image');
    assert.match(img, /alt="A &quot;quoted&quot; tent"/);
    assert.match(img, /href="https:\/\/acme\.test\/t"/);
    assert.match(img, /width="300px"/);
    assert.match(
      c.html,
      /<a\s+href="https:\/\/acme\.test\/t"[^>]*>\s*<img\s+alt="A &quot;quoted&quot; tent"/,
    );
  });

  it('button: every styling prop reaches mj-button', async () => {
    const c = await compile([
      {
        type: 'button',
        props: {
          text: 'Reset password',
          href: 'https://acme.test/reset',
          background_color: '#00aa00',
          text_color: '#000000',
          section_background_color: '#eeeeee',
          align: 'left',
          border_radius: '0px',
          inner_padding: '10px 20px',
          font_weight: '600',
          text_transform: 'uppercase',
        },
      },
    ]);
    const button = tagOf(c.mjml, 'mj-button');
    for (const attr of [
      'background-color="#00aa00"',
      'color="#000000"',
      'align="left"',
      'border-radius="0px"',
      'inner-padding="10px 20px"',
      'font-weight="600"',
      'text-transform="uppercase"',
    ])
      assert.ok(button.includes(attr), `${attr} missing in ${button}`);
    assert.match(tagOf(c.mjml, 'mj-section'), /background-color="#eeeeee"/);
    assert.match(c.html, /Reset password/);
    assert.match(c.html, /#00aa00/);
  });

  it('columns: one mj-section with 2 mj-columns holding nested sections', async () => {
    const c = await compile([
      {
        type: 'columns',
        props: {
          columns: [
            {
              width: '40%',
              sections: [{ type: 'image', props: { src: 'https://img.test/l.png', alt: 'left' } }],
            },
            { width: '60%', sections: [{ type: 'text', props: { content: '<p>Right side</p>' } }] },
          ],
        },
      },
    ]);
    assert.equal(c.mjml.match(/<mj-section/g)?.length, 1);
    assert.equal(c.mjml.match(/<mj-column/g)?.length, 2);
    assert.match(c.mjml, /<mj-column width="40%"><mj-image/);
    assert.match(c.mjml, /<mj-column width="60%"><mj-text/);
    assert.match(c.html, /Right side/);
    assert.match(c.html, /mj-column-per-40/);
  });

  it('product: image, name, price, description and button linked to href', async () => {
    const c = await compile([
      {
        type: 'product',
        props: {
          name: 'Trail tent',
          price: '$199',
          image_url: 'https://img.test/tent.png',
          href: 'https://acme.test/tent',
          description: 'Sleeps two.',
        },
      },
    ]);
    assert.match(tagOf(c.mjml, 'mj-image'), /href="https:\/\/acme\.test\/tent"/);
    assert.match(tagOf(c.mjml, 'mj-button'), /href="https:\/\/acme\.test\/tent"/);
    for (const text of ['Trail tent', '$199', 'Sleeps two.', 'Shop now'])
      assert.ok(c.html.includes(text), text);
  });

  it('social: given links, or the brand social links by default', async () => {
    const c = await compile([
      {
        type: 'social',
        props: { links: [{ platform: 'facebook', url: 'https://facebook.com/acme' }], align: 'left' },
      },
    ]);
    assert.match(tagOf(c.mjml, 'mj-social'), /align="left"/);
    assert.match(c.mjml, /<mj-social-element name="facebook-noshare" href="https:\/\/facebook\.com\/acme"/);
    assert.match(c.html, /href="https:\/\/facebook\.com\/acme"/);
    const fallback = await compile([{ type: 'social', props: {} }]);
    assert.match(fallback.mjml, /name="instagram" href="https:\/\/instagram\.com\/acme"/);
    assert.doesNotMatch(fallback.mjml, /acme\.test\/about/);
  });

  it('divider and spacer', async () => {
    const c = await compile([
      { type: 'divider', props: { color: '#cccccc', width: '2px', padding: '4px 0' } },
      { type: 'spacer', props: { height: '40px' } },
    ]);
    assert.match(tagOf(c.mjml, 'mj-divider'), /border-color="#cccccc" border-width="2px" padding="4px 0"/);
    assert.match(tagOf(c.mjml, 'mj-spacer'), /height="40px"/);
    assert.match(c.html, /border-top:solid 2px #cccccc/);
    assert.match(c.html, /height:40px/);
  });

  it('footer: brand company name, address and the unsubscribe link', async () => {
    const c = await compile([{ type: 'footer', props: { unsubscribe_text: 'Opt out' } }], {
      marketing: true,
    });
    assert.match(c.html, /Acme Outdoors/);
    assert.match(c.html, /12 Harbour Road, Bristol BS1 5TT/);
    assert.match(c.html, /<a href="\{\{ unsubscribe_url \}\}"[^>]*>Opt out<\/a>/);
    assert.equal(
      c.html.match(/Opt out|>Unsubscribe</g)?.length,
      1,
      'the design footer carries it, no second one',
    );
  });

  it('every registered type renders (registry and renderer agree)', async () => {
    const minimal: Record<string, unknown> = {
      header: {},
      hero: { title: 'T' },
      text: { content: 'x' },
      image: { src: 'https://i.test/a.png' },
      button: { text: 'B', href: 'https://b.test' },
      columns: { columns: [{ sections: [] }, { sections: [] }] },
      product: { name: 'P' },
      social: { links: [{ platform: 'x', url: 'https://x.com/a' }] },
      divider: {},
      spacer: {},
      footer: {},
    };
    assert.deepEqual(Object.keys(minimal).sort(), Object.keys(COMPONENTS).sort());
    const c = await compile(Object.entries(minimal).map(([type, props]) => ({ type, props })));
    assert.equal(c.mjml.match(/<mj-section/g)?.length, 11);
  });
});

describe('theme resolution', () => {
  it('prop beats style beats design theme beats brand default_theme beats brand colours', async () => {
    const ctx: BrandRenderContext = { ...brand, default_theme: { bg_color: '#333333' } };
    const section = (props: object, styles: object) => [
      { type: 'header', props: { variant: 'wordmark', ...props }, styles },
    ];
    const band = async (props: object, styles: object, theme: object, context = ctx) =>
      tagOf((await compile(section(props, styles), { marketing: false }, theme, context)).mjml, 'mj-section');
    assert.match(
      await band({ background_color: '#000001' }, { background_color: '#000002' }, { bg_color: '#000003' }),
      /#000001/,
    );
    assert.match(await band({}, { background_color: '#000002' }, { bg_color: '#000003' }), /#000002/);
    assert.match(await band({}, {}, { bg_color: '#000003' }), /#000003/);
    assert.match(await band({}, {}, {}), /#333333/);
    assert.match(await band({}, {}, {}, brand), /#fafafa/);
    assert.match(await band({}, {}, {}, brandRenderContext({ ...brandRow(), bg_color: null })), /#ffffff/);
  });

  it('text colour and fonts: style → theme → brand; Google fonts load as mj-font', async () => {
    const text = [{ type: 'text', props: { content: 'x' }, styles: { text_color: '#010101' } }];
    assert.match(
      tagOf((await compile(text, { marketing: false }, { text_color: '#020202' })).mjml, 'mj-text'),
      /#010101/,
    );
    const plain = [{ type: 'text', props: { content: 'x' } }];
    const themed = await compile(plain, { marketing: false }, { text_color: '#020202', font_body: 'Lato' });
    assert.match(tagOf(themed.mjml, 'mj-text'), /#020202/);
    assert.match(
      themed.mjml,
      /<mj-font name="Lato" href="https:\/\/fonts\.googleapis\.com\/css2\?family=Lato/,
    );
    assert.match(themed.mjml, /<mj-all font-family="Lato, Helvetica, Arial, sans-serif"/);
    const branded = await compile(plain);
    assert.match(tagOf(branded.mjml, 'mj-text'), /#111111/);
    assert.match(branded.mjml, /<mj-all font-family="Georgia, serif"/);
    assert.match(branded.mjml, /<mj-font name="Montserrat"/);
    assert.doesNotMatch(branded.mjml, /<mj-font name="Georgia"/);
  });

  it('headings inside text sections use the heading font', async () => {
    const c = await compile([{ type: 'text', props: { content: '<h2>Big news</h2><p>Body</p>' } }]);
    assert.match(
      c.mjml,
      /<mj-style>h1,h2,h3,h4,h5,h6\{font-family:Montserrat, Helvetica, Arial, sans-serif\}<\/mj-style>/,
    );
    assert.match(c.html, /h1,\s*h2,\s*h3,\s*h4,\s*h5,\s*h6\s*\{\s*font-family:\s*Montserrat/);
  });

  it('ignores malformed brand values (scraped data) instead of emitting them', async () => {
    const ctx = brandRenderContext({
      ...brandRow(),
      brand_color: 'red" onload="x',
      logo: 'javascript:alert(1)',
    });
    const c = await compile(
      [
        { type: 'header', props: {} },
        { type: 'button', props: { text: 'b', href: 'https://b.test' } },
      ],
      { marketing: false },
      {},
      ctx,
    );
    assert.doesNotMatch(c.mjml, /onload|javascript:/);
    assert.match(tagOf(c.mjml, 'mj-button'), /background-color="#2563eb"/);
  });
});

function brandRow() {
  return {
    company_name: 'Acme Outdoors',
    physical_address: '12 Harbour Road',
    logo: null,
    brand_color: null,
    bg_color: null,
    text_color: null,
    font_heading: null,
    font_body: null,
    default_theme: {},
    links: [],
  };
}

describe('validateDesign', () => {
  it('400 for a document that is not an object or has no sections array', () => {
    for (const bad of [null, 'x', [], 42, {}, { sections: 'no' }]) {
      assert.throws(
        () => validateDesign(bad),
        (e: unknown) => e instanceof AppError && e.status === 400,
      );
    }
  });

  it('names each bad field with its path', () => {
    const errors = errorsOf({
      sections: [
        { type: 'hero', props: { title: 'ok' } },
        { type: 'banner', props: {} },
        { type: 'button', props: { text: 'Go', href: 'javascript:alert(1)', colour: 'x' } },
        { type: 'image', props: { alt: 3 }, styles: { background_color: 'not-a-colour', padding: 'lots' } },
        { type: 'spacer', props: { height: 'tall' } },
        {
          type: 'columns',
          props: {
            columns: [
              { sections: [{ type: 'text', props: {} }] },
              { width: 'wide', sections: [{ type: 'columns', props: { columns: [] } }] },
            ],
          },
        },
        { type: 'social', props: { links: [{ platform: 'myspace', url: 'https://m.test' }] } },
        { type: 'hero', props: { title: 'x', cta_text: 'Buy' } },
      ],
      theme: { brand_color: 'blue-ish' },
    });
    assert.deepEqual(
      Object.keys(errors).sort(),
      [
        'sections[1].type',
        'sections[2].props.colour',
        'sections[2].props.href',
        'sections[3].props.alt',
        'sections[3].props.src',
        'sections[3].styles.background_color',
        'sections[3].styles.padding',
        'sections[4].props.height',
        'sections[5].props.columns[0].sections[0].props.content',
        'sections[5].props.columns[1].sections[0].type',
        'sections[5].props.columns[1].width',
        'sections[6].props.links[0].platform',
        'sections[7].props.cta_url',
        'theme.brand_color',
      ].sort(),
    );
    assert.deepEqual(errors['sections[3].props.src'], ['is required']);
    assert.deepEqual(errors['sections[2].props.colour'], ['is not a known property']);
  });

  it('checks columns count and merge-tag syntax', () => {
    const errors = errorsOf({
      sections: [
        { type: 'columns', props: { columns: [{ sections: [] }] } },
        { type: 'text', props: { content: 'Hi {{ first_name ' } },
        { type: 'text', props: { content: "{% include 'secrets' %}" } },
      ],
    });
    assert.deepEqual(errors['sections[0].props.columns'], ['must have at least 2 items']);
    assert.match(errors['sections[1].props.content']![0]!, /invalid merge tag/);
    assert.match(errors['sections[2].props.content']![0]!, /invalid merge tag.*include/);
  });

  it('limits the number of sections and the amount of text', () => {
    const many = Array.from({ length: 101 }, () => ({ type: 'spacer', props: {} }));
    assert.ok(errorsOf({ sections: many })['sections']);
    const big = Array.from({ length: 20 }, () => ({ type: 'text', props: { content: 'x'.repeat(15_000) } }));
    assert.match(errorsOf({ sections: big })['sections']![0]!, /KB of text/);
  });

  it('accepts merge tags in URLs and normalises numeric lengths', () => {
    const d = validateDesign({
      sections: [
        { type: 'button', props: { text: 'Unsub', href: '{{ unsubscribe_url }}' } },
        { type: 'image', props: { src: 'https://i.test/{{ contact.data.plan }}.png', width: 200 } },
      ],
    });
    assert.equal(d.sections[1]!.props['width'], '200px');
  });
});

describe('sanitizer', () => {
  it('strips scripts, styles, iframes, event handlers and javascript: URLs', () => {
    const out = sanitizeHtml(
      '<p onclick="steal()" style="color:red">Hi<script>alert(1)</script><style>p{}</style>' +
        '<iframe src="https://evil.test"></iframe><a href="javascript:alert(1)">x</a>' +
        '<a href=" jav&#x09;ascript:alert(2)">y</a><img src="x" onerror="alert(3)">' +
        '<a href="https://ok.test" target="_blank" onmouseover="z()">ok</a><!-- c --><mj-raw>raw</mj-raw></p>',
    );
    assert.doesNotMatch(out, /script|<style|iframe|onclick|onerror|onmouseover|javascript|<!--|mj-raw/i);
    assert.match(out, /<p style="color:red">Hi/);
    assert.match(out, /<a href="https:\/\/ok\.test" target="_blank">ok<\/a>/);
    assert.match(out, /raw/, 'unknown tags are unwrapped, their text kept');
    assert.doesNotMatch(sanitizeHtml('<p style="background:url(javascript:x)">a</p>'), /style=/);
  });

  it('keeps merge tags, including in links', () => {
    const out = sanitizeHtml(
      '<p>{{ first_name | default: "there" }} <a href="{{ unsubscribe_url }}">u</a></p>',
    );
    assert.match(out, /\{\{ first_name \| default: "there" \}\}/);
    assert.match(out, /href="\{\{ unsubscribe_url \}\}"/);
  });
});

describe('merge tags', () => {
  const vars = {
    contact: {
      first_name: '<script>alert(1)</script>',
      email: 'ann@example.com',
      data: { plan: 'Pro', city: 'Leeds' },
    },
    brand: { company_name: 'Acme Outdoors' },
    event: { resource_name: 'Tent' },
    data: { order_id: 'A-1' },
    unsubscribe_url: 'https://acme.test/u?t=1&x=2',
  };
  let compiled: CompiledEmail;

  it('escapes values in the HTML part and not in the text part', async () => {
    compiled = await compile(
      [
        {
          type: 'text',
          props: { content: '<p>Hi {{ first_name }}, plan {{ plan }} in {{ contact.data.city }}</p>' },
        },
        {
          type: 'text',
          props: {
            content:
              '<p>{{ event.resource_name }} / {{ data.order_id }} / {{ brand.company_name }} / {{ email }}</p>',
          },
        },
      ],
      { marketing: true },
    );
    const out = personalize(compiled, vars);
    assert.match(out.html, /Hi &lt;script&gt;alert\(1\)&lt;\/script&gt;, plan Pro in Leeds/);
    assert.doesNotMatch(out.html, /<script>alert/);
    assert.match(out.html, /Tent \/ A-1 \/ Acme Outdoors \/ ann@example\.com/);
    assert.match(out.html, /href="https:\/\/acme\.test\/u\?t=1&amp;x=2"/);
    assert.match(out.text, /Hi <script>alert\(1\)<\/script>, plan Pro in Leeds/);
    assert.match(out.text, /Unsubscribe \[https:\/\/acme\.test\/u\?t=1&x=2\]/);
  });

  it('supports filters such as | default:, and missing values render empty', () => {
    assert.equal(renderText('Hi {{ first_name | default: "there" }}!', {}), 'Hi there!');
    assert.equal(
      renderText("Hi {{ contact.first_name | default: 'there' | upcase }}", {
        contact: { first_name: 'ann' },
      }),
      'Hi ANN',
    );
    assert.equal(renderText('[{{ last_name }}][{{ nothing.here }}]', { contact: {} }), '[][]');
    assert.equal(
      renderText('{{ first_name }} <{{ email }}>', vars),
      '<script>alert(1)</script> <ann@example.com>',
    );
  });

  it('tags, filters and plain outputs mix; every path escapes in HTML', async () => {
    assert.equal(renderText('{% if first_name %}Hi {{ first_name }}{% else %}Hi{% endif %}', {}), 'Hi');
    assert.equal(renderText('{%- if email -%} to {{ email }} {%- endif %}', vars), 'to ann@example.com');
    const c = await compile([
      { type: 'text', props: { content: '<p>[{{ first_name | default: "x" }}][{{ first_name }}]</p>' } },
      { type: 'text', props: { content: '<p>{% if plan == "Pro" %}[{{ first_name }}]{% endif %}</p>' } },
    ]);
    const html = personalize(c, vars).html;
    assert.equal(html.match(/\[&lt;script&gt;alert\(1\)&lt;\/script&gt;\]/g)?.length, 3);
    assert.doesNotMatch(html, /<script/);
  });

  it('the native fast path prints exactly what Liquid prints', () => {
    // A `{% comment %}` forces the whole template through Liquid; without it outputs are evaluated natively.
    const expressions = [
      '{{ v }}',
      '{{ v | default: "none" }}',
      "{{ v | default: 'x' | upcase }}",
      '{{ v | downcase | append: "!" | prepend: "> " }}',
      '{{ v | strip | default: 7 }}',
      '{{ contact.data.v }}',
    ];
    const values = ['Ann', '', '  Mixed Case  ', null, false, 0, 42, [], ['a', 'b'], { k: 1 }, '<&>"\''];
    for (const expression of expressions)
      for (const v of values) {
        const vars = { contact: { data: { v } } };
        const native = renderText(expression, vars);
        const liquid = renderText(`${expression}{% comment %}x{% endcomment %}`, vars);
        assert.equal(native, liquid, `${expression} with ${JSON.stringify(v)}`);
      }
  });

  it('does not expose prototype properties', () => {
    assert.equal(
      renderText('[{{ contact.constructor }}][{{ contact.__proto__ }}][{{ first_name.length }}]', vars),
      '[][][]',
    );
    assert.equal(renderText('[{{ contact.constructor | default: "none" }}]', vars), '[none]');
  });

  it('refuses file access and unescaped output at parse time', () => {
    for (const tag of [
      "{% include 'x' %}",
      '{% render "x" %}',
      '{% layout "x" %}',
      '{% raw %}<b>{% endraw %}',
    ])
      assert.ok(mergeTagError(tag), tag);
    assert.equal(mergeTagError('{{ a | default: "b" }}'), null);
  });

  it('`| raw` still escapes in HTML', async () => {
    const c = await compile([{ type: 'text', props: { content: '<p>{{ first_name | raw }}</p>' } }]);
    assert.match(personalize(c, vars).html, /&lt;script&gt;/);
  });

  it('hostile templates stop at the limits instead of hanging or crashing', () => {
    assert.ok(MERGE_LIMITS.render <= 1000);
    const hostile = [
      '{% for i in (1..100000000) %}x{% endfor %}',
      '{% for i in (1..1000) %}{% for j in (1..1000) %}{% for k in (1..1000) %}x{% endfor %}{% endfor %}{% endfor %}',
      '{% assign s = "xxxxxxxxxx" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s }}',
      '{% if a %}'.repeat(5000) + '{% endif %}'.repeat(5000),
      `{{ ${'a.'.repeat(5000)}b }}`,
    ];
    for (const template of hostile) {
      // Left unrendered (returned as is) rather than throwing or running unbounded.
      const out = renderText(template, vars);
      assert.equal(typeof out, 'string');
      assert.ok(out.length < 200_000, 'output stays bounded');
    }
    assert.equal(renderText(hostile[0]!, vars), hostile[0]);
  });

  it('a compiled template with an unparseable tag prints it literally instead of failing', async () => {
    // Not validated: e.g. a design saved before validation existed.
    const raw: Design = {
      sections: [{ type: 'text', props: { content: '<p>Hi {{ first_name </p>' }, styles: {} }],
      theme: {},
    };
    const c = await compileDesign(raw, brand, { marketing: false });
    const out = personalize(c, vars);
    assert.match(out.html, /Hi \{.*\{ first_name/);
    assert.doesNotMatch(out.html, /&lt;script/);
  });

  it('brand values are never interpreted as merge tags', async () => {
    const ctx = { ...brand, company_name: '{{ contact.email }} Ltd' };
    const c = await compile([{ type: 'footer', props: {} }], { marketing: true }, {}, ctx);
    assert.doesNotMatch(personalize(c, vars).html, /ann@example\.com Ltd/);
  });
});

describe('marketing footer, preheader and text part', () => {
  it('marketing email without a footer section gets one with company, address and unsubscribe link', async () => {
    const c = await compile([{ type: 'text', props: { content: '<p>News</p>' } }], { marketing: true });
    assert.match(c.html, /Acme Outdoors/);
    assert.match(c.html, /12 Harbour Road, Bristol BS1 5TT/);
    assert.match(c.html, /href="\{\{ unsubscribe_url \}\}"/);
    const out = personalize(c, { unsubscribe_url: 'https://acme.test/u/abc' });
    assert.match(out.html, /href="https:\/\/acme\.test\/u\/abc"/);
    assert.match(out.text, /https:\/\/acme\.test\/u\/abc/);
  });

  it('a footer inside columns counts; the unsubscribe placeholder can be overridden', async () => {
    const ctx = { ...brand, unsubscribe_url_placeholder: '{{ data.unsub }}' };
    const c = await compile(
      [
        {
          type: 'columns',
          props: { columns: [{ sections: [{ type: 'footer', props: {} }] }, { sections: [] }] },
        },
      ],
      { marketing: true },
      {},
      ctx,
    );
    assert.equal(c.html.match(/Acme Outdoors/g)?.length, 1);
    assert.match(c.html, /href="\{\{ data\.unsub \}\}"/);
  });

  it('transactional email gets no footer and no unsubscribe link', async () => {
    const c = await compile([{ type: 'text', props: { content: '<p>Your code is 1234</p>' } }], {
      marketing: false,
    });
    assert.doesNotMatch(c.html, /Acme Outdoors|Harbour Road|unsubscribe/i);
    const withFooter = await compile([{ type: 'footer', props: {} }], { marketing: false });
    assert.match(withFooter.html, /Acme Outdoors/);
    assert.doesNotMatch(withFooter.html, /unsubscribe/i);
  });

  it('preheader is hidden preview text, personalised, and not in the text part', async () => {
    const c = await compileDesign(design([{ type: 'text', props: { content: '<p>Body</p>' } }]), brand, {
      marketing: false,
      preheader: 'Just for you, {{ first_name }}',
      subject: 'Hello',
    });
    assert.match(c.mjml, /<mj-preview>Just for you, \{\{ first_name \}\}<\/mj-preview>/);
    const out = personalize(c, { contact: { first_name: 'Ann' } });
    assert.match(out.html, /<div style="display:none;[^"]*">Just for you, Ann/);
    assert.match(out.html, /<title>Hello<\/title>/);
    assert.doesNotMatch(out.text, /Just for you/);
    assert.equal(
      renderText('Just for you, {{ first_name }}', { contact: { first_name: 'A&B' } }),
      'Just for you, A&B',
    );
  });

  it('text part: readable text with links, headings kept in case', async () => {
    const c = await compile([
      {
        type: 'hero',
        props: { title: 'Hello {{ first_name }}', cta_text: 'Open', cta_url: 'https://acme.test/o' },
      },
      { type: 'text', props: { content: '<p>Line one &amp; two</p><ul><li>Item</li></ul>' } },
    ]);
    const out = personalize(c, { contact: { first_name: 'Ann' } });
    assert.match(out.text, /^Hello Ann$/m);
    assert.match(out.text, /Open \[https:\/\/acme\.test\/o\]/);
    assert.match(out.text, /Line one & two/);
    assert.match(out.text, /\* Item/);
    assert.doesNotMatch(out.text, /<[a-z]/);
  });
});

describe('transfer encoding', () => {
  it('is chosen once per compile: quoted-printable for Latin text, base64 for mostly other scripts', async () => {
    const latin = await compile([{ type: 'text', props: { content: '<p>Hello there, reader</p>' } }]);
    assert.equal(latin.encoding, 'quoted-printable');
    assert.equal(preferredEncoding('Hello, world'), 'quoted-printable');
    assert.equal(preferredEncoding('こんにちは、世界。ご注文ありがとうございます'), 'base64');
    assert.equal(preferredEncoding('Привет, мир! Спасибо за заказ.'), 'base64');
    assert.equal(preferredEncoding(''), 'base64');
  });
});

describe('compile cache', () => {
  it('returns the cached compile for identical inputs and a fresh one otherwise', async () => {
    const d = design([{ type: 'spacer', props: {} }]);
    const a = await compileDesign(d, brand, { marketing: true });
    const b = await compileDesign(structuredClone(d), brand, { marketing: true });
    assert.equal(a, b);
    const c = await compileDesign(d, brand, { marketing: false });
    assert.notEqual(a, c);
    const cold = await compileUncached(d, brand, { marketing: true });
    assert.notEqual(cold, a);
    assert.equal(cold.html, a.html);
    // A copy read back from storage personalises the same.
    assert.deepEqual(
      personalize({ ...a }, { unsubscribe_url: 'https://u.test' }),
      personalize(a, { unsubscribe_url: 'https://u.test' }),
    );
  });
});

describe('templateSpec', () => {
  it('is derived from the registry', () => {
    const spec = templateSpec();
    assert.equal(typeof spec.version, 'number');
    assert.equal(typeof spec.design_guidelines, 'string');
    assert.ok(spec.design_guidelines.split('\n\n').length >= 3);
    assert.deepEqual(
      spec.components.map((c) => c.type),
      Object.keys(COMPONENTS),
    );
    const button = spec.components.find((c) => c.type === 'button')!;
    assert.deepEqual(button.props['href'], {
      type: 'url',
      required: true,
      default: null,
      description: 'Button link.',
    });
    assert.deepEqual(button.props['align']!.enum, ['left', 'center', 'right']);
    assert.equal(button.props['align']!.default, 'center');
    assert.ok(button.tips.length > 0);
    const columns = spec.components.find((c) => c.type === 'columns')!;
    assert.equal(columns.props['columns']!.items!['sections']!.type, 'array');
    assert.deepEqual(Object.keys(spec.common_styles), Object.keys(COMMON_STYLES));
    assert.deepEqual(spec.theme_fields, Object.keys(THEME_FIELDS));
    for (const v of ['contact.first_name', 'first_name', 'email', 'unsubscribe_url', 'event.*', 'data.*'])
      assert.ok((spec.variables as string[]).includes(v), v);
    assert.ok(spec.variable_details.every((v) => v.description && v.example));
  });
});
