/**
 * Render benchmark: a 12-section newsletter compiled cold (design → MJML → HTML + text part, cache
 * bypassed), then personalised for 100k distinct recipients, against a plain `replaceAll` loop over
 * the same HTML in the same run. Run: `node_modules/.bin/node bench/render.ts`.
 * Options: BENCH_RECIPIENTS (default 100000), BENCH_COMPILES (default 20).
 */
import mjml2html from 'mjml';
import { validateDesign } from '../src/render/components.ts';
import { designToMjml } from '../src/render/mjml.ts';
import { brandRenderContext, compileUncached, type MergeVars, personalize } from '../src/render/render.ts';

const RECIPIENTS = Number(process.env['BENCH_RECIPIENTS'] ?? 100_000);
const COMPILES = Number(process.env['BENCH_COMPILES'] ?? 20);

const brand = brandRenderContext({
  company_name: 'Acme Outdoors',
  physical_address: '12 Harbour Road, Bristol BS1 5TT, UK',
  logo: 'https://cdn.acme.test/logo.png',
  brand_color: '#0f766e',
  bg_color: '#f8fafc',
  text_color: '#0f172a',
  font_heading: 'Montserrat',
  font_body: 'Inter',
  default_theme: {},
  links: [{ url: 'https://instagram.com/acme' }, { url: 'https://facebook.com/acme' }],
});

/** The newsletter; `greeting` is the merge tag used for the name (simple or with a filter). */
function newsletter(greeting: string) {
  const product = (n: number) => ({
    type: 'product',
    props: {
      name: `Trail tent ${n}`,
      price: `$${99 + n}`,
      image_url: `https://cdn.acme.test/p${n}.png`,
      href: `https://acme.test/p/${n}`,
      description: 'Light, quick to pitch, sleeps two.',
    },
  });
  return validateDesign({
    sections: [
      { type: 'header', props: {} },
      {
        type: 'hero',
        props: {
          image_url: 'https://cdn.acme.test/hero.jpg',
          title: `${greeting}, summer is here`,
          subtitle: 'New gear for long days outside.',
          cta_text: 'Shop the collection',
          cta_url: 'https://acme.test/summer',
        },
      },
      {
        type: 'text',
        props: {
          content: `<p>Hi ${greeting},</p><p>This month we tested every tent we sell on the same wet weekend in Snowdonia. Here is what stayed dry, what packed smallest and what we would buy again.</p><p>Your account: {{ email }}</p>`,
        },
      },
      { type: 'columns', props: { columns: [{ sections: [product(1)] }, { sections: [product(2)] }] } },
      { type: 'columns', props: { columns: [{ sections: [product(3)] }, { sections: [product(4)] }] } },
      { type: 'divider', props: {} },
      {
        type: 'text',
        props: {
          content:
            '<h2>From the blog</h2><ul><li><a href="https://acme.test/b/1">Pitching in the wind</a></li><li><a href="https://acme.test/b/2">Five camp stoves compared</a></li><li><a href="https://acme.test/b/3">Leave no trace</a></li></ul>',
        },
      },
      {
        type: 'image',
        props: { src: 'https://cdn.acme.test/banner.jpg', alt: 'Free delivery', href: 'https://acme.test' },
      },
      { type: 'button', props: { text: 'See all offers', href: 'https://acme.test/offers' } },
      { type: 'spacer', props: { height: '16px' } },
      { type: 'social', props: {} },
      { type: 'footer', props: {} },
    ],
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

const recipients: MergeVars[] = Array.from({ length: RECIPIENTS }, (_, i) => ({
  contact: { first_name: `Name${i}`, email: `person${i}@example.com`, data: {} },
  unsubscribe_url: `https://acme.test/u/${i.toString(36)}`,
}));

// Touch the middle of a string: flattens a concatenated (rope) string the way a consumer would.
let sink = 0;
const consume = (s: string) => {
  sink += s.charCodeAt(s.length >> 1);
};

async function compileFigures() {
  const design = newsletter('{{ first_name }}');
  const source = designToMjml(design, brand, { marketing: true });
  const options = { marketing: true, preheader: 'Summer gear, {{ first_name }}' };
  const time = async (fn: () => Promise<unknown>) => {
    for (let i = 0; i < 5; i++) await fn(); // warm-up
    const runs: number[] = [];
    for (let i = 0; i < COMPILES; i++) {
      const t = performance.now();
      await fn();
      runs.push(performance.now() - t);
    }
    return runs;
  };
  const full = await time(() => compileUncached(design, brand, options));
  const mjmlOnly = await time(() =>
    mjml2html(source, { validationLevel: 'soft', minify: false, keepComments: false, ignoreIncludes: true }),
  );
  return { full: median(full), mjml: median(mjmlOnly) };
}

async function personalisationFigures(label: string, greeting: string, fallback: (v: MergeVars) => string) {
  const compiled = await compileUncached(newsletter(greeting), brand, {
    marketing: true,
    preheader: `Summer gear, ${greeting}`,
  });
  const { html, text } = compiled;
  const baseline = (vars: MergeVars, s: string) =>
    s
      .replaceAll(greeting, fallback(vars))
      .replaceAll('{{ email }}', String(vars.contact!['email']))
      .replaceAll('{{ unsubscribe_url }}', vars.unsubscribe_url!);
  // Correctness first: both produce the same greeting for recipient 7.
  const check = personalize(compiled, recipients[7]!);
  if (!check.html.includes('Name7') || check.html.includes('{{')) throw new Error('personalisation failed');

  const rounds: { ours: number; oursHtml: number; base: number; baseHtml: number }[] = [];
  for (let round = 0; round < 3; round++) {
    let t = performance.now();
    for (const vars of recipients) {
      const out = personalize(compiled, vars);
      consume(out.html);
      consume(out.text);
    }
    const ours = performance.now() - t;
    t = performance.now();
    for (const vars of recipients) {
      consume(baseline(vars, html));
      consume(baseline(vars, text));
    }
    const base = performance.now() - t;
    t = performance.now();
    for (const vars of recipients) consume(personalize(compiled, vars).html);
    const oursHtml = performance.now() - t;
    t = performance.now();
    for (const vars of recipients) consume(baseline(vars, html));
    const baseHtml = performance.now() - t;
    rounds.push({ ours, oursHtml, base, baseHtml });
  }
  // Best of three rounds per column (the first is also the warm-up).
  const best = (k: keyof (typeof rounds)[0]) => Math.min(...rounds.map((r) => r[k]));
  const rate = (ms: number) => (RECIPIENTS / ms) * 1000;
  return {
    label,
    htmlKb: html.length / 1024,
    ours: rate(best('ours')),
    base: rate(best('base')),
    oursHtml: rate(best('oursHtml')),
    baseHtml: rate(best('baseHtml')),
    usPerRecipient: (best('ours') * 1000) / RECIPIENTS,
  };
}

const compile = await compileFigures();
console.log(`\nCompile (median of ${COMPILES} cold compiles, 12-section newsletter, cache bypassed)`);
console.log(`  design → MJML → HTML + text + merge-tag parse: ${fmt(compile.full, 2)} ms`);
console.log(`  of which MJML → HTML (mjml 5):                 ${fmt(compile.mjml, 2)} ms`);

const firstName = (v: MergeVars) => String(v.contact!['first_name']);
const results = [
  await personalisationFigures('simple tags ({{ first_name }})', '{{ first_name }}', firstName),
  await personalisationFigures(
    'Liquid filter ({{ first_name | default: "there" }})',
    '{{ first_name | default: "there" }}',
    (v) => firstName(v) || 'there',
  ),
];
console.log(`\nPersonalisation, ${fmt(RECIPIENTS)} distinct recipients (best of 3 rounds)`);
console.log(
  '| template | HTML KB | personalize (html+text)/s | replaceAll (html+text)/s | ratio | html only/s | replaceAll html/s | ratio | µs/recipient |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results)
  console.log(
    `| ${r.label} | ${fmt(r.htmlKb, 1)} | ${fmt(r.ours)} | ${fmt(r.base)} | ${fmt(r.ours / r.base, 2)} | ${fmt(r.oursHtml)} | ${fmt(r.baseHtml)} | ${fmt(r.oursHtml / r.baseHtml, 2)} | ${fmt(r.usPerRecipient, 1)} |`,
  );
if (sink === 0.5) console.log(sink);
