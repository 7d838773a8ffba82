/**
 * The store: PostgreSQL, or PGlite (real PostgreSQL compiled to WASM) embedded in the process.
 * One interface with two implementations so the same schema, SQL and test suite serve both.
 * Nothing on the request path calls the store: changes arrive as notifications and rebuild an
 * in-memory snapshot (src/tenancy/snapshot.ts).
 */

export type Row = Record<string, unknown>;

/** Something SQL can be sent to: the store itself or a transaction in progress. */
export interface Queryable {
  /** One statement with `$1`-style parameters; returns the rows. */
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** A script of several statements, without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export type NotificationHandler = (payload: string) => void;

export interface Store extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Runs fn inside BEGIN … COMMIT on one connection; ROLLBACK when fn throws (the error is rethrown).
   * `pg_notify` issued inside is delivered only if the transaction commits.
   */
  transaction<R>(fn: (tx: Queryable) => Promise<R>): Promise<R>;
  /** Subscribes to a notification channel; resolves once the LISTEN is in place. Returns the unsubscribe. */
  listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>>;
  /** Sends a notification outside any transaction (inside one, prefer `SELECT pg_notify(...)` in SQL). */
  notify(channel: string, payload: string): Promise<void>;
  /**
   * Called after the notification connection came back from a loss: notifications sent meanwhile
   * are gone, so a listener must reload what it derives from the store. Returns the unsubscribe.
   * (PGlite never loses its connection: never called.)
   */
  onResync(cb: () => void): () => void;
  close(): Promise<void>;
}

/** A notification channel name (an SQL identifier we control, never user input). */
export function assertChannel(channel: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel))
    throw new Error(`invalid notification channel name: ${channel}`);
  return channel;
}

/** The URL with its password replaced by `***`, safe for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    // `password=` may also ride in the query string (libpq style).
    if (u.searchParams.has('password')) u.searchParams.set('password', '***');
    return u.toString();
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/(password=)[^&]*/gi, '$1***');
  }
}

/** Removes every occurrence of the URL's password from an error's message and stack. */
export function redactError(err: unknown, url: string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  let secret = '';
  try {
    const u = new URL(url);
    secret = u.password ? decodeURIComponent(u.password) : (u.searchParams.get('password') ?? '');
  } catch {}
  if (secret.length > 0) {
    const raw = [secret, encodeURIComponent(secret)];
    for (const s of raw) {
      e.message = e.message.split(s).join('***');
      if (e.stack) e.stack = e.stack.split(s).join('***');
    }
  }
  return e;
}
