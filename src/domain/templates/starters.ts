import type { Design } from '../../render/components.ts';

/** A starter design offered by `GET /v1/my/templates/starters`; the brand's theme is merged in on read. */
export type Starter = {
  id: string;
  category: string;
  name: string;
  description: string;
  icon: string;
  suggested_goals: string[];
  subject: string;
  preheader: string;
  design: Design;
};

type Json = Record<string, unknown>;
type Styles = Record<string, string>;

// Small builders keep the designs below readable as content rather than as JSON plumbing.
const section = (type: string, props: Json = {}, styles: Styles = {}) => ({ type, props, styles });

/** Placeholder artwork (a public placeholder service) for the customer to replace with their own. */
const placeholder = (width: number, height: number, label: string, bg = 'e8ecf3', fg = '5b6474') =>
  `https://placehold.co/${width}x${height}/${bg}/${fg}/png?text=${encodeURIComponent(label).replaceAll('%20', '+')}`;

const SITE = 'https://example.com';

// Headings inside text sections get explicit sizes and tight line-height: email clients' defaults vary.
const h1 = (t: string, align = 'left') =>
  `<h1 style="margin:0 0 12px;font-size:30px;line-height:1.2;text-align:${align};">${t}</h1>`;
const h2 = (t: string) => `<h2 style="margin:0 0 8px;font-size:22px;line-height:1.3;">${t}</h2>`;
const h3 = (t: string, align = 'left') =>
  `<h3 style="margin:0 0 6px;font-size:18px;line-height:1.3;text-align:${align};">${t}</h3>`;
const eyebrow = (t: string, align = 'left') =>
  `<p style="margin:0 0 8px;text-transform:uppercase;letter-spacing:2px;font-size:12px;font-weight:bold;text-align:${align};">${t}</p>`;
const small = (t: string, align = 'left') => `<p style="font-size:13px;text-align:${align};">${t}</p>`;

const header = (styles: Styles = {}) =>
  section(
    'header',
    { variant: 'logo', logo_width: '140px' },
    {
      padding: '24px 16px 8px',
      ...styles,
    },
  );

const text = (content: string, styles: Styles = {}) =>
  section('text', { content }, { padding: '4px 16px', ...styles });

const button = (label: string, href: string, props: Json = {}, styles: Styles = {}) =>
  section(
    'button',
    { text: label, href, border_radius: '6px', inner_padding: '14px 28px', font_weight: '600', ...props },
    { padding: '8px 0 16px', align: 'center', ...styles },
  );

const divider = () =>
  section('divider', { color: '#e5e7eb', width: '1px', padding: '8px 24px' }, { padding: '8px 0' });

const spacer = (height = '16px') => section('spacer', { height });

const social = () =>
  section(
    'social',
    {
      links: [
        { platform: 'instagram', url: 'https://instagram.com/' },
        { platform: 'x', url: 'https://x.com/' },
        { platform: 'linkedin', url: 'https://linkedin.com/' },
      ],
      align: 'center',
    },
    { padding: '16px 0 0' },
  );

const footer = (unsubscribeText = 'Unsubscribe') =>
  section('footer', { unsubscribe_text: unsubscribeText }, { padding: '8px 16px 32px' });

const product = (name: string, price: string, description: string, label: string) =>
  section('product', {
    name,
    price,
    description,
    image_url: placeholder(280, 280, label),
    href: `${SITE}/shop`,
  });

const columns = (...cols: ReturnType<typeof section>[][]) =>
  section(
    'columns',
    { columns: cols.map((sections) => ({ width: `${Math.floor(100 / cols.length)}%`, sections })) },
    { padding: '8px 16px' },
  );

/** An order line: a small product image beside its name, details and price. */
const lineItem = (name: string, details: string, price: string) =>
  section(
    'columns',
    {
      columns: [
        {
          width: '30%',
          sections: [section('image', { src: placeholder(140, 140, 'Item'), alt: name, width: '120px' })],
        },
        {
          width: '70%',
          sections: [
            text(
              `${h3(name)}<p style="margin:0;font-size:14px;">${details}</p>` +
                `<p style="margin:6px 0 0;font-weight:bold;">${price}</p>`,
            ),
          ],
        },
      ],
    },
    { padding: '4px 16px' },
  );

/** A neutral theme the brand's own colours and fonts replace. */
const BASE_THEME = {
  brand_color: '#4f46e5',
  bg_color: '#f4f5f7',
  text_color: '#1f2937',
  font_body: 'Helvetica, Arial, sans-serif',
  font_heading: 'Helvetica, Arial, sans-serif',
};

const design = (sections: ReturnType<typeof section>[]): Design =>
  ({ sections, theme: { ...BASE_THEME } }) as Design;

/** The starter designs, in the order clients show them. */
export const STARTERS: Starter[] = [
  {
    id: 'welcome',
    category: 'welcome',
    name: 'Welcome',
    description: 'Greet new subscribers, say what to expect and point them to a first step.',
    icon: 'hand-wave',
    suggested_goals: ['Welcome new subscribers', 'Introduce the brand', 'Drive a first visit'],
    subject: 'Welcome to {{ brand.company_name }}, {{ first_name | default: "friend" }}',
    preheader: 'Here is what to expect from us, and a good place to start.',
    design: design([
      header(),
      section(
        'hero',
        {
          title: 'Welcome aboard, {{ first_name | default: "friend" }}!',
          subtitle: "We're so glad you're here. Here's a quick look at what comes next.",
          cta_text: 'Get started',
          cta_url: `${SITE}/start`,
        },
        { padding: '16px 16px 24px' },
      ),
      divider(),
      text(
        '<p>Hi {{ first_name | default: "there" }},</p>' +
          '<p>Thanks for joining {{ brand.company_name }}. Every couple of weeks we will send you one useful ' +
          'email: new ideas, early access and the occasional member-only offer. No noise, promise.</p>',
        { padding: '8px 16px' },
      ),
      columns(
        [text(`${h3('1. Set up')}${small('Complete your profile so we can tailor what we send.')}`)],
        [text(`${h3('2. Explore')}${small('Browse our most-loved picks, chosen by the team.')}`)],
        [text(`${h3('3. Say hi')}${small('Just reply to this email. A real person reads every one.')}`)],
      ),
      button('Complete your profile', `${SITE}/profile`),
      text('<p>Talk soon,<br><strong>The {{ brand.company_name }} team</strong></p>', {
        padding: '0 16px 8px',
      }),
      divider(),
      social(),
      footer(),
    ]),
  },
  {
    id: 'newsletter',
    category: 'newsletter',
    name: 'Newsletter',
    description: 'A lead story, two short features and a look ahead.',
    icon: 'newspaper',
    suggested_goals: ['Share monthly news', 'Keep subscribers engaged', 'Drive traffic to new articles'],
    subject: 'This month at {{ brand.company_name }}',
    preheader: 'Our lead story, two quick reads and what is coming next.',
    design: design([
      header(),
      section(
        'image',
        {
          src: placeholder(600, 300, 'Lead story image'),
          alt: 'Lead story',
          href: `${SITE}/blog`,
          width: '600px',
        },
        { padding: '0' },
      ),
      text(
        eyebrow('The monthly edition') +
          h1('What we learned shipping faster this season') +
          '<p>Hi {{ first_name | default: "there" }}, this month we look at the small changes that made the ' +
          'biggest difference: fewer meetings, shorter feedback loops and a weekly demo that keeps everyone ' +
          'honest.</p>',
        { padding: '24px 16px 0' },
      ),
      button('Read the full story', `${SITE}/blog/lead-story`, {}, { align: 'left', padding: '0 16px 16px' }),
      divider(),
      columns(
        [
          section('image', {
            src: placeholder(260, 160, 'Feature one'),
            alt: 'Feature one',
            href: `${SITE}/blog/1`,
          }),
          text(
            h3("Five tools we can't live without") +
              '<p>The short list our team reaches for every day, and why.</p>' +
              `<p><a href="${SITE}/blog/1">Read more →</a></p>`,
          ),
        ],
        [
          section('image', {
            src: placeholder(260, 160, 'Feature two'),
            alt: 'Feature two',
            href: `${SITE}/blog/2`,
          }),
          text(
            h3('Customer spotlight') +
              '<p>How one small team doubled their output without hiring anyone.</p>' +
              `<p><a href="${SITE}/blog/2">Read more →</a></p>`,
          ),
        ],
      ),
      divider(),
      text(
        h2('Coming up next month') +
          '<p>A behind-the-scenes look at our new studio, plus answers to your questions. Hit reply and ' +
          'tell us what you would like us to cover.</p>',
        { padding: '8px 16px 0' },
      ),
      spacer(),
      social(),
      footer(),
    ]),
  },
  {
    id: 'promotion',
    category: 'promotion',
    name: 'Promotion',
    description: 'A bold sale announcement with a discount code and featured products.',
    icon: 'tag',
    suggested_goals: ['Announce a sale', 'Share a discount code', 'Drive seasonal revenue'],
    subject: '{{ first_name | default: "Hey" }}, 25% off everything ends Sunday',
    preheader: 'Use code SAVE25 at checkout. Our biggest sale of the season.',
    design: design([
      header(),
      text(eyebrow('Seasonal sale · this week only', 'center'), { padding: '8px 16px 0', align: 'center' }),
      section(
        'hero',
        {
          title: '25% off everything',
          subtitle: 'Our biggest sale of the season is here. Ends Sunday at midnight.',
          cta_text: 'Shop the sale',
          cta_url: `${SITE}/sale`,
        },
        { padding: '0 16px 8px' },
      ),
      text(
        '<div style="text-align:center;"><div style="display:inline-block;border:2px dashed #9ca3af;' +
          'border-radius:8px;padding:10px 24px;">Use code <strong style="font-size:20px;letter-spacing:3px;">' +
          'SAVE25</strong> at checkout</div></div>',
        { padding: '8px 16px 16px', align: 'center' },
      ),
      divider(),
      text(h2('Customer favourites'), { padding: '8px 16px 0', align: 'center' }),
      columns(
        [product('Everyday Tote', '$36 (was $48)', 'Sturdy canvas, fits a laptop.', 'Product photo')],
        [product('Classic Cap', '$18 (was $24)', 'Washed cotton, one size.', 'Product photo')],
      ),
      button('See all deals', `${SITE}/sale`),
      divider(),
      text(small('Free shipping on orders over $50. Discount applies to full-price items only.', 'center'), {
        padding: '0 16px',
        align: 'center',
      }),
      social(),
      footer(),
    ]),
  },
  {
    id: 'abandoned_cart',
    category: 'abandoned_cart',
    name: 'Abandoned cart',
    description: 'Remind shoppers what they left behind, with the item and a way back to checkout.',
    icon: 'shopping-cart',
    suggested_goals: ['Recover abandoned carts', 'Remind shoppers of saved items'],
    subject: 'You left something behind, {{ first_name | default: "friend" }}',
    preheader: 'Your cart is saved. Pick up right where you left off.',
    design: design([
      header(),
      text(
        h1('Still thinking it over?') +
          '<p>Hi {{ first_name | default: "there" }}, you left something in your cart. We have saved it for ' +
          'you, but popular items can sell out quickly.</p>',
        { padding: '16px 16px 8px' },
      ),
      columns(
        [
          section('image', {
            src: placeholder(260, 260, 'Your item'),
            alt: 'Your item',
            href: `${SITE}/cart`,
          }),
        ],
        [
          text(
            h3('{{ event.resource_name | default: "Your item" }}') +
              '<p>Good choice. Free returns within 30 days and delivery in 2 to 4 days.</p>',
          ),
          button('Return to your cart', `{{ event.resource_url | default: "${SITE}/cart" }}`, {
            align: 'left',
          }),
        ],
      ),
      divider(),
      columns(
        [text(`${h3('Free returns', 'center')}${small('30 days, no questions asked.', 'center')}`)],
        [text(`${h3('Fast delivery', 'center')}${small('Most orders arrive in 2 days.', 'center')}`)],
        [text(`${h3('Here to help', 'center')}${small('Just reply to this email.', 'center')}`)],
      ),
      divider(),
      footer(),
    ]),
  },
  {
    id: 'order_confirmation',
    category: 'order_confirmation',
    name: 'Order confirmation',
    description: 'Confirm a purchase with the order number, items, totals and what happens next.',
    icon: 'receipt',
    suggested_goals: ['Confirm an order', 'Set delivery expectations'],
    subject: 'Order #{{ data.order_id }} confirmed',
    preheader: 'Thanks for your order. Here is your receipt.',
    design: design([
      header(),
      text(
        h1('Thanks for your order!') +
          '<p>Hi {{ first_name | default: "there" }}, we have received order <strong>#{{ data.order_id }}' +
          '</strong> and are getting it ready. We will email you again as soon as it ships.</p>',
        { padding: '16px 16px 8px' },
      ),
      columns(
        [text(`${small('<strong>Order number</strong><br>#{{ data.order_id }}')}`)],
        [text(`${small('<strong>Order total</strong><br>{{ data.order_total }}')}`)],
        [text(`${small('<strong>Estimated delivery</strong><br>2 to 4 business days')}`)],
      ),
      divider(),
      lineItem('Everyday Tote', 'Natural · Qty 1', '$48.00'),
      lineItem('Classic Cap', 'Olive · Qty 1', '$24.00'),
      divider(),
      text(
        '<table width="100%" cellpadding="0" cellspacing="0" border="0" style="font-size:15px;">' +
          '<tr><td style="padding:4px 0;">Subtotal</td><td align="right">$72.00</td></tr>' +
          '<tr><td style="padding:4px 0;">Shipping</td><td align="right">$14.00</td></tr>' +
          '<tr><td style="padding:8px 0;font-weight:bold;font-size:17px;">Total</td>' +
          '<td align="right" style="font-weight:bold;font-size:17px;">{{ data.order_total }}</td></tr></table>',
        { padding: '0 16px' },
      ),
      button('View your order', `${SITE}/orders/{{ data.order_id }}`),
      text(small('Need to change something? Reply within the hour and we will sort it out.', 'center'), {
        padding: '0 16px 8px',
        align: 'center',
      }),
      footer(),
    ]),
  },
  {
    id: 'password_reset',
    category: 'password_reset',
    name: 'Password reset',
    description: 'A clear, minimal reset email with one button and a security note.',
    icon: 'key',
    suggested_goals: ['Let a user reset their password'],
    subject: 'Reset your {{ brand.company_name }} password',
    preheader: 'This link expires in 60 minutes.',
    design: design([
      header(),
      text(
        h1('Reset your password') +
          '<p>Hi {{ first_name | default: "there" }}, we received a request to reset the password for ' +
          '<strong>{{ email }}</strong>. Choose a new one with the button below; the link expires in 60 ' +
          'minutes.</p>',
        { padding: '16px 16px 0' },
      ),
      button(
        'Reset password',
        '{{ data.reset_url }}',
        { align: 'left' },
        { align: 'left', padding: '0 16px 8px' },
      ),
      text(
        small(
          'If the button does not work, paste this link into your browser:<br>' +
            '<a href="{{ data.reset_url }}">{{ data.reset_url }}</a>',
        ),
        { padding: '0 16px 8px' },
      ),
      divider(),
      text(
        small(
          '<strong>Did not ask for this?</strong> You can safely ignore this email: your password will not ' +
            'change until you choose a new one.',
        ),
        { padding: '0 16px 8px' },
      ),
      footer(),
    ]),
  },
  {
    id: 're_engagement',
    category: 're_engagement',
    name: 'Re-engagement',
    description: 'Win back quiet subscribers with what they missed and an easy way to stay or go.',
    icon: 'heart',
    suggested_goals: ['Win back inactive subscribers', 'Clean the list of unengaged contacts'],
    subject: 'We miss you, {{ first_name | default: "friend" }}',
    preheader: 'Here is what you missed, and a little something to welcome you back.',
    design: design([
      header(),
      section(
        'hero',
        {
          title: 'It has been a while, {{ first_name | default: "friend" }}',
          subtitle: 'A lot has changed since your last visit. Here is 15% off to welcome you back.',
          cta_text: 'Come back and save',
          cta_url: `${SITE}/welcome-back`,
        },
        { padding: '16px 16px 24px' },
      ),
      divider(),
      text(h2('What you missed'), { padding: '8px 16px 0' }),
      columns(
        [
          section('image', {
            src: placeholder(260, 160, 'New arrivals'),
            alt: 'New arrivals',
            href: `${SITE}/new`,
          }),
          text(`${h3('New arrivals')}<p>Forty new pieces, designed in-house and made to last.</p>`),
        ],
        [
          section('image', {
            src: placeholder(260, 160, 'Faster delivery'),
            alt: 'Faster delivery',
            href: `${SITE}/shipping`,
          }),
          text(`${h3('Faster delivery')}<p>Most orders now arrive in two days, with free returns.</p>`),
        ],
      ),
      button('See what is new', `${SITE}/new`),
      divider(),
      text(
        small(
          'Not interested any more? No hard feelings: you can ' +
            '<a href="{{ unsubscribe_url }}">unsubscribe with one click</a>.',
          'center',
        ),
        { padding: '0 16px', align: 'center' },
      ),
      footer(),
    ]),
  },
  {
    id: 'product_announcement',
    category: 'product_announcement',
    name: 'Product announcement',
    description: 'Launch something new: a hero image, three key benefits and a clear call to action.',
    icon: 'rocket',
    suggested_goals: ['Announce a new product', 'Explain a new feature', 'Drive pre-orders'],
    subject: 'Introducing something new from {{ brand.company_name }}',
    preheader: 'Meet the newest addition, built from your feedback.',
    design: design([
      header(),
      section(
        'image',
        {
          src: placeholder(600, 320, 'Product hero'),
          alt: 'The new product',
          href: `${SITE}/new`,
          width: '600px',
        },
        { padding: '0' },
      ),
      text(
        eyebrow('Just launched', 'center') +
          h1('Meet the all-new Studio', 'center') +
          '<p style="text-align:center;">{{ first_name | default: "Hi" }}, you asked and we listened. Studio ' +
          'brings everything you need into one calm, fast workspace.</p>',
        { padding: '24px 16px 8px', align: 'center' },
      ),
      columns(
        [text(`${h3('Faster', 'center')}${small('Twice as quick from idea to done.', 'center')}`)],
        [text(`${h3('Simpler', 'center')}${small('One place for every project.', 'center')}`)],
        [text(`${h3('Yours', 'center')}${small('Themes that match your style.', 'center')}`)],
      ),
      button('Discover Studio', `${SITE}/studio`),
      divider(),
      text(small('Existing customers get early access this week. Look for it in your dashboard.', 'center'), {
        padding: '0 16px',
        align: 'center',
      }),
      social(),
      footer(),
    ]),
  },
];
