/**
 * The attributes of SCIM Users, Groups and the enterprise extension (RFC 7643 4, 8.7), defined once:
 * `/Schemas` shows these tables (discovery.ts), and the canonical spelling of a name and the
 * attributes a client may not set (resources.ts, patch.ts) are derived from them.
 */

/** One attribute's definition as `/Schemas` shows it (RFC 7643 7). */
export type Attr = Record<string, unknown>;
/** A string attribute with RFC 7643 7's defaults, unless `extra` says otherwise. */
const attr = (name: string, extra: Partial<Attr> = {}): Attr => ({
  name,
  type: 'string',
  multiValued: false,
  required: false,
  caseExact: false,
  mutability: 'readWrite',
  returned: 'default',
  uniqueness: 'none',
  ...extra,
});
/** A multi-valued complex attribute with the usual value, display, type and primary. */
const multi = (name: string, sub: Attr[] = []): Attr =>
  attr(name, {
    type: 'complex',
    multiValued: true,
    subAttributes: [
      attr('value'),
      attr('display'),
      attr('type'),
      attr('primary', { type: 'boolean' }),
      ...sub,
    ],
  });

/** The core User schema's attributes, in RFC 7643's order. */
export const USER_ATTRIBUTES: readonly Attr[] = [
  attr('userName', { required: true, uniqueness: 'server' }),
  attr('name', {
    type: 'complex',
    subAttributes: [
      'formatted',
      'familyName',
      'givenName',
      'middleName',
      'honorificPrefix',
      'honorificSuffix',
    ].map((n) => attr(n)),
  }),
  ...[
    'displayName',
    'nickName',
    'profileUrl',
    'title',
    'userType',
    'preferredLanguage',
    'locale',
    'timezone',
  ].map((n) => attr(n)),
  attr('active', { type: 'boolean' }),
  attr('password', { mutability: 'writeOnly', returned: 'never' }),
  multi('emails'),
  multi('phoneNumbers'),
  multi('ims'),
  multi('photos'),
  attr('addresses', {
    type: 'complex',
    multiValued: true,
    subAttributes: ['formatted', 'streetAddress', 'locality', 'region', 'postalCode', 'country', 'type'].map(
      (n) => attr(n),
    ),
  }),
  attr('groups', {
    type: 'complex',
    multiValued: true,
    mutability: 'readOnly',
    subAttributes: [
      attr('value', { mutability: 'readOnly' }),
      attr('display', { mutability: 'readOnly' }),
      attr('type', { mutability: 'readOnly' }),
    ],
  }),
  multi('entitlements'),
  multi('roles'),
  multi('x509Certificates'),
];

/** The core Group schema's attributes. */
export const GROUP_ATTRIBUTES: readonly Attr[] = [
  attr('displayName', { required: true, uniqueness: 'server' }),
  attr('members', {
    type: 'complex',
    multiValued: true,
    subAttributes: [
      attr('value', { caseExact: true, mutability: 'immutable' }),
      attr('display', { mutability: 'readOnly' }),
      attr('type', { canonicalValues: ['User'], mutability: 'immutable' }),
    ],
  }),
];

/** The enterprise User extension's attributes. */
export const ENTERPRISE_ATTRIBUTES: readonly Attr[] = [
  ...['employeeNumber', 'costCenter', 'organization', 'division', 'department'].map((n) => attr(n)),
  attr('manager', {
    type: 'complex',
    subAttributes: [attr('value'), attr('displayName', { mutability: 'readOnly' })],
  }),
];

/** RFC 7643 3.1: on every resource; id and meta are the service's. */
const COMMON = ['id', 'externalId', 'meta', 'schemas'];

/** Top-level attributes a client never sets (dropped from its input): the service's own. */
export const READ_ONLY: ReadonlySet<string> = new Set([
  'id',
  'meta',
  'schemas',
  ...[...USER_ATTRIBUTES, ...GROUP_ATTRIBUTES]
    .filter((a) => a.mutability === 'readOnly')
    .map((a) => String(a.name)),
]);

/** Every top-level attribute name, by its lower-case spelling (names are case-insensitive). */
export const CANONICAL_NAMES: ReadonlyMap<string, string> = new Map(
  [...USER_ATTRIBUTES, ...GROUP_ATTRIBUTES]
    .map((a) => String(a.name))
    .concat(COMMON)
    .map((n) => [n.toLowerCase(), n]),
);
