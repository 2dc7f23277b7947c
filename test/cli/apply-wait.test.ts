// `xenosctl apply --wait` against the real API server: it waits until the applied template is Ready at
// its generation and, while the template's status says Pulling, shows the pull from status.imagePull —
// a bar redrawn in place on a terminal, plain lines otherwise — and gives up at --timeout saying what it
// last saw. The test writes the status a host's template controller would write.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/context.ts';
import { runCli } from '../../src/cli/main.ts';
import { XenosClient } from '../../src/client/client.ts';
import { SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import { type InProcessApi, startInProcessApi } from '../api/in-process-api.ts';

const DIGEST = `sha256:${'7c'.repeat(32)}`;
const MiB = 1024 * 1024;

let api: InProcessApi;
let client: XenosClient;
let dir: string;

beforeAll(async () => {
  api = await startInProcessApi();
  client = new XenosClient({ server: api.url, token: api.admin });
  dir = mkdtempSync(join(tmpdir(), 'xenosctl-wait-'));
});

afterAll(async () => {
  client?.close();
  await api?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function manifest(name: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `apiVersion: xenos.io/v1alpha1
kind: ServiceTemplate
metadata:
  name: ${name}
  namespace: default
spec:
  image:
    path: /srv/images/${name}
  process:
    command: [sleep, "1000"]
`,
  );
  return file;
}

function apply(args: string[], tty: boolean) {
  const io = { stdout: '', stderr: '' };
  const cli: Io = {
    stdout: (t) => {
      io.stdout += t;
    },
    stderr: (t) => {
      io.stderr += t;
    },
    env: { XENOS_SERVER: api.url, XENOS_TOKEN: api.admin, HOME: dir, XENOS_CONFIG: join(dir, 'none.yaml') },
    cwd: dir,
    readStdin: async () => '',
    stderrTTY: tty,
    columns: 120,
  };
  return { io, done: runCli(['apply', ...args], cli) };
}

async function pulling(name: string, bytes: number, holders: number, updatedAt: string) {
  await client.patchStatus(
    SERVICE_TEMPLATE,
    name,
    {
      phase: 'Pulling',
      imagePull: {
        digest: DIGEST,
        host: 'host-3',
        bytes,
        size: 64 * MiB,
        percent: Math.floor((bytes * 100) / (64 * MiB)),
        holders,
        updatedAt,
      },
    },
    { namespace: 'default' },
  );
}

async function ready(name: string) {
  await client.patchStatus(
    SERVICE_TEMPLATE,
    name,
    {
      phase: 'Ready',
      imagePull: null,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Ready',
          message: 'the image is on host host-3',
          lastTransitionTime: new Date().toISOString(),
          observedGeneration: 1,
        },
      ],
    },
    { namespace: 'default' },
  );
}

describe('xenosctl apply --wait', () => {
  it('shows the pull as a bar on a terminal and ends when the template is Ready', async () => {
    const run = apply(['-f', manifest('web-tty'), '--wait', '--timeout', '30s'], true);
    await expect
      .poll(() => run.io.stdout, { timeout: 10_000 })
      .toContain('servicetemplate.xenos.io/web-tty created');
    await pulling('web-tty', 16 * MiB, 2, '2026-01-01T00:00:00Z');
    await expect.poll(() => run.io.stderr, { timeout: 10_000 }).toContain(' 25%');
    await pulling('web-tty', 48 * MiB, 3, '2026-01-01T00:00:02Z');
    await expect.poll(() => run.io.stderr, { timeout: 10_000 }).toContain(' 75%');
    await ready('web-tty');
    expect(await run.done).toBe(0);
    expect(run.io.stdout).toContain('servicetemplate.xenos.io/web-tty ready');
    // The bar's frames (apply may warn on stderr before it, e.g. about an image path not on this machine).
    const frames = run.io.stderr.split('\r').filter((f) => f.includes(': pulling '));
    expect(frames[0]).toMatch(
      /^servicetemplate\/web-tty: pulling sha256:7c7c7c7c7c7c on host-3 \[#+\.+\] {2}25% {2}16\.0 MiB\/64\.0 MiB {2}from 2 peers/,
    );
    // The rate is measured from the host's own timestamps: 32 MiB in 2 s.
    expect(frames.at(-1)).toMatch(/ 75% {2}48\.0 MiB\/64\.0 MiB {2}16\.0 MiB\/s {2}from 3 peers/);
  });

  it('prints plain lines without a terminal, and times out saying what it last saw', async () => {
    const run = apply(['-f', manifest('web-plain'), '--wait', '--timeout', '3s'], false);
    await expect.poll(() => run.io.stdout, { timeout: 10_000 }).toContain('created');
    await pulling('web-plain', 32 * MiB, 1, '2026-01-01T00:00:00Z');
    await expect.poll(() => run.io.stderr, { timeout: 10_000 }).toContain(' 50%');
    expect(await run.done).toBe(1);
    expect(run.io.stderr.includes('\r') || run.io.stderr.includes('\x1b')).toBe(false);
    expect(run.io.stderr).toMatch(
      /web-plain: pulling sha256:7c7c7c7c7c7c on host-3 \[#+\.+\] {2}50% {2}32\.0 MiB\/64\.0 MiB {2}from 1 peer\n/,
    );
    expect(run.io.stderr).toMatch(/error: .*Ready/);
  });
});
