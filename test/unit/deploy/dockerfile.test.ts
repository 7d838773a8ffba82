/**
 * deploy/Dockerfile, checked without a Docker engine: parsed with dockerfile-ast (the parser of the
 * Docker language server) and held to the rules of docs/deployment.md; what it copies must exist
 * (in the build context, not excluded by .dockerignore, or produced by an earlier stage), what it
 * runs must be what `tsc -p tsconfig.build.json` writes, its HEALTHCHECK script must answer for a
 * real gateway, and its SBOM command must work on this repository.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type Copy, DockerfileParser, type Instruction } from 'dockerfile-ast';
import { startGateway } from '../../harness/gateway.js';
import { refusedOrigin } from '../../harness/ports.js';

const run = promisify(execFile);
const root = new URL('../../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  version: string;
  license: string;
  engines: { node: string };
  bin: Record<string, string>;
  scripts: Record<string, string>;
};
const lock = JSON.parse(read('package-lock.json')) as {
  packages: Record<string, { version?: string; dev?: boolean; hasInstallScript?: boolean; link?: boolean }>;
};
const dockerfile = DockerfileParser.parse(read('deploy/Dockerfile'));

/** Global ARG defaults (before the first FROM): what `${NAME}` in a FROM means without --build-arg. */
const globalArgs = new Map(
  dockerfile
    .getInitialARGs()
    .map((a) => [a.getProperty()?.getName() ?? '', a.getProperty()?.getValue() ?? '']),
);
const expand = (s: string) => s.replace(/\$\{(\w+)\}/g, (_, n: string) => globalArgs.get(n) ?? `\${${n}}`);
const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
/** The words of an exec-form (JSON array) instruction, or undefined for the shell form. */
function execForm(i: Instruction): string[] | undefined {
  const text = i.getArgumentsContent() ?? '';
  const json = text.replace(/^CMD\s+/, '');
  if (!json.trim().startsWith('[')) return undefined;
  return JSON.parse(json) as string[];
}

interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}
const stages: Stage[] = [];
for (const i of dockerfile.getInstructions()) {
  if (i.getKeyword() === 'FROM') {
    const a = args(i);
    stages.push({ name: a[2] ?? String(stages.length), image: expand(a[0] ?? ''), instructions: [] });
  } else stages.at(-1)?.instructions.push(i);
}
const stage = (name: string) => {
  const s = stages.find((x) => x.name === name);
  assert.ok(s, `stage ${name}`);
  return s;
};
const runtime = stages.at(-1)!;
const of = (s: Stage, keyword: string) => s.instructions.filter((i) => i.getKeyword() === keyword);
/** The stage's working directory at an instruction (WORKDIRs before it, relative ones joined). */
function workdirAt(s: Stage, at: Instruction): string {
  let dir = '/';
  for (const i of s.instructions) {
    if (i === at) break;
    if (i.getKeyword() === 'WORKDIR') dir = posix.resolve(dir, args(i)[0] ?? '');
  }
  return dir;
}
const copyFrom = (c: Instruction) =>
  (c as Copy)
    .getFlags()
    .find((f) => f.getName() === 'from')
    ?.getValue() ?? undefined;
/** [sources, destination (absolute)] of a COPY. */
function copyPaths(s: Stage, c: Instruction): { sources: string[]; dest: string } {
  const a = args(c).filter((x) => !x.startsWith('--'));
  const dest = a.at(-1) ?? '';
  return { sources: a.slice(0, -1), dest: posix.resolve(workdirAt(s, c), dest) };
}

/** What .dockerignore keeps out of the build context (no `!` exceptions are used there). */
const ignorePatterns = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
function ignored(path: string): boolean {
  const parts = path.split('/');
  return ignorePatterns.some((p) => {
    assert.ok(!p.startsWith('!'), 'exceptions are not modelled here');
    const re = new RegExp(
      `^${p
        .replace(/[.+^$()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '\u0000')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/\u0000/g, '(?:.*/)?')}$`,
    );
    return parts.some((_, n) => re.test(parts.slice(0, n + 1).join('/')));
  });
}

// The build the image runs, into a temporary outDir: what its CMD and HEALTHCHECK must name.
let outDir = '';
before(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'sluice-dockerfile-'));
  await run(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json', '--outDir', outDir], {
    cwd: root,
  });
});
after(() => rmSync(outDir, { recursive: true, force: true }));

test('multi-stage, every stage on one Node 20 slim base pinned by exact tag and digest', () => {
  assert.deepEqual(
    stages.map((s) => s.name),
    ['build', 'deps', 'runtime'],
  );
  const major = /(\d+)\./.exec(pkg.engines.node)?.[1];
  for (const s of stages) {
    const m = /^node:(\d+)\.(\d+)\.(\d+)-bookworm-slim@sha256:[0-9a-f]{64}$/.exec(s.image);
    assert.ok(m, `${s.name}: ${s.image} is not node:X.Y.Z-bookworm-slim@sha256:…`);
    assert.equal(m[1], major, 'the Node major of package.json engines');
  }
  assert.equal(new Set(stages.map((s) => s.image)).size, 1, 'one base for every stage');
  // The label naming the base says the same tag.
  const tag = runtime.image.split('@')[0];
  assert.equal(labels().get('org.opencontainers.image.base.name'), `docker.io/library/${tag}`);
});

test('the build stage installs from the lock file and runs `npm run build`, which compiles with tsconfig.build.json and copies the migrations', () => {
  const build = stage('build');
  const runs = of(build, 'RUN').map((r) => args(r).join(' '));
  assert.ok(runs.some((r) => /^npm ci\b/.test(r)));
  assert.ok(runs.includes('npm run build'));
  assert.match(pkg.scripts.build ?? '', /^tsc -p tsconfig\.build\.json && /);
  assert.match(pkg.scripts.build ?? '', /cpSync\('src\/store\/migrations', 'dist\/store\/migrations'/);
  // Everything the build reads is copied in before it: tsconfig.build.json extends tsconfig.json
  // and includes src/.
  const tsconfigBuild = JSON.parse(read('tsconfig.build.json')) as { extends: string; include: string[] };
  const copied = of(build, 'COPY').flatMap((c) => copyPaths(build, c).sources);
  for (const need of [
    'package.json',
    'package-lock.json',
    'tsconfig.build.json',
    tsconfigBuild.extends,
    ...tsconfigBuild.include,
  ])
    assert.ok(copied.includes(need.replace(/^\.\//, '')), `build stage copies ${need}`);
});

test('the runtime gets production dependencies only (npm ci --omit=dev), never the build stage’s node_modules', () => {
  const deps = stage('deps');
  const install = of(deps, 'RUN').map((r) => args(r).join(' '));
  assert.ok(install.some((r) => /^npm ci --omit=dev\b/.test(r) && r.includes('--ignore-scripts')));
  // --ignore-scripts is safe only while no production package needs an install script.
  const scripted = Object.entries(lock.packages)
    .filter(([k, v]) => k !== '' && !v.dev && v.hasInstallScript)
    .map(([k]) => k);
  assert.deepEqual(scripted, [], 'production packages with install scripts');
  const modules = of(runtime, 'COPY').filter((c) =>
    copyPaths(runtime, c).sources.some((s) => s.includes('node_modules')),
  );
  assert.deepEqual(
    modules.map((c) => copyFrom(c)),
    ['deps'],
  );
});

test('every COPY source exists: in the build context (and not .dockerignored) or as an earlier stage’s output', () => {
  const build = stage('build');
  const buildOut = posix.resolve(workdirAt(build, of(build, 'RUN')[0]!), 'dist');
  const sbomRun = of(build, 'RUN').find((r) => args(r).includes('cyclonedx-npm'))!;
  const sbomFile = args(sbomRun)[args(sbomRun).indexOf('--output-file') + 1];
  const deps = stage('deps');
  const produced = new Map<string, string[]>([
    // tsconfig.build.json's outDir, relative to the build stage's WORKDIR.
    ['build', [buildOut, sbomFile ?? '']],
    ['deps', [posix.resolve(workdirAt(deps, of(deps, 'RUN')[0]!), 'node_modules')]],
  ]);
  assert.equal(
    (JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { outDir: string } }).compilerOptions
      .outDir,
    'dist',
  );
  for (const s of stages)
    for (const c of of(s, 'COPY')) {
      const from = copyFrom(c);
      for (const src of copyPaths(s, c).sources) {
        if (from === undefined) {
          assert.ok(existsSync(join(root, src)), `${s.name}: COPY ${src}: not in the repository`);
          assert.ok(!ignored(src), `${s.name}: COPY ${src} is excluded by .dockerignore`);
        } else {
          assert.ok(
            produced.get(from)?.includes(src),
            `${s.name}: COPY --from=${from} ${src}: not produced there`,
          );
        }
      }
    }
  // And the context keeps local state out.
  for (const p of ['node_modules', 'dist', 'data/sluice', '.git', 'test/unit', '.env'])
    assert.ok(ignored(p), p);
});

test('ENTRYPOINT runs the CLI that the build writes, the same file as package.json `bin`', () => {
  const [entry] = of(runtime, 'ENTRYPOINT');
  const words = execForm(entry!);
  assert.ok(words, 'exec form (signals reach node, no shell in between)');
  assert.equal(words[0], 'node');
  const main = words[1] ?? '';
  const distCopy = of(runtime, 'COPY')
    .map((c) => copyPaths(runtime, c))
    .find((p) => p.sources.includes('/src/dist'))!;
  assert.ok(main.startsWith(`${distCopy.dest}/`));
  const rel = posix.relative(distCopy.dest, main);
  assert.equal(rel, 'cli/main.js');
  assert.equal(pkg.bin.sluice, `dist/${rel}`);
  assert.ok(existsSync(join(outDir, rel)), `tsc wrote ${rel}`);
  assert.deepEqual(execForm(of(runtime, 'CMD')[0]!), ['start']);
  // Files the built code reads beside dist/: package.json (the version, read from
  // ../package.json of dist/version.js) and the example config (`start --demo`,
  // ../../examples/sluice.yaml of dist/cli/).
  const dests = of(runtime, 'COPY').map((c) => copyPaths(runtime, c).dest);
  assert.ok(dests.includes(posix.resolve(distCopy.dest, '../package.json')));
  assert.ok(dests.includes(posix.resolve(distCopy.dest, 'cli', '../../examples/sluice.yaml')));
  assert.match(read('src/version.ts'), /new URL\('\.\.\/package\.json', import\.meta\.url\)/);
  assert.match(
    read('src/cli/start.ts'),
    /new URL\('\.\.\/\.\.\/examples\/sluice\.yaml', import\.meta\.url\)/,
  );
  // SLUICE_CONFIG names a file the image has (the example, until an operator mounts one).
  assert.ok(dests.includes(env().get('SLUICE_CONFIG') ?? ''));
});

test('non-root numeric user; read-only-root friendly: the one writable path is a volume owned by that user and the working directory', () => {
  const users = of(runtime, 'USER').map((u) => args(u)[0] ?? '');
  assert.equal(users.length, 1);
  const [uid, gid] = users[0]!.split(':');
  assert.match(uid ?? '', /^[1-9]\d*$/, 'numeric, so runAsNonRoot can check it');
  assert.match(gid ?? '', /^[1-9]\d*$/);
  const userIndex = runtime.instructions.indexOf(of(runtime, 'USER')[0]!);
  assert.ok(userIndex > runtime.instructions.indexOf(of(runtime, 'RUN').at(-1)!), 'no RUN as that user');
  const volumes = of(runtime, 'VOLUME').flatMap((v) => execForm(v) ?? args(v));
  const workdir = args(of(runtime, 'WORKDIR').at(-1)!)[0];
  assert.deepEqual(volumes, [workdir]);
  const setup = of(runtime, 'RUN')
    .map((r) => args(r).join(' '))
    .join(' ');
  assert.ok(setup.includes(`chown ${uid}:${gid} ${workdir}`), 'the volume belongs to the user');
  // The embedded store's default data dir (and the audit outbox inside it) is relative to the cwd.
  assert.match(read('src/store/open.ts'), /DEFAULT_DATA_DIR = '\.\/data\/sluice'/);
  assert.match(read('src/server/audit.ts'), /join\(opts\.dataDir \?\? DEFAULT_DATA_DIR, 'audit-outbox'\)/);
});

test('STOPSIGNAL SIGTERM, which the gateway drains on', () => {
  assert.deepEqual(of(runtime, 'STOPSIGNAL').map(args), [['SIGTERM']]);
  assert.match(read('src/cli/start.ts'), /process\.once\('SIGTERM'/);
});

test('OCI labels: title, description, version (package.json), licenses, revision, created', () => {
  const l = labels();
  const runtimeArgs = new Map(
    of(runtime, 'ARG').map((a) => {
      const [k, v] = (args(a)[0] ?? '').split('=');
      return [k, v];
    }),
  );
  const resolved = (v: string | undefined) =>
    v?.replace(/\$\{(\w+)\}/g, (_, n: string) => runtimeArgs.get(n) ?? '');
  assert.equal(l.get('org.opencontainers.image.title'), 'Sluice');
  assert.ok(l.get('org.opencontainers.image.description'));
  assert.equal(resolved(l.get('org.opencontainers.image.version')), pkg.version);
  assert.equal(l.get('org.opencontainers.image.licenses'), pkg.license);
  assert.ok(l.has('org.opencontainers.image.revision'));
  assert.ok(l.has('org.opencontainers.image.created'));
});

test('HEALTHCHECK runs the built healthcheck script, which answers 0 for a live gateway’s /health/live and 1 otherwise', async () => {
  const [hc] = of(runtime, 'HEALTHCHECK');
  const flags = new Map(
    (hc as unknown as { getFlags(): { getName(): string; getValue(): string }[] })
      .getFlags()
      .map((f) => [f.getName(), f.getValue()]),
  );
  for (const f of ['interval', 'timeout', 'start-period', 'retries']) assert.ok(flags.has(f), f);
  const words = execForm(hc!);
  assert.ok(words, 'exec form: the slim image has no curl or wget; node does the GET');
  assert.equal(words[0], 'node');
  const script = posix.relative('/app/dist', words[1] ?? '');
  assert.ok(existsSync(join(outDir, script)), `tsc wrote ${script}`);
  const url = env().get('SLUICE_HEALTHCHECK_URL') ?? '';
  assert.equal(new URL(url).pathname, '/health/live');
  assert.equal(new URL(url).port, '9901', 'the admin port of examples/sluice.yaml');
  assert.match(read('examples/sluice.yaml'), /admin: \{ host: 127\.0\.0\.1, port: 9901 \}/);

  const gw = await startGateway({ upstreams: {}, routes: [] });
  try {
    const ok = await run(process.execPath, [join(outDir, script)], {
      env: { ...process.env, SLUICE_HEALTHCHECK_URL: `${gw.adminUrl}/health/live` },
    });
    assert.equal(ok.stderr, '');
    const dead = refusedOrigin();
    await assert.rejects(
      run(process.execPath, [join(outDir, script)], {
        env: { ...process.env, SLUICE_HEALTHCHECK_URL: `${dead.origin}/health/live` },
      }),
      (err: { code?: number }) => err.code === 1,
    );
    dead.close();
    await assert.rejects(
      run(process.execPath, [join(outDir, script)], {
        env: { ...process.env, SLUICE_HEALTHCHECK_URL: `${gw.adminUrl}/no-such-path` },
      }),
      (err: { code?: number }) => err.code === 1,
    );
  } finally {
    await gw.stop();
  }
});

test('the SBOM command of the build stage works here: CycloneDX JSON listing exactly the production packages of package-lock.json', async () => {
  const build = stage('build');
  const sbomRun = of(build, 'RUN').find((r) => args(r).includes('cyclonedx-npm'));
  assert.ok(sbomRun);
  const words = args(sbomRun);
  const out = join(outDir, 'sbom.cdx.json');
  words[words.indexOf('--output-file') + 1] = out;
  assert.equal(words[0], 'npx');
  await run('npx', words.slice(1), { cwd: root });
  const bom = JSON.parse(readFileSync(out, 'utf8')) as {
    bomFormat: string;
    specVersion: string;
    metadata: { component: { name: string; version: string } };
    components: Component[];
  };
  interface Component {
    group?: string;
    name: string;
    version: string;
    purl: string;
    components?: Component[];
  }
  assert.equal(bom.bomFormat, 'CycloneDX');
  assert.equal(bom.specVersion, '1.6');
  assert.deepEqual([bom.metadata.component.name, bom.metadata.component.version], ['sluice', pkg.version]);
  const listed = new Set<string>();
  const walk = (cs: Component[] | undefined) => {
    for (const c of cs ?? []) {
      listed.add(`${c.group ? `${c.group}/` : ''}${c.name}@${c.version}`);
      assert.match(c.purl, /^pkg:npm\//);
      walk(c.components);
    }
  };
  walk(bom.components);
  const version = (name: string) => lock.packages[`node_modules/${name}`]?.version;
  for (const name of ['undici', 'fastify', '@electric-sql/pglite', 'pg', 'ioredis'])
    assert.ok(listed.has(`${name}@${version(name)}`), `${name}@${version(name)} in the SBOM`);
  for (const dev of ['typescript', 'tsx', '@biomejs/biome', 'dockerfile-ast', '@cyclonedx/cyclonedx-npm'])
    assert.ok(![...listed].some((c) => c.startsWith(`${dev}@`)), `dev dependency ${dev} not in the SBOM`);
  // Exactly what `npm ci --omit=dev` installs: every non-dev package of the lock file.
  const production = new Set(
    Object.entries(lock.packages)
      .filter(([k, v]) => k !== '' && !v.dev && !v.link)
      .map(([k, v]) => `${k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${v.version}`),
  );
  assert.deepEqual([...listed].sort(), [...production].sort());
});

function labels(): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of of(runtime, 'LABEL'))
    for (const p of (
      l as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] }
    ).getProperties())
      m.set(p.getName(), p.getValue() ?? '');
  return m;
}

function env(): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of of(runtime, 'ENV'))
    for (const p of (
      e as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] }
    ).getProperties())
      m.set(p.getName(), p.getValue() ?? '');
  return m;
}
