// Test helper: the printer fixture (fixtures/printer: a tiny node service that prints numbered lines,
// and one more per request to /print?line=TEXT) copied to a temp dir for `xenosctl apply -f`, and a wait
// for its endpoint once the instance runs.

import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../cluster/harness.ts';

const FIXTURE = new URL('./fixtures/printer/', import.meta.url).pathname;
const SI = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';

/** The fixture in a temp dir, the instance named `name`, extra spec lines appended. */
export function printerManifests(name: string, extraSpec = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'xenos-printer-'));
  cpSync(FIXTURE, dir, { recursive: true });
  const instance = readFileSync(join(dir, 'instance.yaml'), 'utf8').replace(
    'name: printer\nspec',
    `name: ${name}\nspec`,
  );
  writeFileSync(join(dir, 'instance.yaml'), `${instance.trimEnd()}\n${extraSpec}`);
  return dir;
}

/** The printer's http endpoint once the instance is Running with it, as `xd` sees it. */
export async function printerEndpoint(
  api: (path: string) => Promise<Response>,
  name: string,
  timeoutMs = 45_000,
): Promise<string> {
  const inst = await waitFor(
    async () => {
      const res = await api(`${SI}/${name}`);
      const i = res.ok ? ((await res.json()) as any) : undefined;
      return i?.status?.phase === 'Running' && i.status.endpoints?.length ? i : undefined;
    },
    `instance ${name} Running with an endpoint`,
    timeoutMs,
  );
  const e = inst.status.endpoints[0];
  const url = (e.url ?? `http://${e.address}:${e.port}`).replace(/\/+$/, '');
  await waitFor(async () => (await fetch(`${url}/healthz`)).ok, `printer ${name} answering`, timeoutMs);
  return url;
}
