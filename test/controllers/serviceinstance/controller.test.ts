// The ServiceInstance controller end to end on one host: the real SQLite store, the real process driver
// running a tiny node HTTP service, health checks over real sockets. Apply → Ready → reachable → spec
// change restarts it → delete removes the process and the finalizer; crashes back off and count
// restarts; a missing template is a condition, not a crash; bad parameters stall; a new controller on
// the same data dir adopts the running domain (same process) and destroys domains whose instance is gone.
// A service sees only its own PID namespace: it names its run by a random id, and the host pid the tests
// watch is its domain's supervisor (alive exactly as long as the domain).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DOMAIN_FINALIZER,
  imageCache,
  ServiceInstanceController,
} from '../../../controllers/serviceinstance/controller.ts';
import {
  type InstanceCredentials,
  TokenCredentials,
} from '../../../controllers/serviceinstance/credentials.ts';
import { ServiceTemplateController } from '../../../controllers/servicetemplate/controller.ts';
import { authorize, TokenAuthenticator } from '../../../src/api/auth.ts';
import { ProcessDriver } from '../../../src/drivers/process/process-driver.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import type { CoreEvent } from '../../../src/model/event.ts';
import type { XObject } from '../../../src/model/object.ts';
import type { ServiceInstance, ServiceInstanceStatus } from '../../../src/model/service-instance.ts';
import { getCondition } from '../../../src/reconcile/conditions.ts';
import { openStore, type SqliteStore } from '../../../src/store/sqlite-store.ts';
import { alive } from '../../process-alive.ts';
import { until } from '../../wait.ts';
import { instance, template } from './objects.ts';

const HOST = 'host-a';
const quiet = silentLogger.root;

let dir: string;
let store: SqliteStore;
interface Host {
  controller: ServiceInstanceController;
  templates: ServiceTemplateController;
  driver: ProcessDriver;
}
const running: Host[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenos-si-'));
  store = openStore({ path: join(dir, 'state.db'), namespaced: (k) => k !== 'Host', writer: HOST });
});

afterEach(async () => {
  for (const { controller, templates, driver } of running.splice(0)) {
    await controller.stop();
    await templates.stop();
    for (const d of await driver.list()) await driver.destroy(d.id);
    await driver.stop();
  }
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One host's controllers: templates imported into its image cache, instances run by its process driver. */
async function startController(
  opts: { credentials?: InstanceCredentials; bwrap?: string } = {},
): Promise<Host> {
  const cacheDir = join(dir, 'images');
  const templates = new ServiceTemplateController({ store, log: quiet }, { hostName: HOST, cacheDir });
  templates.start();
  const driver = new ProcessDriver(
    {},
    {
      dataDir: dir,
      cgroups: false,
      defaultGraceMs: 2000,
      sandbox: opts.bwrap ? { bwrap: opts.bwrap, reprobeMs: 100 } : undefined,
    },
  );
  await driver.start();
  const controller = new ServiceInstanceController(
    { store, driver, images: imageCache(cacheDir), credentials: opts.credentials, log: quiet },
    {
      hostName: HOST,
      apiUrl: 'http://127.0.0.1:1',
      templateRetryMs: 200,
      machine: { backoffBaseMs: 200, backoffMaxMs: 800, stableAfterMs: 60_000 },
      actors: { pollMs: 50, stopGraceMs: 2000 },
    },
  );
  controller.start();
  const r = { controller, templates, driver };
  running.push(r);
  return r;
}

function createTemplate(name = 'web', extra: Record<string, unknown> = {}): void {
  store.create(template(name, extra));
}

function get(name: string): ServiceInstance | undefined {
  return store.get({ kind: 'ServiceInstance', namespace: 'default', name }) as unknown as
    | ServiceInstance
    | undefined;
}

function statusOf(name: string): ServiceInstanceStatus {
  return get(name)?.status ?? {};
}

function eventReasons(name: string): string[] {
  return (store.list('Event', { namespace: 'default' }).items as CoreEvent[])
    .filter((e) => e.involvedObject.name === name)
    .map((e) => e.reason);
}

function ready(name: string, generation?: number): boolean {
  const s = statusOf(name);
  return (
    getCondition(s, 'Ready')?.status === 'True' &&
    (generation === undefined || s.observedGeneration === generation)
  );
}

interface Answer {
  instance: string;
  message: string;
  run: string;
  hasToken: boolean;
  tokenInEnv: boolean;
}

/** The host pid of the instance's domain: its supervisor, alive exactly as long as the domain. */
async function hostPid(name: string): Promise<number> {
  const driver = new ProcessDriver({}, { dataDir: dir, cgroups: false });
  const info = (await driver.list()).find((d) => d.instance.name === name && d.state === 'running');
  if (!info?.pid) throw new Error(`no running domain for ${name}`);
  return info.pid;
}

async function call(url: string): Promise<Answer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return (await res.json()) as Answer;
}

describe('ServiceInstance controller', () => {
  it('apply → Ready and reachable → spec change restarts it → delete removes process and finalizer', async () => {
    createTemplate();
    await startController();
    store.create(instance('web-1'));

    await until('Ready', () => ready('web-1'));
    const s = statusOf('web-1');
    const inst = get('web-1')!;
    expect(inst.spec!.host).toBe(HOST);
    expect(inst.metadata.finalizers).toContain(DOMAIN_FINALIZER);
    expect(s).toMatchObject({
      phase: 'Running',
      host: HOST,
      driver: 'process',
      serviceType: 'greeter',
      restarts: 0,
    });
    expect(s.observedGeneration).toBe(inst.metadata.generation);
    // How its files were made from the image: an overlay as root, else a reflink or a plain copy, and why.
    expect(s.disk?.mode).toBe(
      process.getuid?.() === 0 ? 'Overlay' : expect.stringMatching(/^(Reflink|Copy)$/),
    );
    expect(s.disk?.message).toMatch(/image|copy/);
    for (const type of ['Scheduled', 'TemplateReady', 'DomainRunning', 'Healthy']) {
      expect(getCondition(s, type)?.status, type).toBe('True');
    }
    const ep = s.endpoints!.find((e) => e.name === 'http')!;
    expect(ep).toMatchObject({ address: '127.0.0.1', protocol: 'TCP', source: 'template' });
    expect(ep.url).toBe(`http://127.0.0.1:${ep.port}/`);
    const first = await call(ep.url!);
    const firstPid = await hostPid('web-1');
    expect(first).toMatchObject({ instance: 'web-1', message: 'hello', hasToken: false });
    expect(eventReasons('web-1')).toEqual(
      expect.arrayContaining(['Scheduled', 'Pulled', 'Created', 'Started', 'Ready']),
    );

    // A spec change that changes the domain: a new process with the new parameter, the new generation.
    const cur = get('web-1')!;
    const updated = store.update({
      ...(cur as unknown as XObject),
      spec: { ...cur.spec, parameters: { message: 'changed' } },
    });
    const gen = updated.metadata.generation!;
    const second = await until('the new process answers', async () => {
      const a = await call(statusOf('web-1').endpoints![0].url!);
      return a.message === 'changed' ? a : undefined;
    });
    expect(second.run).not.toBe(first.run);
    expect(alive(firstPid)).toBe(false);
    const secondPid = await hostPid('web-1');
    await until('Ready at the new generation', () => ready('web-1', gen));
    expect(eventReasons('web-1')).toContain('Killing');

    // Labels only: updated in place, same process.
    const cur2 = get('web-1')!;
    store.update({
      ...(cur2 as unknown as XObject),
      metadata: { ...cur2.metadata, labels: { team: 'a' } },
    });
    await until('still Ready', () => ready('web-1'));
    expect((await call(statusOf('web-1').endpoints![0].url!)).run).toBe(second.run);

    store.delete({ kind: 'ServiceInstance', namespace: 'default', name: 'web-1' });
    await until('instance gone (finalizer removed)', () => !get('web-1'));
    await until('process gone', () => !alive(secondPid));
    expect(await running[0].driver.list()).toEqual([]);
  });

  it('a crash backs off and restarts, counting restarts; RerunOnFailure exit 0 stays stopped', async () => {
    createTemplate();
    await startController();
    store.create(instance('crashy'));
    await until('Ready', () => ready('crashy'));
    const url = statusOf('crashy').endpoints![0].url!;
    const before = await call(url);
    await fetch(new URL('/exit?code=3', url)).catch(() => undefined);
    await until('restart counted', () => (statusOf('crashy').restarts ?? 0) >= 1 && ready('crashy'));
    const messages = (store.list('Event', { namespace: 'default' }).items as CoreEvent[])
      .filter((e) => e.involvedObject.name === 'crashy')
      .map((e) => `${e.reason}: ${e.message} (x${e.count})`);
    expect(statusOf('crashy').lastExitCode, messages.join('\n')).toBe(3);
    expect(eventReasons('crashy')).toEqual(expect.arrayContaining(['Failed', 'BackOff']));
    const after = await call(statusOf('crashy').endpoints![0].url!);
    expect(after.run).not.toBe(before.run);

    store.create(instance('once', { runStrategy: 'RerunOnFailure' }));
    await until('once Ready', () => ready('once'));
    await fetch(new URL('/exit?code=0', statusOf('once').endpoints![0].url!)).catch(() => undefined);
    await until('once stopped', () => statusOf('once').phase === 'Stopped');
    const s = statusOf('once');
    expect(getCondition(s, 'DomainRunning')).toMatchObject({ status: 'False', reason: 'Completed' });
    expect(getCondition(s, 'Ready')?.status).toBe('False');
    expect(s.lastExitCode).toBe(0);
    expect(s.restarts).toBe(0);
    expect(s.endpoints).toEqual([]);
  });

  it('a service that keeps failing its health check is restarted after restartThreshold failures', async () => {
    createTemplate('web', {
      healthCheck: { http: { port: 'http', path: '/' }, periodSeconds: 1, restartThreshold: 2 },
    });
    await startController();
    store.create(instance('sick'));
    await until('Ready', () => ready('sick'));
    const before = await call(statusOf('sick').endpoints![0].url!);
    await fetch(new URL('/sick', statusOf('sick').endpoints![0].url!)).catch(() => undefined);
    await until('restarted for its health', () => (statusOf('sick').restarts ?? 0) >= 1 && ready('sick'));
    const after = await call(statusOf('sick').endpoints![0].url!);
    expect(after.run).not.toBe(before.run);
    const events = (store.list('Event', { namespace: 'default' }).items as CoreEvent[]).filter(
      (e) => e.involvedObject.name === 'sick',
    );
    expect(events.map((e) => `${e.reason}: ${e.message}`)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^Unhealthy: Restarting domain \S+: the health check failed 2 times in a row \(restartThreshold 2\): http GET .* 500/,
        ),
      ]),
    );
    // Not a crash: the domain did not exit on its own.
    expect(statusOf('sick').lastExitCode).not.toBe(1);
  });

  it('a missing template is a condition (and a requeue), then the instance starts once it exists', async () => {
    await startController();
    store.create(instance('early'));
    await until(
      'TemplateNotFound',
      () => getCondition(statusOf('early'), 'TemplateReady')?.reason === 'TemplateNotFound',
    );
    const s = statusOf('early');
    expect(getCondition(s, 'TemplateReady')!.message).toContain('ServiceTemplate default/web does not exist');
    expect(getCondition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'TemplateNotFound' });
    expect(s.phase).toBe('Pending');
    createTemplate();
    await until('Ready after the template appeared', () => ready('early'));
  });

  it('invalid parameters stall the instance with the field; fixing them starts it', async () => {
    createTemplate();
    await startController();
    store.create(instance('bad', { parameters: { message: 'NOT VALID' } }));
    await until('Stalled', () => getCondition(statusOf('bad'), 'Stalled')?.status === 'True');
    const s = statusOf('bad');
    expect(getCondition(s, 'Stalled')).toMatchObject({ reason: 'InvalidParameter' });
    expect(getCondition(s, 'Stalled')!.message).toContain('spec.parameters.message');
    expect(getCondition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidParameter' });
    const cur = get('bad')!;
    store.update({ ...(cur as unknown as XObject), spec: { ...cur.spec, parameters: { message: 'fine' } } });
    await until('Ready after the fix', () => ready('bad'));
    expect(getCondition(statusOf('bad'), 'Stalled')).toBeUndefined();
  });

  it('a new controller on the same data dir adopts the running domain and destroys orphans', async () => {
    createTemplate();
    const a = await startController();
    store.create(instance('keep'));
    store.create(instance('drop'));
    await until('both Ready', () => ready('keep') && ready('drop'));
    const keepRun = (await call(statusOf('keep').endpoints![0].url!)).run;
    const pid = await hostPid('keep');
    const dropPid = await hostPid('drop');

    // The coordinator goes away; domains keep running. Meanwhile 'drop' is removed from the store
    // without anyone to run its finalizer.
    await a.controller.stop();
    await a.driver.stop();
    running.splice(0);
    const drop = get('drop')!;
    store.update({ ...(drop as unknown as XObject), metadata: { ...drop.metadata, finalizers: [] } });
    store.delete({ kind: 'ServiceInstance', namespace: 'default', name: 'drop' });
    expect(alive(pid) && alive(dropPid)).toBe(true);

    const b = await startController();
    await until('orphan destroyed', () => !alive(dropPid));
    await until(
      'keep Ready under the new controller',
      () => ready('keep') && b.controller.snapshot('default/keep'),
    );
    expect(b.controller.snapshot('default/keep')!.matches('running')).toBe(true);
    expect((await call(statusOf('keep').endpoints![0].url!)).run).toBe(keepRun);
    expect(await hostPid('keep')).toBe(pid);
    await until('only keep left', async () => {
      const names = (await b.driver.list()).map((d) => d.instance.name);
      return names.length === 1 && names[0] === 'keep' ? true : undefined;
    });
    expect(eventReasons('keep')).toContain('Adopted');
  });

  it('notice board: the domain gets an instance-scoped token; registered endpoints and ServiceHealthy count', async () => {
    const authenticator = new TokenAuthenticator({ dataDir: dir });
    createTemplate();
    await startController({ credentials: new TokenCredentials({ authenticator }, { dataDir: dir }) });
    store.create(instance('board'));
    await until('Ready', () => ready('board'));
    expect(await call(statusOf('board').endpoints![0].url!)).toMatchObject({
      hasToken: true,
      tokenInEnv: false,
    });

    // The token the domain holds (same derivation) is accepted, for its own instance only.
    const token = new TokenCredentials({ authenticator }, { dataDir: dir }).tokenFor({
      namespace: 'default',
      name: 'board',
      uid: get('board')!.metadata.uid!,
    });
    const principal = authenticator.authenticateToken(token)!;
    expect(principal.scope).toEqual({ namespace: 'default', instance: 'board' });
    const own = { group: 'xenos.io', resource: 'serviceinstances', namespace: 'default', name: 'board' };
    expect(authorize(principal, 'patch', { ...own, subresource: 'status' })).toBe(true);
    expect(authorize(principal, 'patch', own)).toBe(false);
    expect(authorize(principal, 'patch', { ...own, name: 'other', subresource: 'status' })).toBe(false);

    // What the service PATCHes through the API: an extra endpoint and its own health verdict.
    const report = (healthy: 'True' | 'False') => {
      const cur = get('board')!;
      const status = structuredClone(cur.status!);
      status.endpoints = [
        ...(status.endpoints ?? []).filter((e) => e.source !== 'registered'),
        { name: 'admin', address: '127.0.0.1', port: 9999, protocol: 'TCP', source: 'registered' },
      ];
      status.conditions = [
        ...(status.conditions ?? []).filter((c) => c.type !== 'ServiceHealthy'),
        {
          type: 'ServiceHealthy',
          status: healthy,
          reason: healthy === 'True' ? 'AllGood' : 'DatabaseDown',
          message: healthy === 'True' ? 'ok' : 'cannot reach the database',
          lastTransitionTime: new Date().toISOString(),
        },
      ];
      store.update(
        { ...(cur as unknown as XObject), status: status as XObject['status'] },
        { subresource: 'status' },
      );
    };
    report('False');
    await until(
      'Ready False from ServiceHealthy',
      () => getCondition(statusOf('board'), 'Ready')?.reason === 'DatabaseDown',
    );
    expect(statusOf('board').endpoints!.map((e) => `${e.name}:${e.source}`)).toEqual([
      'http:template',
      'admin:registered',
    ]);
    report('True');
    await until('Ready again', () => ready('board'));

    store.delete({ kind: 'ServiceInstance', namespace: 'default', name: 'board' });
    await until('instance gone', () => !get('board'));
    expect(authenticator.authenticateToken(token)).toBeUndefined();
  });

  it('deleted while no coordinator ran: the next one tears the domain down, then removes the finalizer', async () => {
    createTemplate();
    const a = await startController();
    store.create(instance('late'));
    await until('Ready', () => ready('late'));
    const pid = await hostPid('late');
    await a.controller.stop();
    await a.templates.stop();
    await a.driver.stop();
    running.splice(0);
    store.delete({ kind: 'ServiceInstance', namespace: 'default', name: 'late' });
    expect(get('late')?.metadata.deletionTimestamp).toBeDefined();
    expect(alive(pid)).toBe(true);

    const b = await startController();
    await until('instance gone', () => !get('late'));
    await until('process gone', () => !alive(pid));
    expect(await b.driver.list()).toEqual([]);
  });

  it('without a sandbox the domain does not start, and DomainRunning says why and what to do', async () => {
    createTemplate();
    await startController({ bwrap: '/nonexistent/bwrap' });
    store.create(instance('unboxed'));
    await until('SandboxUnavailable', () =>
      getCondition(statusOf('unboxed'), 'DomainRunning')?.reason === 'SandboxUnavailable' ? true : undefined,
    );
    const c = getCondition(statusOf('unboxed'), 'DomainRunning')!;
    expect(c.status).toBe('False');
    expect(c.message).toMatch(/sandbox is unavailable.*\/nonexistent\/bwrap is not installed.*npm run setup/);
    expect(getCondition(statusOf('unboxed'), 'Ready')?.status).toBe('False');
  });

  it('Manual: the requested-state annotation stops and starts the domain', async () => {
    createTemplate();
    await startController();
    store.create(instance('hand', { runStrategy: 'Manual' }));
    await until('Ready', () => ready('hand'));
    const request = (state: string) => {
      const cur = get('hand')!;
      store.update({
        ...(cur as unknown as XObject),
        metadata: { ...cur.metadata, annotations: { 'xenos.io/requested-state': state } },
      });
    };
    request('Stopped');
    await until('stopped', () => statusOf('hand').phase === 'Stopped');
    expect(getCondition(statusOf('hand'), 'DomainRunning')).toMatchObject({
      status: 'False',
      reason: 'StoppedByRequest',
    });
    request('Running');
    await until('Ready again', () => ready('hand'));
  });

  it('moved to another host: the domain here goes; deleted there with no such host, the finalizer goes too', async () => {
    createTemplate();
    const a = await startController();
    store.create(instance('moving'));
    await until('Ready', () => ready('moving'));
    const pid = await hostPid('moving');
    const cur = get('moving')!;
    store.update({ ...(cur as unknown as XObject), spec: { ...cur.spec, host: 'elsewhere' } });
    await until('process gone', () => !alive(pid));
    await until('no domain here', async () => ((await a.driver.list()).length === 0 ? true : undefined));
    expect(get('moving')!.metadata.finalizers).toContain(DOMAIN_FINALIZER);
    // 'elsewhere' is no member (no Host object): nobody else could ever remove the finalizer.
    store.delete({ kind: 'ServiceInstance', namespace: 'default', name: 'moving' });
    await until('instance gone', () => !get('moving'));
  });
});
