/**
 * deploy/compose/, checked without Docker: compose.yaml parsed with `yaml` and held to what
 * docs/deployment.md promises (services, healthchecks, start order, pinned images, mounted files that
 * exist), and the files it mounts checked by their own tools: the Sluice config by Sluice's loader,
 * the Prometheus config by promtool on the files laid out as the container sees them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { DockerfileParser } from 'dockerfile-ast';
import { parse } from 'yaml';
import { loadConfigFile } from '../../../src/config/load.js';

const run = promisify(execFile);
const root = new URL('../../../', import.meta.url).pathname;
const composeDir = join(root, 'deploy/compose');
const readYaml = (p: string) => parse(readFileSync(p, 'utf8')) as Record<string, unknown>;

interface Service {
  image: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | null>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  read_only?: boolean;
  tmpfs?: string[];
  stop_signal?: string;
  stop_grace_period?: string;
}

/** Compose's own interpolation of `${VAR}` / `${VAR:-default}`, with nothing set in the shell. */
function interpolate<T>(v: T): T {
  if (typeof v === 'string')
    return v.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_, _n: string, d?: string) => d ?? '') as T;
  if (Array.isArray(v)) return v.map(interpolate) as T;
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x)])) as T;
  return v;
}

const compose = interpolate(readYaml(join(composeDir, 'compose.yaml'))) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const svc = (name: string) => {
  const s = services[name];
  assert.ok(s, `service ${name}`);
  return s;
};
/** Bind mounts of a service: host path (absolute) → container path. */
function binds(s: Service): { host: string; container: string }[] {
  return (s.volumes ?? [])
    .map((v) => v.split(':'))
    .filter(([src]) => src?.startsWith('.') || src?.startsWith('/'))
    .map(([src, dst]) => ({ host: resolve(composeDir, src ?? ''), container: dst ?? '' }));
}
const hostFileAt = (s: Service, containerPath: string) => {
  const b = binds(s).find((m) => m.container === containerPath);
  assert.ok(b, `a file mounted at ${containerPath}`);
  return b.host;
};
const sluice = svc('sluice');
const env = sluice.environment ?? {};
const sluiceConfigFile = hostFileAt(sluice, env.SLUICE_CONFIG ?? '');
const sluiceConfig = loadConfigFile(
  sluiceConfigFile,
  Object.fromEntries(Object.entries(env).filter(([, v]) => v != null)) as NodeJS.ProcessEnv,
).config;

test('the stack: Sluice, PostgreSQL, Redis, Prometheus, Grafana and an OpenTelemetry collector', () => {
  assert.deepEqual(Object.keys(services).sort(), [
    'grafana',
    'otel-collector',
    'postgres',
    'prometheus',
    'redis',
    'sluice',
  ]);
  assert.match(svc('postgres').image, /^postgres:/);
  assert.match(svc('redis').image, /^redis:/);
  assert.match(svc('prometheus').image, /^prom\/prometheus:/);
  assert.match(svc('grafana').image, /^grafana\/grafana:/);
  assert.match(svc('otel-collector').image, /^otel\/opentelemetry-collector:/);
});

test('every image is pinned by an exact version tag; Sluice’s is built from deploy/Dockerfile and tagged with package.json’s version', () => {
  for (const [name, s] of Object.entries(services)) {
    // PostgreSQL's releases are MAJOR.MINOR (17.6 is one exact release); every other one here is
    // MAJOR.MINOR.PATCH. Never `latest`, a bare major or a major.minor alias.
    const exact = s.image.startsWith('postgres:')
      ? /^postgres:\d+\.\d+-[a-z]+$/
      : /^[a-z0-9./-]+:v?\d+\.\d+\.\d+(-[a-z0-9.]+)?$/;
    assert.match(s.image, exact, `${name}: ${s.image}`);
  }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  assert.equal(sluice.image, `sluice:${pkg.version}`);
  assert.equal(resolve(composeDir, sluice.build?.context ?? ''), resolve(root));
  assert.ok(existsSync(join(root, sluice.build?.dockerfile ?? '')));
});

test('healthchecks on every service that can run one, and Sluice’s is the image’s own', () => {
  for (const [name, s] of Object.entries(services)) {
    // The collector's image is built FROM scratch: no shell, no binary to probe with.
    if (name === 'otel-collector') continue;
    assert.ok(s.healthcheck, `${name} has a healthcheck`);
    assert.equal(s.healthcheck.test[0], 'CMD', `${name}: exec form`);
  }
  const df = DockerfileParser.parse(readFileSync(join(root, 'deploy/Dockerfile'), 'utf8'));
  const image = JSON.parse(
    (df.getHEALTHCHECKs()[0]?.getArgumentsContent() ?? '').replace(/^.*?CMD\s+/s, ''),
  ) as string[];
  assert.deepEqual(sluice.healthcheck?.test.slice(1), image);
});

test('start order: Sluice waits for a healthy PostgreSQL and Redis; every dependency is a service, with a healthcheck when waited on', () => {
  assert.equal(sluice.depends_on?.postgres?.condition, 'service_healthy');
  assert.equal(sluice.depends_on?.redis?.condition, 'service_healthy');
  for (const [name, s] of Object.entries(services))
    for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
      assert.ok(services[dep], `${name} depends on ${dep}: no such service`);
      assert.ok(['service_started', 'service_healthy'].includes(condition));
      if (condition === 'service_healthy') assert.ok(services[dep]?.healthcheck, `${dep} has no healthcheck`);
    }
});

test('every mounted host file exists, and every named volume is declared', () => {
  for (const [name, s] of Object.entries(services)) {
    for (const b of binds(s))
      assert.ok(existsSync(b.host) && statSync(b.host).isFile(), `${name}: ${b.host}`);
    for (const v of s.volumes ?? []) {
      const src = v.split(':')[0] ?? '';
      if (!src.startsWith('.') && !src.startsWith('/'))
        assert.ok(src in compose.volumes, `${name}: volume ${src}`);
    }
  }
});

test('the Sluice config mounted validates with Sluice’s own loader and points at the stack’s services', () => {
  assert.equal(sluiceConfigFile, join(composeDir, 'sluice.yaml'));
  const db = new URL(typeof sluiceConfig.store === 'string' ? sluiceConfig.store : '');
  assert.equal(db.protocol, 'postgres:');
  assert.equal(db.hostname, 'postgres');
  assert.equal(db.port, '5432');
  const pg = svc('postgres').environment ?? {};
  assert.equal(decodeURIComponent(db.username), pg.POSTGRES_USER);
  assert.equal(decodeURIComponent(db.password), pg.POSTGRES_PASSWORD);
  assert.equal(db.pathname, `/${pg.POSTGRES_DB}`);
  assert.equal(new URL(sluiceConfig.redis?.url ?? '').hostname, 'redis');
  assert.equal(sluiceConfig.telemetry?.tracing?.enabled, true);
  // The route names the generated alert rules (deploy/monitoring/sluice-rules.yaml) are about.
  const rules = readFileSync(join(root, 'deploy/monitoring/sluice-rules.yaml'), 'utf8');
  for (const route of [...rules.matchAll(/route="([^"]+)"/g)].map((m) => m[1]))
    assert.ok(
      sluiceConfig.routes.some((r) => r.name === route),
      `route ${route} of the rules`,
    );
  // Published ports: the public listener, and the admin listener on the host's loopback only.
  assert.ok(sluice.ports?.includes(`${sluiceConfig.listen.port}:${sluiceConfig.listen.port}`));
  assert.ok(sluice.ports?.includes(`127.0.0.1:${sluiceConfig.admin?.port}:${sluiceConfig.admin?.port}`));
});

test('Sluice runs read-only with its data volume as the only writable path, and gets longer than a drain to stop', () => {
  assert.equal(sluice.read_only, true);
  assert.deepEqual(sluice.tmpfs, ['/tmp']);
  assert.ok((sluice.volumes ?? []).some((v) => v.startsWith('sluice-data:/var/lib/sluice')));
  assert.match(readFileSync(join(root, 'deploy/Dockerfile'), 'utf8'), /^VOLUME \["\/var\/lib\/sluice"\]$/m);
  assert.equal(sluice.stop_signal, 'SIGTERM');
  const drain = Number(/^(\d+)s$/.exec(String(sluiceConfig.listen.drain?.timeout ?? '30s'))?.[1]);
  assert.ok(Number(/^(\d+)s$/.exec(sluice.stop_grace_period ?? '')?.[1]) > drain);
});

test('Prometheus scrapes the Sluice service on its admin port and loads the alert rules (promtool check config on the mounted files)', async () => {
  const prom = svc('prometheus');
  const configPath = (prom.command ?? []).find((a) => a.startsWith('--config.file='))?.split('=')[1] ?? '';
  const config = readYaml(hostFileAt(prom, configPath)) as {
    rule_files: string[];
    scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
  };
  const job = config.scrape_configs.find((j) => j.job_name === 'sluice');
  assert.ok(job);
  assert.equal(job.metrics_path ?? '/metrics', '/metrics');
  assert.deepEqual(
    job.static_configs.flatMap((c) => c.targets),
    [`sluice:${sluiceConfig.admin?.port}`],
  );
  assert.notEqual(
    sluiceConfig.admin?.host,
    '127.0.0.1',
    'the admin listener must be reachable from another container',
  );
  for (const r of config.rule_files) {
    const inContainer = posix.resolve(posix.dirname(configPath), r);
    assert.equal(hostFileAt(prom, inContainer), join(root, 'deploy/monitoring/sluice-rules.yaml'));
  }
  // The container's view, laid out in a temp dir: promtool resolves rule_files as Prometheus does.
  const fsRoot = mkdtempSync(join(tmpdir(), 'sluice-compose-'));
  try {
    for (const b of binds(prom)) {
      mkdirSync(join(fsRoot, dirname(b.container)), { recursive: true });
      copyFileSync(b.host, join(fsRoot, b.container));
    }
    const { stdout } = await run('promtool', ['check', 'config', join(fsRoot, configPath)]);
    assert.match(stdout, /SUCCESS: 1 rule files found/);
  } finally {
    rmSync(fsRoot, { recursive: true, force: true });
  }
});

test('Grafana gets the Prometheus service as its datasource and the dashboard from deploy/monitoring', () => {
  const g = svc('grafana');
  const ds = readYaml(hostFileAt(g, '/etc/grafana/provisioning/datasources/prometheus.yaml')) as {
    datasources: { type: string; url: string; isDefault?: boolean }[];
  };
  assert.equal(ds.datasources.length, 1);
  assert.equal(ds.datasources[0]?.type, 'prometheus');
  assert.equal(ds.datasources[0]?.isDefault, true);
  assert.equal(ds.datasources[0]?.url, 'http://prometheus:9090');
  const providers = readYaml(hostFileAt(g, '/etc/grafana/provisioning/dashboards/sluice.yaml')) as {
    providers: { type: string; options: { path: string } }[];
  };
  const dir = providers.providers[0]?.options.path ?? '';
  const dashboards = binds(g).filter((b) => posix.dirname(b.container) === dir);
  assert.deepEqual(
    dashboards.map((b) => b.host),
    [join(root, 'deploy/monitoring/grafana-dashboard.json')],
  );
  // The dashboard chooses its datasource by type: the provisioned one's.
  const dashboard = JSON.parse(readFileSync(dashboards[0]!.host, 'utf8')) as {
    templating: { list: { type: string; query: string }[] };
  };
  assert.ok(dashboard.templating.list.some((v) => v.type === 'datasource' && v.query === 'prometheus'));
});

test('the collector receives OTLP/HTTP where Sluice exports its traces', () => {
  const c = svc('otel-collector');
  const configPath = (c.command ?? []).find((a) => a.startsWith('--config='))?.split('=')[1] ?? '';
  const config = readYaml(hostFileAt(c, configPath)) as {
    receivers: { otlp: { protocols: { http: { endpoint: string } } } };
    exporters: Record<string, unknown>;
    service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } };
  };
  const http = config.receivers.otlp.protocols.http.endpoint;
  const endpoint = new URL(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '');
  assert.equal(endpoint.hostname, 'otel-collector');
  assert.equal(endpoint.port, http.split(':')[1]);
  assert.equal(http.split(':')[0], '0.0.0.0');
  assert.deepEqual(config.service.pipelines.traces.receivers, ['otlp']);
  for (const e of config.service.pipelines.traces.exporters) assert.ok(e in config.exporters);
});
