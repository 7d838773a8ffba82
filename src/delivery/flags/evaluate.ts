/**
 * Flag evaluation, compiled. `compileFlag` turns a stored flag into a `CompiledFlag` once per
 * snapshot: each condition becomes a small function over the evaluation context (an attribute
 * getter chosen at compile time, a Set for `in`, a RegExp built here), and every possible answer
 * (variant × reason) is a frozen `Resolution` made here. Evaluating is then: run the rules' tests,
 * maybe hash one key (bucketing v1), return one of those objects. Nothing is parsed, built or
 * allocated per request.
 */
import type { TenantView } from '../../policies/policy.js';
import { type BucketingVersion, bucketOf, bucketsFor } from '../bucketing.js';
import type { ConditionT, FlagSpecT, FlagValueType, RolloutT } from './spec.js';
import { valueType } from './spec.js';

/** What a flag is evaluated against. Tenant and principal are what Sluice verified, never the client's say. */
export interface FlagContext {
  /** The key `rollout.by: user` buckets: OFREP's `targetingKey`; on a route, the verified principal's id. */
  readonly targetingKey: string | undefined;
  /** The tenant the route's tenant policy resolved. */
  readonly tenant: TenantView | undefined;
  /** The verified caller (`Principal.id`). */
  readonly principal: string | undefined;
  /** A request header (lower-case name); identity headers read as absent. */
  header(name: string): string | undefined;
  /** Another attribute of the evaluation context (OFREP's `context`); undefined on a route. */
  attribute(name: string): unknown;
}

/** OFREP reasons (v0.3). */
export type Reason = 'STATIC' | 'TARGETING_MATCH' | 'SPLIT' | 'DISABLED' | 'DEFAULT';

export type Resolution =
  | {
      readonly ok: true;
      readonly variant: string;
      /** Index into `CompiledFlag.values`. */
      readonly index: number;
      readonly value: unknown;
      readonly reason: Reason;
    }
  | { readonly ok: false; readonly errorCode: 'TARGETING_KEY_MISSING'; readonly errorDetails: string };

export interface CompiledFlag {
  readonly key: string;
  readonly type: FlagValueType;
  readonly variants: readonly string[];
  readonly values: readonly unknown[];
  readonly bucketing: BucketingVersion;
  /** The spec as stored (the admin API shows it). */
  readonly spec: FlagSpecT;
  readonly revision: number;
  evaluate(c: FlagContext): Resolution;
}

type Test = (c: FlagContext) => boolean;
type Getter = (c: FlagContext) => unknown;

const TARGETING_KEY_MISSING: Resolution = Object.freeze({
  ok: false,
  errorCode: 'TARGETING_KEY_MISSING',
  errorDetails: 'the rollout is by user and the context has no targetingKey',
});

/** The attribute getter for a rule's attribute name: chosen here, once, never by a lookup per request. */
export function attributeGetter(name: string): Getter {
  switch (name) {
    case 'targetingKey':
      return (c) => c.targetingKey;
    case 'principal':
      return (c) => c.principal;
    case 'tenant.id':
      return (c) => c.tenant?.id;
    case 'tenant.name':
      return (c) => c.tenant?.name;
    case 'tenant.plan':
      return (c) => c.tenant?.plan ?? undefined;
    case 'tenant.region':
      return (c) => c.tenant?.region ?? undefined;
  }
  if (name.startsWith('tenant.labels.')) {
    const label = name.slice('tenant.labels.'.length);
    return (c) => {
      const l = c.tenant?.labels;
      return l !== undefined && Object.hasOwn(l, label) ? l[label] : undefined;
    };
  }
  // `tenant.*` names are the verified tenant's only: nothing else answers to them (spec.ts refuses the rest).
  if (name.startsWith('tenant')) return () => undefined;
  if (name.startsWith('header.')) {
    const h = name.slice(7).toLowerCase();
    return (c) => c.header(h);
  }
  return (c) => c.attribute(name);
}

function compileCondition(cond: ConditionT): Test {
  const get = attributeGetter(cond.attribute);
  if (cond.in !== undefined) {
    const set = new Set<unknown>(cond.in);
    return (c) => set.has(get(c));
  }
  if (cond.notIn !== undefined) {
    const set = new Set<unknown>(cond.notIn);
    return (c) => !set.has(get(c));
  }
  if (cond.matches !== undefined) {
    const re = new RegExp(cond.matches);
    return (c) => {
      const v = get(c);
      return typeof v === 'string' && re.test(v);
    };
  }
  const present = cond.present ?? true;
  return (c) => (get(c) !== undefined) === present;
}

function allOf(tests: Test[]): Test {
  if (tests.length === 1) return tests[0]!;
  return (c) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(c)) return false;
    return true;
  };
}

/** A rollout compiled: the cumulative bucket bounds and the SPLIT resolution of each range. */
function compileRollout(
  r: RolloutT,
  salt: string,
  v: BucketingVersion,
  split: (variant: string) => Resolution,
  fallback: Resolution,
): (c: FlagContext) => Resolution {
  const bounds: number[] = [];
  const answers: Resolution[] = [];
  let acc = 0;
  for (const w of r.variants) {
    acc += bucketsFor(w.weight);
    bounds.push(acc);
    answers.push(split(w.variant));
  }
  const n = bounds.length;
  const pick = (key: string): Resolution => {
    const b = bucketOf(salt, key, v);
    for (let i = 0; i < n; i++) if (b < bounds[i]!) return answers[i]!;
    return fallback; // weights under 100 (refused when written): the rest gets the default
  };
  if (r.by === 'tenant')
    return (c) => {
      const t = c.tenant?.id;
      return t === undefined ? fallback : pick(t);
    };
  return (c) => {
    const k = c.targetingKey;
    return k === undefined || k === '' ? TARGETING_KEY_MISSING : pick(k);
  };
}

/** Compile a stored flag (already checked by flagProblems). Throws only for a spec that was not. */
export function compileFlag(key: string, spec: FlagSpecT, revision = 1): CompiledFlag {
  const variants = Object.keys(spec.variants);
  const values = variants.map((n) => Object.freeze(spec.variants[n]));
  const index = new Map(variants.map((n, i) => [n, i]));
  const resolutions = new Map<string, Resolution>();
  const resolution = (variant: string, reason: Reason): Resolution => {
    const id = `${reason}\u0000${variant}`;
    let r = resolutions.get(id);
    if (r === undefined) {
      const i = index.get(variant);
      if (i === undefined) throw new Error(`flag ${key}: no variant "${variant}"`);
      r = Object.freeze({ ok: true, variant, index: i, value: values[i], reason });
      resolutions.set(id, r);
    }
    return r;
  };
  const type = valueType(values[0]) ?? 'object';
  const bucketing = spec.bucketing ?? 'v1';
  const salt = spec.seed ?? key;
  const base = { key, type, variants, values, bucketing, spec, revision };
  const dflt = spec.defaultVariant;
  if (!spec.enabled) {
    const disabled = resolution(dflt, 'DISABLED');
    return { ...base, evaluate: () => disabled };
  }
  const rules = spec.rules ?? [];
  const fallbackReason: Reason = rules.length === 0 && spec.rollout === undefined ? 'STATIC' : 'DEFAULT';
  const fallback = resolution(dflt, fallbackReason);
  const splitOf = (variant: string) => resolution(variant, 'SPLIT');
  const rest =
    spec.rollout === undefined
      ? () => fallback
      : compileRollout(spec.rollout, salt, bucketing, splitOf, resolution(dflt, 'DEFAULT'));
  if (rules.length === 0) return { ...base, evaluate: rest };
  const tests = rules.map((r) => allOf(r.when.map(compileCondition)));
  const answers = rules.map((r) =>
    r.variant !== undefined
      ? (() => {
          const m = resolution(r.variant, 'TARGETING_MATCH');
          return () => m;
        })()
      : compileRollout(r.rollout!, salt, bucketing, splitOf, resolution(dflt, 'DEFAULT')),
  );
  const n = rules.length;
  return {
    ...base,
    evaluate(c) {
      for (let i = 0; i < n; i++) if (tests[i]!(c)) return answers[i]!(c);
      return rest(c);
    },
  };
}
