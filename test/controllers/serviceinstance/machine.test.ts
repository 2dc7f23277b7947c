// The domain machine on its own: its actors are replaced (machine.provide) by a small in-memory world of
// domains, so each test drives the lifecycle with events and asserts on snapshots and on that world.

import { afterEach, describe, expect, it } from 'vitest';
import { type Actor, createActor, fromCallback, fromPromise, waitFor } from 'xstate';
import { domainMachine } from '../../../controllers/serviceinstance/machine.ts';
import {
  type DesiredDomain,
  DomainActionError,
  type DomainEmitted,
  type DomainMachineInput,
} from '../../../controllers/serviceinstance/machine-types.ts';
import type { DomainInfo, DomainSpec } from '../../../src/drivers/driver.ts';
import type { RunStrategy } from '../../../src/model/service-instance.ts';

interface FakeDomain {
  hash: string;
  state: 'prepared' | 'running' | 'stopped';
  starts: number;
}

/** The world the fake actors act on. */
class World {
  domains = new Map<string, FakeDomain>();
  /** Set to make the next prepare/start fail. */
  failStart?: DomainActionError;
  /** When set, start waits here until aborted (to observe abort). */
  hangStart = false;
  startSignals: AbortSignal[] = [];
  watching = 0;

  info(id: string): DomainInfo {
    const d = this.domains.get(id);
    return {
      id,
      driver: 'process',
      instance: { namespace: 'default', name: 'web', uid: 'u1' },
      state: d?.state ?? 'unknown',
      restartCount: 0,
      endpoints: [],
      pid: d?.state === 'running' ? 1000 + d.starts : undefined,
    };
  }
}

function specFor(hash: string): DomainSpec {
  return {
    id: 'xenos-default-web-u1',
    instance: { namespace: 'default', name: 'web', uid: 'u1' },
    image: { path: `/images/${hash}` },
  };
}

function desired(runStrategy: RunStrategy = 'Always', hash = 'h1', generation = 1): DesiredDomain {
  return { spec: specFor(hash), hash, runStrategy, generation };
}

const OPTIONS = { backoffBaseMs: 20, backoffMaxMs: 80, stableAfterMs: 60 };

const actors: Actor<typeof domainMachine>[] = [];
afterEach(() => {
  for (const a of actors.splice(0)) a.stop();
});

function start(world: World, input: DomainMachineInput) {
  const machine = domainMachine.provide({
    actors: {
      prepareDomain: fromPromise(async ({ input }) => {
        const hash = input.spec.image.path.split('/').pop()!;
        const d = world.domains.get(input.spec.id);
        if (!d || d.hash !== hash) world.domains.set(input.spec.id, { hash, state: 'prepared', starts: 0 });
        return world.info(input.spec.id);
      }),
      startDomain: fromPromise(async ({ input, signal }) => {
        world.startSignals.push(signal);
        if (world.hangStart) {
          await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
        }
        if (world.failStart) {
          const err = world.failStart;
          world.failStart = undefined;
          throw err;
        }
        const d = world.domains.get(input.spec.id)!;
        if (d.state !== 'running') {
          d.state = 'running';
          d.starts++;
        }
        return world.info(input.spec.id);
      }),
      stopDomain: fromPromise(async ({ input }) => {
        const d = world.domains.get(input.id);
        if (d) d.state = 'stopped';
        return world.info(input.id);
      }),
      destroyDomain: fromPromise(async ({ input }) => {
        world.domains.delete(input.id);
      }),
      watchDomain: fromCallback(() => {
        world.watching++;
        return () => {
          world.watching--;
        };
      }),
    },
  });
  const actor = createActor(machine, { input: { options: OPTIONS, ...input } });
  const events: DomainEmitted[] = [];
  actor.on('record', (e) => events.push(e));
  actors.push(actor);
  actor.start();
  return { actor, events };
}

function exited(world: World, id: string, exitCode: number): DomainInfo {
  world.domains.get(id)!.state = 'stopped';
  return { ...world.info(id), state: exitCode === 0 ? 'stopped' : 'crashed', exitCode };
}

const ID = 'xenos-default-web-u1';

describe('domain machine', () => {
  it('happy path: prepares, starts, becomes ready on a healthy check', async () => {
    const world = new World();
    const { actor, events } = start(world, { desired: desired() });
    await waitFor(actor, (s) => s.matches({ running: 'unready' }));
    expect(world.domains.get(ID)).toMatchObject({ state: 'running', starts: 1 });
    expect(world.watching).toBe(1);
    actor.send({ type: 'HEALTHY', message: 'http 200' });
    expect(actor.getSnapshot().matches({ running: 'ready' })).toBe(true);
    expect(actor.getSnapshot().context.appliedHash).toBe('h1');
    expect(events.map((e) => e.reason)).toEqual(['Created', 'Started', 'Ready']);
  });

  it('crash: backs off, restarts, doubles the backoff to the cap and resets it after a stable run', async () => {
    const world = new World();
    const { actor, events } = start(world, { desired: desired('Always') });
    const backoffs: number[] = [];
    for (let i = 1; i <= 4; i++) {
      await waitFor(actor, (s) => s.matches('running'));
      actor.send({ type: 'EXITED', domain: exited(world, ID, 1) });
      expect(actor.getSnapshot().value).toBe('failed');
      backoffs.push(actor.getSnapshot().context.backoffMs);
      await waitFor(actor, (s) => s.matches('running') && s.context.restarts === i);
    }
    expect(backoffs).toEqual([20, 40, 80, 80]);
    expect(world.domains.get(ID)!.starts).toBe(5);
    expect(actor.getSnapshot().context.lastExitCode).toBe(1);
    expect(events.filter((e) => e.reason === 'BackOff')).toHaveLength(4);
    expect(events.filter((e) => e.reason === 'Failed' && e.eventType === 'Warning')).toHaveLength(4);

    // Healthy for longer than stableAfterMs: the next crash waits the shortest backoff again.
    actor.send({ type: 'HEALTHY' });
    await waitFor(actor, (s) => s.context.backoffMs === 10);
    actor.send({ type: 'EXITED', domain: exited(world, ID, 1) });
    expect(actor.getSnapshot().context.backoffMs).toBe(20);
  });

  it('a health restart stops the domain and restarts it after the crash backoff; Manual keeps running', async () => {
    const world = new World();
    const { actor, events } = start(world, { desired: desired('Always') });
    await waitFor(actor, (s) => s.matches('running'));
    actor.send({ type: 'HEALTHY' });
    actor.send({ type: 'HEALTH_RESTART', message: 'the health check failed 3 times in a row' });
    await waitFor(actor, (s) => s.matches('failed'));
    expect(world.domains.get(ID)!.state).toBe('stopped');
    expect(actor.getSnapshot().context.error).toEqual({
      reason: 'Unhealthy',
      message: 'the health check failed 3 times in a row',
    });
    await waitFor(actor, (s) => s.matches('running') && s.context.restarts === 1);
    expect(world.domains.get(ID)).toMatchObject({ state: 'running', starts: 2 });
    expect(actor.getSnapshot().context.error).toBeUndefined();
    expect(events.map((e) => e.reason)).toEqual([
      'Created',
      'Started',
      'Ready',
      'Unhealthy',
      'BackOff',
      'Created',
      'Started',
    ]);

    const manual = start(world, { desired: { ...desired('Manual'), spec: { ...specFor('h1'), id: 'm' } } });
    await waitFor(manual.actor, (s) => s.matches('running'));
    manual.actor.send({ type: 'HEALTH_RESTART', message: 'failing' });
    expect(manual.actor.getSnapshot().matches('running')).toBe(true);
  });

  it('RerunOnFailure: a clean exit stays stopped, a failed one restarts', async () => {
    const world = new World();
    const { actor } = start(world, { desired: desired('RerunOnFailure') });
    await waitFor(actor, (s) => s.matches('running'));
    actor.send({ type: 'EXITED', domain: exited(world, ID, 3) });
    expect(actor.getSnapshot().value).toBe('failed');
    await waitFor(actor, (s) => s.matches('running'));
    actor.send({ type: 'EXITED', domain: exited(world, ID, 0) });
    const s = actor.getSnapshot();
    expect(s.value).toBe('stopped');
    expect(s.context.stopReason).toBe('Completed');
    expect(s.context.lastExitCode).toBe(0);
    // Re-sending the same spec (a resync) does not rerun it; no timer is pending in `stopped`.
    actor.send({ type: 'SPEC', desired: desired('RerunOnFailure', 'h1', 2) });
    expect(actor.getSnapshot().value).toBe('stopped');
    expect(world.domains.get(ID)!.state).toBe('stopped');
    // A spec that changes the domain runs it again.
    actor.send({ type: 'SPEC', desired: desired('RerunOnFailure', 'h2', 3) });
    await waitFor(actor, (s2) => s2.matches('running'));
    expect(world.domains.get(ID)).toMatchObject({ hash: 'h2', state: 'running' });
  });

  it('Halted: never starts; halting a running domain stops it and keeps it stopped', async () => {
    const world = new World();
    const halted = start(world, { desired: desired('Halted') });
    expect(halted.actor.getSnapshot().value).toBe('stopped');
    expect(world.domains.size).toBe(0);
    halted.actor.stop();

    const { actor, events } = start(world, { desired: desired('Always') });
    await waitFor(actor, (s) => s.matches('running'));
    actor.send({ type: 'SPEC', desired: desired('Halted', 'h1', 2) });
    await waitFor(actor, (s) => s.matches('stopped'));
    expect(world.domains.get(ID)!.state).toBe('stopped');
    expect(world.watching).toBe(0);
    expect(actor.getSnapshot().context.stopReason).toBe('Halted');
    expect(events.map((e) => e.reason)).toContain('Killing');
    // Back to Always: it starts again.
    actor.send({ type: 'SPEC', desired: desired('Always', 'h1', 3) });
    await waitFor(actor, (s) => s.matches('running'));
    expect(world.domains.get(ID)!.state).toBe('running');
  });

  it('Manual: starts once, is not restarted, starts and stops only on request', async () => {
    const world = new World();
    const { actor } = start(world, { desired: desired('Manual') });
    await waitFor(actor, (s) => s.matches('running'));
    actor.send({ type: 'EXITED', domain: exited(world, ID, 1) });
    expect(actor.getSnapshot().value).toBe('stopped');
    actor.send({ type: 'START' });
    await waitFor(actor, (s) => s.matches('running'));
    expect(world.domains.get(ID)!.starts).toBe(2);
    actor.send({ type: 'STOP' });
    await waitFor(actor, (s) => s.matches('stopped'));
    expect(actor.getSnapshot().context.stopReason).toBe('StoppedByRequest');
    expect(world.domains.get(ID)!.state).toBe('stopped');
  });

  it('spec change: a new domain hash restarts it, the same hash updates in place', async () => {
    const world = new World();
    const { actor } = start(world, { desired: desired('Always', 'h1', 1) });
    await waitFor(actor, (s) => s.matches('running'));
    actor.send({ type: 'HEALTHY' });
    actor.send({ type: 'SPEC', desired: desired('Always', 'h1', 2) });
    expect(actor.getSnapshot().matches({ running: 'ready' })).toBe(true);
    expect(actor.getSnapshot().context.desired.generation).toBe(2);
    expect(world.domains.get(ID)!.starts).toBe(1);

    actor.send({ type: 'SPEC', desired: desired('Always', 'h2', 3) });
    expect(actor.getSnapshot().value).toBe('restarting');
    await waitFor(actor, (s) => s.matches('running') && s.context.appliedHash === 'h2');
    expect(world.domains.get(ID)).toMatchObject({ hash: 'h2', state: 'running', starts: 1 });
    expect(actor.getSnapshot().context.restarts).toBe(0);
  });

  it('adopts a running domain without starting a second copy', () => {
    const world = new World();
    world.domains.set(ID, { hash: 'h1', state: 'running', starts: 1 });
    const { actor, events } = start(world, { desired: desired(), adopted: world.info(ID), restarts: 4 });
    const s = actor.getSnapshot();
    expect(s.matches({ running: 'unready' })).toBe(true);
    expect(s.context.restarts).toBe(4);
    expect(world.domains.get(ID)!.starts).toBe(1);
    expect(world.startSignals).toHaveLength(0);
    expect(events.map((e) => e.reason)).toEqual(['Adopted']);
  });

  it('an adopted domain that was healthy stays ready until a health check says otherwise', () => {
    const world = new World();
    world.domains.set(ID, { hash: 'h1', state: 'running', starts: 1 });
    const { actor } = start(world, { desired: desired(), adopted: world.info(ID), adoptedReady: true });
    expect(actor.getSnapshot().matches({ running: 'ready' })).toBe(true);
    actor.send({ type: 'UNHEALTHY', message: 'connection refused' });
    expect(actor.getSnapshot().matches({ running: 'unready' })).toBe(true);
  });

  it('adopting a domain built from an older spec restarts it with the current one', async () => {
    const world = new World();
    world.domains.set(ID, { hash: 'h0', state: 'running', starts: 1 });
    const { actor } = start(world, {
      desired: desired('Always', 'h1'),
      adopted: world.info(ID),
      adoptedHash: 'h0',
    });
    await waitFor(actor, (s) => s.matches('running') && s.context.appliedHash === 'h1');
    expect(world.domains.get(ID)).toMatchObject({ hash: 'h1', state: 'running' });
  });

  it('stopping the actor aborts an in-flight start; the domain is left as it is', async () => {
    const world = new World();
    world.hangStart = true;
    const { actor } = start(world, { desired: desired() });
    await waitFor(actor, (s) => s.matches('starting'));
    expect(world.startSignals[0].aborted).toBe(false);
    actor.stop();
    expect(world.startSignals[0].aborted).toBe(true);
    expect(world.domains.get(ID)!.state).toBe('prepared');
  });

  it('a failed start backs off and retries; a terminal one stalls until the spec changes', async () => {
    const world = new World();
    world.failStart = new DomainActionError('StartFailed', 'port busy');
    const { actor } = start(world, { desired: desired() });
    await waitFor(actor, (s) => s.matches('failed'));
    expect(actor.getSnapshot().context.error).toMatchObject({ reason: 'StartFailed', message: 'port busy' });
    await waitFor(actor, (s) => s.matches('running'));
    expect(actor.getSnapshot().context.error).toBeUndefined();

    const w2 = new World();
    w2.failStart = new DomainActionError('InvalidDomainSpec', 'bad command', { terminal: true });
    const b = start(w2, { desired: desired() });
    await waitFor(b.actor, (s) => s.matches('stalled'));
    b.actor.send({ type: 'SPEC', desired: desired('Always', 'h1', 2) });
    expect(b.actor.getSnapshot().value).toBe('stalled');
    b.actor.send({ type: 'SPEC', desired: desired('Always', 'h2', 3) });
    await waitFor(b.actor, (s) => s.matches('running'));
  });

  it('DELETE stops and destroys the domain from any state and ends the machine', async () => {
    const world = new World();
    const { actor } = start(world, { desired: desired() });
    await waitFor(actor, (s) => s.matches('running'));
    actor.send({ type: 'DELETE' });
    await waitFor(actor, (s) => s.status === 'done');
    expect(actor.getSnapshot().value).toBe('deleted');
    expect(world.domains.has(ID)).toBe(false);
    expect(world.watching).toBe(0);
  });
});
