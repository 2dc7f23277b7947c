// Benchmark: `xenosctl apply` throughput against a real xenosd process on loopback. 1,000
// ServiceInstances in one multi-document file are loaded and validated (src/api/manifest.ts),
// then applied one at a time through the CLI's client, as `xenosctl apply` does (GET, then POST or
// merge PATCH): first created, then unchanged (GET only), then configured; finally the real
// xenosctl process applies the whole file (start-up and validation included). Prints objects/s
// next to the bound it is held against (>= 100 objects/s for creates).
//
//   node --no-warnings bench/apply-1000.ts [objects=1000]

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifestFiles } from '../src/api/manifest.ts';
import { applyObject } from '../src/cli/commands/apply.ts';
import { loadLocalKinds } from '../src/cli/local-kinds.ts';
import type { ManifestObject } from '../src/cli/manifests.ts';
import { KindResolver } from '../src/cli/resources.ts';
import { XenosClient } from '../src/client/client.ts';
import { XENOSCTL } from '../test/cli/run-xenosctl.ts';
import { removeDataDir, startXenosd } from '../test/daemon/xenosd-process.ts';
import { recordFigure } from './lib/figures.ts';

const BOUND_CREATES_PER_S = 100;
const objects = Number(process.argv[2] ?? 1000);

function manifest(ns: string, parameter: string): string {
  const docs: string[] = [];
  for (let i = 0; i < objects; i++) {
    docs.push(`apiVersion: xenos.io/v1alpha1
kind: ServiceInstance
metadata:
  name: web-${i}
  namespace: ${ns}
  labels:
    app: web
spec:
  templateRef:
    name: web
  runStrategy: Manual
  parameters:
    index: "${i}"
    version: "${parameter}"
`);
  }
  return docs.join('---\n');
}

const dir = mkdtempSync(join(tmpdir(), 'bench-apply-'));
const xd = await startXenosd({ hostName: 'bench' });
const client = new XenosClient({ server: xd.url, token: xd.token });
try {
  const resolver = new KindResolver({ client, localKinds: loadLocalKinds });
  const file = join(dir, 'instances.yaml');

  const load = async (parameter: string): Promise<{ objs: ManifestObject[]; ms: number }> => {
    writeFileSync(file, manifest('bench', parameter));
    const t0 = performance.now();
    const loaded = await loadManifestFiles([file]);
    if (loaded.errors.length) throw new Error(`manifest errors: ${loaded.errors[0].message}`);
    const objs: ManifestObject[] = [];
    for (const d of loaded.docs) {
      const kind = await resolver.forObject(d.object.apiVersion, d.object.kind);
      objs.push({
        file,
        line: d.line,
        object: d.object,
        kind,
        namespace: 'bench',
        name: d.object.metadata.name,
      });
    }
    return { objs, ms: performance.now() - t0 };
  };

  const pass = async (objs: ManifestObject[], expect: string) => {
    const t0 = performance.now();
    for (const m of objs) {
      const { result } = await applyObject(client, m);
      if (result !== expect) throw new Error(`${m.name}: ${result}, expected ${expect}`);
    }
    return performance.now() - t0;
  };

  const v1 = await load('1');
  const created = await pass(v1.objs, 'created');
  const unchanged = await pass(v1.objs, 'unchanged');
  const v2 = await load('2');
  const configured = await pass(v2.objs, 'configured');

  writeFileSync(file, manifest('bench-cli', '1'));
  const t0 = performance.now();
  const cli = spawnSync(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', XENOSCTL, 'apply', '-f', file],
    {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: dir,
        XENOS_CONFIG: join(dir, 'none.yaml'),
        XENOS_SERVER: xd.url,
        XENOS_TOKEN: xd.token,
      },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const cliMs = performance.now() - t0;
  if (cli.status !== 0) throw new Error(`xenosctl apply failed: ${cli.stderr}`);
  const createdLines = cli.stdout.split('\n').filter((l) => l.endsWith(' created')).length;
  if (createdLines !== objects) throw new Error(`xenosctl created ${createdLines} of ${objects}`);

  const rate = (ms: number) => (objects / (ms / 1000)).toFixed(0);
  console.log(`apply-1000: ${objects} ServiceInstances, one at a time, to a real xenosd at ${xd.url}`);
  console.log(`  load + validate   ${v1.ms.toFixed(0)} ms   (${rate(v1.ms)} objects/s)`);
  console.log(`  created           ${created.toFixed(0)} ms   ${rate(created)} objects/s   (GET 404 + POST)`);
  console.log(`  unchanged         ${unchanged.toFixed(0)} ms   ${rate(unchanged)} objects/s   (GET only)`);
  console.log(
    `  configured        ${configured.toFixed(0)} ms   ${rate(configured)} objects/s   (GET + merge PATCH)`,
  );
  console.log(
    `  xenosctl process  ${cliMs.toFixed(0)} ms   ${rate(cliMs)} objects/s   (start-up, load, create all)`,
  );
  const createRate = objects / (created / 1000);
  console.log(
    `  bound: creates >= ${BOUND_CREATES_PER_S} objects/s: ${createRate >= BOUND_CREATES_PER_S ? 'met' : 'NOT met'} (${(createRate / BOUND_CREATES_PER_S).toFixed(1)}x)`,
  );
  const bench = 'apply-1000';
  const perS = (ms: number) => objects / (ms / 1000);
  recordFigure({
    bench,
    name: 'apply created',
    value: createRate,
    unit: 'objects/s',
    bound: BOUND_CREATES_PER_S,
    boundKind: 'min',
  });
  recordFigure({ bench, name: 'apply unchanged', value: perS(unchanged), unit: 'objects/s' });
  recordFigure({ bench, name: 'apply configured', value: perS(configured), unit: 'objects/s' });
  recordFigure({ bench, name: 'xenosctl apply process', value: perS(cliMs), unit: 'objects/s' });
} finally {
  client.close();
  await xd.stop();
  removeDataDir(xd.dataDir);
  rmSync(dir, { recursive: true, force: true });
}
