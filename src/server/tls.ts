/**
 * TLS on the public listener: the certificates chosen by SNI (exact names, then `*.example.com`
 * wildcards of one label, then the default), reloaded without a restart when their files change.
 * A reload builds every context first and swaps one reference; a file that cannot be used (half
 * written, key not matching, not PEM) is logged and the certificates in use stay.
 */
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { SecureContext, SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { ListenTlsConfig } from '../config/schema.js';
import { certificateNames, readKeyPair, secureContext } from '../config/tls-files.js';

interface CertificateTable {
  exact: Map<string, SecureContext>;
  /** `example.com` → the context of `*.example.com`. */
  wildcard: Map<string, SecureContext>;
  fallback: SecureContext;
  /** The default certificate's files, for clients that send no server name (server default context). */
  defaultPair: { cert: Buffer; key: Buffer };
  /** For the log: what each certificate serves and until when. */
  summary: { cert: string; names: string[]; notAfter: string }[];
}

export class ListenerCertificates {
  private table: CertificateTable;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private server: { setSecureContext(o: SecureContextOptions): void } | undefined;

  /** Throws when a file cannot be used (the config checks have already said why at load). */
  constructor(
    private cfg: ListenTlsConfig,
    private readonly logger: Logger,
  ) {
    this.table = buildTable(cfg);
  }

  /** Options for `createSecureServer`: the default certificate and the protocol settings. */
  serverOptions(): {
    cert: Buffer;
    key: Buffer;
    minVersion: 'TLSv1.2' | 'TLSv1.3';
    ciphers?: string;
    SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  } {
    return {
      ...this.table.defaultPair,
      minVersion: this.cfg.minVersion ?? 'TLSv1.2',
      ...(this.cfg.ciphers !== undefined ? { ciphers: this.cfg.ciphers } : {}),
      SNICallback: (servername, cb) => cb(null, this.lookup(servername)),
    };
  }

  /** The context for a server name: exact, then a one-label wildcard, then the default. */
  lookup(servername: string): SecureContext {
    const t = this.table;
    const name = servername.toLowerCase();
    const exact = t.exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const w = t.wildcard.get(name.slice(dot + 1));
      if (w !== undefined) return w;
    }
    return t.fallback;
  }

  /** Serve the certificates on `server` and follow their files. */
  attach(server: { setSecureContext(o: SecureContextOptions): void }, watchFiles: boolean): void {
    this.server = server;
    this.logger.info(
      { event: 'tls_certificates', certificates: this.table.summary },
      'TLS certificates loaded',
    );
    if (watchFiles) this.watch();
  }

  /** A config reload: the certificate list (paths, names, default) or the protocol settings changed. */
  update(cfg: ListenTlsConfig): void {
    if (JSON.stringify(cfg) === JSON.stringify(this.cfg)) return;
    this.cfg = cfg;
    this.reload('config');
    if (this.watchers.length > 0) {
      this.unwatch();
      this.watch();
    }
  }

  /** Build everything from the files again; on any failure keep what is served and say why. */
  reload(trigger: string): boolean {
    let next: CertificateTable;
    try {
      next = buildTable(this.cfg);
    } catch (err) {
      this.logger.error(
        { event: 'tls_reload_failed', trigger, reason: (err as Error).message },
        'TLS certificates not reloaded; the certificates in use stay',
      );
      return false;
    }
    this.table = next;
    // Clients that send no server name get the server's default context (SNICallback is not called).
    this.server?.setSecureContext({
      ...next.defaultPair,
      minVersion: this.cfg.minVersion ?? 'TLSv1.2',
      ...(this.cfg.ciphers !== undefined ? { ciphers: this.cfg.ciphers } : {}),
    });
    this.logger.info(
      { event: 'tls_reloaded', trigger, certificates: next.summary },
      'TLS certificates reloaded',
    );
    return true;
  }

  /**
   * Watch the directories of the files: tools and Kubernetes Secret volumes replace files (rename,
   * `..data` symlink swap) rather than write them. Changes are gathered for 200 ms, so a certificate
   * and its key written one after the other are loaded together.
   */
  private watch(): void {
    const byDir = new Map<string, Set<string>>();
    for (const c of this.cfg.certificates)
      for (const f of [c.cert, c.key]) {
        const d = dirname(f);
        if (!byDir.has(d)) byDir.set(d, new Set());
        byDir.get(d)!.add(basename(f));
      }
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, (_event, changed) => {
          if (changed !== null && !names.has(String(changed)) && !String(changed).startsWith('..')) return;
          clearTimeout(this.timer);
          this.timer = setTimeout(() => this.reload('file'), 200);
        });
        w.on('error', (err) => this.logger.warn({ err, dir }, 'certificate directory watch failed'));
        this.watchers.push(w);
      } catch (err) {
        this.logger.warn(
          { err, dir },
          'cannot watch a certificate directory; reload with SIGHUP or the admin API',
        );
      }
    }
  }

  private unwatch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    clearTimeout(this.timer);
  }

  close(): void {
    this.unwatch();
  }
}

function buildTable(cfg: ListenTlsConfig): CertificateTable {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  const summary: CertificateTable['summary'] = [];
  let fallback: SecureContext | undefined;
  let defaultPair: CertificateTable['defaultPair'] | undefined;
  const defaultIndex = Math.max(
    0,
    cfg.certificates.findIndex((c) => c.default === true),
  );
  cfg.certificates.forEach((c, i) => {
    const pair = readKeyPair(c.cert, c.key);
    const ctx = secureContext(
      {
        cert: pair.cert,
        key: pair.key,
        minVersion: cfg.minVersion ?? 'TLSv1.2',
        ...(cfg.ciphers !== undefined ? { ciphers: cfg.ciphers } : {}),
      },
      `${c.cert} and ${c.key}`,
    );
    const names = (c.serverNames ?? certificateNames(pair.leaf)).map((n) => n.toLowerCase());
    // The first certificate that names a server name serves it.
    for (const n of names) {
      if (n.startsWith('*.')) {
        if (!wildcard.has(n.slice(2))) wildcard.set(n.slice(2), ctx);
      } else if (!exact.has(n)) exact.set(n, ctx);
    }
    if (i === defaultIndex) {
      fallback = ctx;
      defaultPair = { cert: pair.cert, key: pair.key };
    }
    summary.push({ cert: c.cert, names, notAfter: pair.leaf.validTo });
  });
  return { exact, wildcard, fallback: fallback!, defaultPair: defaultPair!, summary };
}
