/**
 * `flag` and `flags`: a route enabled by a feature flag, and flag values forwarded to the upstream.
 * Both run after `auth` (300) and `tenant` (400), so the evaluation context is what Sluice verified,
 * and before the limits (500+): a route that does not exist for this request costs no quota.
 *
 * The flag snapshot is read once per request; the compiled flag (and, for `flags`, each variant's
 * serialised header member) is looked up only when the snapshot changed, not per request.
 */
import { hiddenHeaders, RequestFlagContext } from '../../delivery/flags/context.js';
import type { CompiledFlag } from '../../delivery/flags/evaluate.js';
import { type FlagReader, type FlagSnapshot, noFlags } from '../../delivery/flags/snapshot.js';
import { Errors } from '../../errors/codes.js';
import type { PolicyFactory } from '../factory.js';
import type { Denial, Policy } from '../policy.js';
import { sfMember } from './header.js';
import { RouteFlag, RouteFlags } from './schema.js';

export const defaultFlagsHeader = 'x-sluice-flags';

const FLAG_OFF: Denial = Object.freeze({ def: Errors.noRoute, reason: 'flag-off' });

export const flagGatePolicy: PolicyFactory<'flag', typeof RouteFlag> = {
  name: 'flag',
  key: 'flag',
  schema: RouteFlag,
  order: 450,
  // Flags live in the store: a route that reads them opens it.
  usesIdentity: (r) => r.flag !== undefined,
  compile(r, config, deps) {
    const f = r.flag;
    if (f === undefined) return undefined;
    return compileFlagGate(f.key, f.equals ?? true, deps.flags ?? noFlags, hiddenHeaders(r, config));
  },
};

export function compileFlagGate(
  key: string,
  equals: boolean | string | number,
  flags: FlagReader,
  hidden: ReadonlySet<string>,
): Policy {
  let seen: FlagSnapshot | undefined;
  let flag: CompiledFlag | undefined;
  return {
    name: 'flag',
    onRequest(ctx) {
      const snap = flags.current;
      if (snap !== seen) {
        seen = snap;
        flag = snap.flags.get(key);
      }
      if (flag === undefined) return FLAG_OFF;
      const r = flag.evaluate(new RequestFlagContext(ctx, hidden));
      return r.ok && r.value === equals ? undefined : FLAG_OFF;
    },
  };
}

export const flagForwardPolicy: PolicyFactory<'flags', typeof RouteFlags> = {
  name: 'flags',
  key: 'flags',
  schema: RouteFlags,
  order: 460,
  usesIdentity: (r) => r.flags !== undefined,
  headers: (r) => (r.flags === undefined ? [] : [(r.flags.header ?? defaultFlagsHeader).toLowerCase()]),
  compile(r, config, deps) {
    const f = r.flags;
    if (f === undefined) return undefined;
    return compileFlagForward(
      f.forward,
      (f.header ?? defaultFlagsHeader).toLowerCase(),
      deps.flags ?? noFlags,
      hiddenHeaders(r, config),
    );
  },
};

export function compileFlagForward(
  keys: readonly string[],
  header: string,
  flags: FlagReader,
  hidden: ReadonlySet<string>,
): Policy {
  let seen: FlagSnapshot | undefined;
  let compiled: (CompiledFlag | undefined)[] = [];
  /** Per flag, per variant index: the header member, serialised once per snapshot. */
  let members: string[][] = [];
  return {
    name: 'flags',
    onRequest(ctx) {
      const snap = flags.current;
      if (snap !== seen) {
        seen = snap;
        compiled = keys.map((k) => snap.flags.get(k));
        members = compiled.map((f, i) => (f === undefined ? [] : f.values.map((v) => sfMember(keys[i]!, v))));
      }
      const c = new RequestFlagContext(ctx, hidden);
      let out = '';
      for (let i = 0; i < compiled.length; i++) {
        const f = compiled[i];
        if (f === undefined) continue;
        const r = f.evaluate(c);
        if (!r.ok) continue;
        const m = members[i]![r.index]!;
        out = out === '' ? m : `${out}, ${m}`;
      }
      if (out !== '') ctx.upstreamHeaders.push(header, out);
      return undefined;
    },
  };
}
