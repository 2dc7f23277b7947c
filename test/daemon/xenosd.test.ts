// xenosd as a process: its command line (help, one-line usage errors with exit 2, a plain-HTTP API beyond
// loopback refused unless --insecure-http, no fault-injection flag), the admin token it writes, and a
// clean exit 0 on SIGTERM that also ends open watches.

import { readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  logLines,
  removeDataDir,
  runXenosd,
  startXenosd,
  tempDataDir,
  type XenosdProcess,
} from './xenosd-process.ts';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function track(xd: XenosdProcess): XenosdProcess {
  cleanup.push(
    () => removeDataDir(xd.dataDir),
    () => xd.stop(),
  );
  return xd;
}

describe('command line', () => {
  it('prints help and exits 0', async () => {
    const run = runXenosd(['--help']);
    expect(await run.exited).toBe(0);
    for (const opt of [
      '--data-dir',
      '--api',
      '--host-name',
      '--tls-self-signed',
      '--insecure-http',
      '--allow-private-image-urls',
      '--max-image-size',
      '--image-upload-rate',
      '--image-download-rate',
    ])
      expect(run.stdout()).toContain(opt);
    expect(run.stdout()).not.toMatch(/deny|fault injection/i);
  });

  it.each([
    [['--api', 'nonsense'], /--api.*HOST:PORT/],
    [['--api', '127.0.0.1:99999'], /out of range/],
    [['--frobnicate'], /unknown option '--frobnicate'/],
    [['--tls-cert', '/x.pem'], /--tls-cert and --tls-key go together/],
    [
      ['--api', '0.0.0.0:7443'],
      /^xenosd: --api 0\.0\.0\.0:7443 is beyond loopback and the API would be plain HTTP, sending tokens in clear: add --tls-self-signed or --tls-cert\/--tls-key, or --insecure-http if a trusted network or proxy protects it \(see xenosd --help\)$/,
    ],
    [['--api', '[::]:7443'], /--api \[::\]:7443 is beyond loopback/],
    [['--api', 'myhost.example:7443'], /is beyond loopback/],
    [['--p2p-deny-file', '/tmp/deny'], /unknown option '--p2p-deny-file'/],
    [['--max-image-size', 'lots'], /--max-image-size "lots": expected a size above zero like 512Mi/],
    [['--image-upload-rate', '0'], /--image-upload-rate "0": expected bytes a second above zero like 12Mi/],
    [['--image-download-rate', 'fast'], /--image-download-rate "fast": expected bytes a second above zero/],
    [
      ['--allow-image-url-address', 'intranet'],
      /--allow-image-url-address "intranet": expected an IP address/,
    ],
    [
      ['--log-level', 'loud'],
      /--log-level must be one of fatal, error, warn, info, debug, trace, silent; got "loud"/,
    ],
  ])('rejects %j with one line and exit 2', async (args, message) => {
    const run = runXenosd(args as string[]);
    expect(await run.exited).toBe(2);
    const lines = run.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^xenosd: /);
    expect(lines[0]).toMatch(message as RegExp);
  });

  it('says so in one line when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => blocker.close(r)));
    const port = (blocker.address() as { port: number }).port;
    const dir = tempDataDir();
    cleanup.push(() => removeDataDir(dir));
    const run = runXenosd(['--data-dir', dir, '--api', `127.0.0.1:${port}`]);
    expect(await run.exited).toBe(1);
    expect(run.stderr().trim()).toBe(
      `xenosd: cannot listen on 127.0.0.1:${port}: the address is in use; pick another with --api`,
    );
  });
});

describe('plain HTTP beyond loopback', () => {
  it('starts with --insecure-http and warns at every start', async () => {
    const dataDir = tempDataDir();
    cleanup.push(() => removeDataDir(dataDir));
    for (let i = 0; i < 2; i++) {
      const xd = await startXenosd({ dataDir, args: ['--api', '0.0.0.0:0', '--insecure-http'] });
      const port = new URL(xd.url).port;
      expect(logLines(xd.stderr())).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          host: 'test-host',
          component: 'xenosd',
          msg: expect.stringContaining(
            '--insecure-http: the API on 0.0.0.0:0 is plain HTTP beyond loopback; bearer tokens cross the network in clear text',
          ),
        }),
      );
      const res = await fetch(`http://127.0.0.1:${port}/apis`, {
        headers: { authorization: `Bearer ${xd.token}` },
      });
      expect(res.status).toBe(200);
      expect(await xd.stop()).toBe(0);
    }
  });

  it('needs no flag with TLS, and warns about nothing', async () => {
    const xd = track(await startXenosd({ args: ['--api', '0.0.0.0:0', '--tls-self-signed'] }));
    expect(xd.url).toMatch(/^https:/);
    expect(logLines(xd.stderr()).filter((l) => l.level === 'warn')).toEqual([]);
    expect(xd.stderr()).not.toContain('warning');
  });
});

describe('running', () => {
  it('writes a private admin token and keeps only its hash', async () => {
    const xd = track(await startXenosd({ hostName: 'node-a' }));
    expect(xd.stdout()).toBe(`xenosd node-a serving API on ${xd.url}\n`);
    expect(xd.token).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(xd.dataDir, 'admin.token')).mode & 0o777).toBe(0o600);
    const tokens = readFileSync(join(xd.dataDir, 'tokens.json'), 'utf8');
    expect(tokens).not.toContain(xd.token);
    expect(readFileSync(join(xd.dataDir, 'api.addr'), 'utf8').trim()).toBe(xd.url);
    expect((await xd.api('/apis')).status).toBe(200);
  });

  it('ends open watches and exits 0 on SIGTERM', async () => {
    const xd = track(await startXenosd());
    const res = await xd.api('/apis/xenos.io/v1alpha1/serviceinstances?watch=true');
    expect(res.status).toBe(200);
    const body = res.text();
    const code = await xd.stop();
    expect(code).toBe(0);
    await expect(body).resolves.toBe('');
    expect(xd.stderr()).not.toMatch(/\n\s+at /);
    // What it logged on the way out is JSON lines, the last saying why it stopped.
    expect(logLines(xd.stderr()).at(-1)).toMatchObject({
      level: 'info',
      signal: 'SIGTERM',
      msg: 'SIGTERM, stopping',
    });
  });

  it('logs only what --log-level (or XENOS_LOG_LEVEL) lets through', async () => {
    const xd = track(
      await startXenosd({ args: ['--log-level', 'warn', '--api', '0.0.0.0:0', '--insecure-http'] }),
    );
    expect(await xd.stop()).toBe(0);
    const levels = new Set(logLines(xd.stderr()).map((l) => l.level));
    expect([...levels]).toEqual(['warn']);
  });
});

describe('the domain sandbox on the Host object', () => {
  async function hostConditions(
    xd: XenosdProcess,
  ): Promise<Record<string, { status: string; reason: string }>> {
    const out: Record<string, { status: string; reason: string }> = {};
    await expect
      .poll(
        async () => {
          const res = await xd.api('/apis/xenos.io/v1alpha1/hosts/test-host');
          if (res.status !== 200) return undefined;
          const host = (await res.json()) as {
            status?: { conditions?: { type: string; status: string; reason: string }[] };
          };
          for (const c of host.status?.conditions ?? []) out[c.type] = c;
          return out.DomainsSandboxed?.reason;
        },
        { timeout: 15_000 },
      )
      .toBeDefined();
    return out;
  }

  it('says domains are sandboxed, and whether their limits are enforced', async () => {
    const xd = track(await startXenosd({ args: ['--driver', 'process'] }));
    const conditions = await hostConditions(xd);
    expect(conditions.DomainsSandboxed).toMatchObject({ status: 'True', reason: 'Bubblewrap' });
    expect(conditions.DomainLimitsEnforced?.reason).toMatch(/^(CgroupV1|CgroupV2|NoCgroups)$/);
    expect(xd.stderr()).not.toContain('--unsafe-no-sandbox');
  });

  it('warns at start and says so on the Host when told --unsafe-no-sandbox', async () => {
    const xd = track(await startXenosd({ args: ['--driver', 'process', '--unsafe-no-sandbox'] }));
    expect(logLines(xd.stderr())).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: expect.stringMatching(/^--unsafe-no-sandbox: process-driver domains run WITHOUT a sandbox/),
      }),
    );
    expect((await hostConditions(xd)).DomainsSandboxed).toMatchObject({
      status: 'False',
      reason: 'UnsafeNoSandbox',
    });
  });
});
