/**
 * The Helm chart (deploy/helm/sluice), rendered and linted by a real Helm (test/harness/helm.ts),
 * for the default values and for ci/production-values.yaml. Every rendered object is validated
 * against the Kubernetes OpenAPI schemas (kubernetes-models; the prometheus-operator CRDs with
 * @kubernetes-models/prometheus-operator), and the deployment rules are asserted on the objects:
 * probes on the admin listener, a grace period longer than the drain, the security context, PDB,
 * HPA metrics, deny-by-default NetworkPolicies, secrets only in Secrets, the config reloaded in
 * place (no pod restart), the PrometheusRule equal to deploy/monitoring/sluice-rules.yaml.
 * The rendered config file is checked by `sluice validate`. Expected numbers are from the values
 * files, written by hand.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { helmBinary, runHelm } from '../../harness/helm.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const chart = join(root, 'deploy/helm/sluice');
const production = join(chart, 'ci/production-values.yaml');

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are untyped YAML
type Untyped = any;
type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: Untyped };
  [k: string]: Untyped;
};

/** Where each apiVersion's models are: kubernetes-models, and the prometheus-operator CRDs. */
const modelPackages: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'policy/v1': 'kubernetes-models/policy/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

async function validateAgainstSchema(obj: K8sObject): Promise<void> {
  const pkg = modelPackages[obj.apiVersion];
  assert.ok(pkg, `${obj.kind} ${obj.metadata.name}: no schema for apiVersion ${obj.apiVersion}`);
  const mod = (await import(`${pkg}/${obj.kind}`)) as Record<
    string,
    new (
      d: unknown,
    ) => { validate(): void }
  >;
  const Model = mod[obj.kind];
  assert.ok(Model, `no model ${obj.kind} in ${pkg}`);
  try {
    new Model(obj).validate();
  } catch (err) {
    assert.fail(`${obj.kind} ${obj.metadata.name} is not valid: ${String(err)}`);
  }
}

function template(release: string, args: string[] = []): K8sObject[] {
  const out = runHelm(['template', release, chart, '--namespace', 'gw', ...args]);
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

function one(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ''}, got ${found.length}`);
  return found[0]!;
}

function container(objs: K8sObject[]): Untyped {
  return one(objs, 'Deployment').spec.template.spec.containers[0];
}

function configOf(objs: K8sObject[]): { text: string; config: Record<string, unknown> } {
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-config'));
  assert.ok(cm, 'no config ConfigMap');
  const text = cm.data['sluice.yaml'] as string;
  return { text, config: parse(text) };
}

function renderFails(args: string[]): string {
  try {
    runHelm(['template', 't', chart, ...args]);
  } catch (err) {
    return String(err);
  }
  return assert.fail(`helm template ${args.join(' ')} succeeded`);
}

let work: string;
before(() => {
  helmBinary();
  work = mkdtempSync(join(tmpdir(), 'sluice-helm-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

/** `sluice validate` on a rendered config file, with the variables the chart passes set. */
function sluiceValidate(text: string, name: string): void {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, text);
  try {
    execFileSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'validate', file], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        DATABASE_URL: 'postgres://sluice@db.example:5432/sluice',
        REDIS_URL: 'redis://redis.example:6379',
      },
    });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string };
    assert.fail(`sluice validate rejected the ${name} config:\n${e.stdout}${e.stderr}\n${text}`);
  }
}

test("the chart's rules file is deploy/monitoring/sluice-rules.yaml byte for byte (run `npm run generate`)", () => {
  assert.equal(
    readFileSync(join(chart, 'files/sluice-rules.yaml'), 'utf8'),
    readFileSync(join(root, 'deploy/monitoring/sluice-rules.yaml'), 'utf8'),
  );
});

test('helm lint --strict passes for the default and the production values', () => {
  const a = runHelm(['lint', '--strict', chart]);
  assert.match(a, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  const b = runHelm(['lint', '--strict', chart, '-f', production]);
  assert.match(b, /1 chart\(s\) linted, 0 chart\(s\) failed/);
});

describe('default values', () => {
  let objs: K8sObject[];
  before(() => {
    objs = template('t');
  });

  test('every object is valid against the Kubernetes schemas', async () => {
    assert.deepEqual(objs.map((o) => o.kind).sort(), [
      'ConfigMap',
      'Deployment',
      'NetworkPolicy',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Service',
      'Service',
      'ServiceAccount',
    ]);
    for (const o of objs) await validateAgainstSchema(o);
  });

  test('the rendered config is a valid Sluice config with the listeners on the container ports', () => {
    const { text, config } = configOf(objs);
    sluiceValidate(text, 'default');
    assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8080, drain: { delay: '5s', timeout: '30s' } });
    assert.deepEqual(config.admin, { host: '0.0.0.0', port: 9901 });
    const c = container(objs);
    assert.deepEqual(c.ports, [
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'admin', containerPort: 9901, protocol: 'TCP' },
    ]);
    assert.deepEqual(c.env, [{ name: 'SLUICE_CONFIG', value: '/etc/sluice/sluice.yaml' }]);
  });

  test('probes: /health/ready and /health/live on the admin port', () => {
    const c = container(objs);
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/health/ready', port: 'admin' });
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/health/live', port: 'admin' });
    assert.deepEqual(c.startupProbe.httpGet, { path: '/health/live', port: 'admin' });
  });

  test('graceful shutdown: preStop sleep, then a grace period longer than sleep + drain delay + timeout', () => {
    const d = one(objs, 'Deployment');
    assert.deepEqual(container(objs).lifecycle, { preStop: { sleep: { seconds: 5 } } });
    // values.yaml: preStop 5 s + listen.drain.delay 5 s + listen.drain.timeout 30 s = 40 s.
    const grace = d.spec.template.spec.terminationGracePeriodSeconds;
    assert.ok(grace > 40, `terminationGracePeriodSeconds ${grace} must exceed 40`);
    assert.equal(grace, 50);
    assert.deepEqual(d.spec.strategy, {
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
  });

  test('security: non-root, read-only root, no escalation, no capabilities, RuntimeDefault seccomp', () => {
    const pod = one(objs, 'Deployment').spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
    const sc = container(objs).securityContext;
    assert.equal(sc.runAsNonRoot, true);
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.equal(sc.privileged, false);
    assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
    assert.deepEqual(sc.seccompProfile, { type: 'RuntimeDefault' });
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(one(objs, 'ServiceAccount').automountServiceAccountToken, false);
    assert.deepEqual(container(objs).resources, {
      requests: { cpu: '250m', memory: '256Mi' },
      limits: { memory: '512Mi' },
    });
  });

  test('writable paths are emptyDirs; the config is a ConfigMap directory mount (no subPath)', () => {
    const pod = one(objs, 'Deployment').spec.template.spec;
    assert.deepEqual(container(objs).volumeMounts, [
      { name: 'config', mountPath: '/etc/sluice', readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'data', mountPath: '/var/lib/sluice' },
    ]);
    assert.deepEqual(pod.volumes, [
      { name: 'config', configMap: { name: 't-sluice-config' } },
      { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
      { name: 'data', emptyDir: { sizeLimit: '1Gi' } },
    ]);
  });

  test('Services: public http and a separate admin Service', () => {
    const pub = one(objs, 'Service', 't-sluice');
    assert.deepEqual(pub.spec.ports, [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
    const admin = one(objs, 'Service', 't-sluice-admin');
    assert.equal(admin.spec.type, 'ClusterIP');
    assert.deepEqual(admin.spec.ports, [{ name: 'admin', port: 9901, targetPort: 'admin', protocol: 'TCP' }]);
  });

  test('PodDisruptionBudget: at most one pod down, selecting the gateway pods', () => {
    const pdb = one(objs, 'PodDisruptionBudget');
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.deepEqual(pdb.spec.selector.matchLabels, one(objs, 'Deployment').spec.selector.matchLabels);
  });

  test('NetworkPolicy: a default deny of both directions, and allows for the public port, admin, DNS', () => {
    const labels = one(objs, 'Deployment').spec.template.metadata.labels;
    const deny = one(objs, 'NetworkPolicy', 't-sluice-default-deny');
    assert.deepEqual(deny.spec.policyTypes, ['Ingress', 'Egress']);
    assert.equal(deny.spec.ingress, undefined);
    assert.equal(deny.spec.egress, undefined);
    for (const [k, v] of Object.entries(deny.spec.podSelector.matchLabels)) assert.equal(labels[k], v);
    const allow = one(objs, 'NetworkPolicy', 't-sluice');
    assert.deepEqual(allow.spec.ingress, [
      { ports: [{ port: 'http', protocol: 'TCP' }] },
      {
        ports: [{ port: 'admin', protocol: 'TCP' }],
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
      },
    ]);
    // No external store or Redis configured: only DNS leaves the pod.
    assert.deepEqual(allow.spec.egress, [
      {
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
          },
        ],
      },
    ]);
  });

  test('no HPA, ServiceMonitor or PrometheusRule unless enabled; replicas from replicaCount', () => {
    assert.equal(one(objs, 'Deployment').spec.replicas, 2);
    for (const kind of ['HorizontalPodAutoscaler', 'ServiceMonitor', 'PrometheusRule', 'Secret'])
      assert.equal(objs.filter((o) => o.kind === kind).length, 0, kind);
  });
});

describe('production values (ci/production-values.yaml)', () => {
  let objs: K8sObject[];
  before(() => {
    objs = template('prod', ['-f', production]);
  });

  test('every object is valid against the Kubernetes and prometheus-operator schemas', async () => {
    assert.deepEqual(objs.map((o) => o.kind).sort(), [
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'NetworkPolicy',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'PrometheusRule',
      'Service',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ]);
    for (const o of objs) await validateAgainstSchema(o);
  });

  test('the rendered config is valid and takes Redis and the store from the environment', () => {
    const { text, config } = configOf(objs);
    sluiceValidate(text, 'production');
    assert.equal(config.store, '${DATABASE_URL}');
    assert.deepEqual(config.redis, { url: '${REDIS_URL}' });
    // The values leave the audit outbox out; the chart puts it on the writable emptyDir.
    assert.deepEqual((config.audit as { outbox: unknown }).outbox, { dir: '/var/lib/sluice/audit-outbox' });
    const mounts = container(objs).volumeMounts as { name: string; mountPath: string; readOnly?: boolean }[];
    assert.deepEqual(
      mounts.find((m) => m.mountPath === '/var/lib/sluice'),
      { name: 'data', mountPath: '/var/lib/sluice' },
    );
  });

  test('secrets come from the existing Secrets, by reference', () => {
    const env = container(objs).env;
    const ref = (name: string) => env.find((e: { name: string }) => e.name === name)?.valueFrom?.secretKeyRef;
    assert.deepEqual(ref('DATABASE_URL'), { name: 'sluice-store', key: 'url' });
    assert.deepEqual(ref('REDIS_URL'), { name: 'sluice-redis', key: 'url' });
    assert.deepEqual(ref('SLUICE_ADMIN_TOKEN'), { name: 'sluice-admin', key: 'admin-token', optional: true });
    assert.deepEqual(ref('SLUICE_ADMIN_TOKENS'), {
      name: 'sluice-admin',
      key: 'admin-tokens',
      optional: true,
    });
    assert.deepEqual(ref('SLUICE_AUDIT_KEY'), {
      name: 'sluice-audit',
      key: 'audit-signing-key',
      optional: true,
    });
    assert.deepEqual(ref('SLUICE_AUDIT_SUBJECT_KEK'), {
      name: 'sluice-audit',
      key: 'audit-subject-kek',
      optional: true,
    });
    assert.equal(
      container(objs).image,
      'registry.example.internal/sluice@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    );
  });

  test('the grace period exceeds preStop + drain delay + timeout (5 + 10 + 60 s)', () => {
    const grace = one(objs, 'Deployment').spec.template.spec.terminationGracePeriodSeconds;
    assert.ok(grace > 75, `terminationGracePeriodSeconds ${grace} must exceed 75`);
  });

  test('HPA: CPU utilisation and p95 request latency per pod; the Deployment leaves replicas to it', () => {
    const hpa = one(objs, 'HorizontalPodAutoscaler');
    assert.deepEqual(hpa.spec.scaleTargetRef, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'prod-sluice',
    });
    assert.equal(hpa.spec.minReplicas, 3);
    assert.equal(hpa.spec.maxReplicas, 30);
    assert.deepEqual(hpa.spec.metrics, [
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 65 } },
      },
      {
        type: 'Pods',
        pods: {
          metric: { name: 'sluice_request_duration_seconds_p95' },
          target: { type: 'AverageValue', averageValue: '250m' },
        },
      },
    ]);
    assert.equal(one(objs, 'Deployment').spec.replicas, undefined);
    assert.equal(one(objs, 'PodDisruptionBudget').spec.minAvailable, 2);
    assert.equal(one(objs, 'PodDisruptionBudget').spec.maxUnavailable, undefined);
  });

  test('NetworkPolicy: admin only from Prometheus, egress to DNS, PostgreSQL, Redis, upstream CIDRs', () => {
    const allow = one(objs, 'NetworkPolicy', 'prod-sluice');
    assert.deepEqual(allow.spec.ingress[0], {
      ports: [{ port: 'http', protocol: 'TCP' }],
      from: [{ ipBlock: { cidr: '0.0.0.0/0' } }],
    });
    assert.deepEqual(allow.spec.ingress[1].from, [
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
      },
    ]);
    const egress = allow.spec.egress;
    assert.deepEqual(
      egress.map((r: { ports: { port: number }[] }) => r.ports.map((p) => p.port)),
      [[53, 53], [5432], [6379], [8080], [4318]],
    );
    assert.deepEqual(egress[1].to, [{ ipBlock: { cidr: '10.20.0.0/24' } }]);
    assert.deepEqual(egress[2].to, [{ ipBlock: { cidr: '10.20.1.0/24' } }]);
    assert.deepEqual(egress[3].to, [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.20.0.0/16'] } }]);
  });

  test('ServiceMonitor scrapes /metrics on the admin Service', () => {
    const sm = one(objs, 'ServiceMonitor');
    const admin = one(objs, 'Service', 'prod-sluice-admin');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels))
      assert.equal(admin.metadata.labels[k], v);
    assert.notEqual(
      one(objs, 'Service', 'prod-sluice').metadata.labels['app.kubernetes.io/component'],
      'admin',
    );
    assert.deepEqual(sm.spec.namespaceSelector, { matchNames: ['gw'] });
    assert.deepEqual(sm.spec.endpoints, [
      { port: 'admin', path: '/metrics', interval: '30s', scrapeTimeout: '10s' },
    ]);
    assert.equal(sm.metadata.labels.release, 'kube-prometheus-stack');
  });

  test("PrometheusRule holds deploy/monitoring/sluice-rules.yaml's groups", () => {
    const rule = one(objs, 'PrometheusRule');
    const file = parse(readFileSync(join(root, 'deploy/monitoring/sluice-rules.yaml'), 'utf8'));
    assert.ok(file.groups.length > 0);
    assert.deepEqual(rule.spec, file);
  });
});

test('HPA with a fleet-wide External latency metric, selected by route', async () => {
  const objs = template('t', [
    '--set',
    'autoscaling.enabled=true,autoscaling.cpu.enabled=false,autoscaling.latency.enabled=true',
    '--set',
    'autoscaling.latency.type=External,autoscaling.latency.selector.route=public,autoscaling.latency.averageValue=300m',
  ]);
  const hpa = one(objs, 'HorizontalPodAutoscaler');
  await validateAgainstSchema(hpa);
  assert.deepEqual(hpa.spec.metrics, [
    {
      type: 'External',
      external: {
        metric: {
          name: 'sluice_request_duration_seconds_p95',
          selector: { matchLabels: { route: 'public' } },
        },
        target: { type: 'Value', value: '300m' },
      },
    },
  ]);
  assert.match(
    renderFails(['--set', 'autoscaling.enabled=true,autoscaling.cpu.enabled=false']),
    /enable the cpu or the latency metric/,
  );
});

test('inline secrets land in the Secret only, never in a ConfigMap or the pod spec', () => {
  const secrets = {
    'externalPostgresql.url': 'postgres://sluice:pg-PASSWORD-1@db:5432/sluice',
    'externalRedis.url': 'redis://:redis-PASSWORD-2@redis:6379',
    'adminTokens.token': 'admin-TOKEN-3',
    'audit.signingKey': 'signing-KEY-4',
  };
  const args = Object.entries(secrets).flatMap(([k, v]) => ['--set-string', `${k}=${v}`]);
  const text = runHelm(['template', 't', chart, ...args]);
  const objs = parseAllDocuments(text).map((d) => d.toJS() as K8sObject);
  const secret = one(objs, 'Secret', 't-sluice');
  const decoded = Object.values(secret.data as Record<string, string>).map((b) =>
    Buffer.from(b, 'base64').toString(),
  );
  assert.deepEqual(decoded.sort(), Object.values(secrets).sort());
  for (const o of objs.filter((x) => x.kind !== 'Secret')) {
    const rendered = JSON.stringify(o);
    for (const value of Object.values(secrets))
      assert.ok(!rendered.includes(value), `${o.kind} ${o.metadata.name} contains a secret value`);
    // Nor base64 of one (a Secret copied into an annotation, say).
    for (const value of Object.values(secrets))
      assert.ok(
        !rendered.includes(Buffer.from(value).toString('base64')),
        `${o.kind} holds an encoded secret`,
      );
  }
  const env = container(objs).env as { name: string; valueFrom?: { secretKeyRef: { name: string } } }[];
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'SLUICE_ADMIN_TOKEN', 'SLUICE_AUDIT_KEY'])
    assert.equal(env.find((e) => e.name === name)?.valueFrom?.secretKeyRef.name, 't-sluice', name);
  // Secrets are read at start: a changed Secret rolls the pods (a checksum of the Secret).
  assert.match(
    one(objs, 'Deployment').spec.template.metadata.annotations['checksum/secret'],
    /^[0-9a-f]{64}$/,
  );
  // The config asks for Redis through the variable.
  assert.deepEqual(configOf(objs).config.redis, { url: '${REDIS_URL}' });
});

test('a config change rewrites the ConfigMap only: the pod template is unchanged, so no pod restarts', () => {
  const a = template('t');
  const b = template('t', [
    '--set',
    'config.logging.level=debug',
    '--set',
    'config.listen.drain.timeout=30s',
  ]);
  assert.notEqual(configOf(a).text, configOf(b).text);
  assert.match(configOf(b).text, /level: debug/);
  assert.deepEqual(one(b, 'Deployment').spec.template, one(a, 'Deployment').spec.template);
  const annotations = one(a, 'Deployment').spec.template.metadata.annotations ?? {};
  assert.deepEqual(
    Object.keys(annotations).filter((k) => k.includes('config')),
    [],
  );
});

test('configYaml is written verbatim, and its ports must equal the container ports', () => {
  const text = `# my config
listen: { host: 0.0.0.0, port: 8080 }
admin: { host: 0.0.0.0, port: 9901 }
upstreams:
  a: { targets: [{ url: "http://a.default.svc:80" }] }
routes:
  - { name: a, match: { path: { prefix: / } }, upstream: a }
`;
  const file = join(work, 'verbatim.yaml');
  writeFileSync(file, text);
  const objs = template('t', ['--set-file', `configYaml=${file}`]);
  assert.equal(configOf(objs).text, text);
  sluiceValidate(configOf(objs).text, 'verbatim');
  writeFileSync(file, text.replace('port: 8080', 'port: 8081'));
  assert.match(
    renderFails(['--set-file', `configYaml=${file}`]),
    /listen\.port \(8081\) must equal containerPorts\.public/,
  );
});

test('the chart refuses a grace period the drain does not fit in, and an unsafe securityContext', () => {
  // Defaults: 5 + 5 + 30 = 40 s of shutdown.
  assert.match(renderFails(['--set', 'terminationGracePeriodSeconds=40']), /must exceed .*\(40 s\)/);
  assert.doesNotThrow(() => template('t', ['--set', 'terminationGracePeriodSeconds=41']));
  assert.match(
    renderFails(['--set', 'config.listen.drain.timeout=2m', '--set', 'terminationGracePeriodSeconds=100']),
    /\(130 s\)/,
  );
  assert.match(
    renderFails(['--set', 'securityContext.readOnlyRootFilesystem=false']),
    /readOnlyRootFilesystem/,
  );
  assert.match(
    renderFails(['--set', 'securityContext.allowPrivilegeEscalation=true']),
    /allowPrivilegeEscalation/,
  );
  assert.match(renderFails(['--set', 'replicas=3']), /additional properties 'replicas' not allowed/);
});
