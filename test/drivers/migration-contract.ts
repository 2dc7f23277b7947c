// The migration part of the driver contract (run by runDriverContract when the fixture says how its
// domains keep state): two drivers on two data dirs — two hosts — joined by the cluster's libp2p
// migration transport (which passes test/cluster/migration/transport-contract.ts). migrateOut then
// migrateIn moves a running domain: it runs and answers on the destination with the state the driver
// promises to keep, the source's copy is left stopped (for the caller to roll back or destroy) and
// progress was reported; a transfer broken midway fails both sides, and once the caller starts the
// source's copy again exactly one copy runs.

import { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  DomainInfo,
  DomainSpec,
  Driver,
  InstanceIdentity,
  MigrationProgress,
  MigrationTransport,
} from '../../src/drivers/driver.ts';
import { libp2pPair } from '../cluster/migration/libp2p-pair.ts';
import { TestNet } from '../p2p/cluster.ts';
import type { DriverHarness } from './driver-contract.ts';

export interface MigrationFixture {
  /** How this driver moves a running domain. */
  mode: 'live' | 'cold';
  /** Leaves a mark in the running domain that the driver promises to carry (files cold, memory live). */
  mark(driver: Driver, info: DomainInfo, value: string): Promise<void>;
  /** The mark, read back from the domain on whichever host runs it now. */
  read(driver: Driver, info: DomainInfo): Promise<string | undefined>;
}

export interface MigrationContractInit {
  harness: DriverHarness;
  makeDriver(dataDir: string): Driver;
  serverSpec(instance: InstanceIdentity): DomainSpec;
  instance(name: string): InstanceIdentity;
  /** Resolves once the domain answers on its endpoint. */
  answering(info: DomainInfo, spec: DomainSpec): Promise<void>;
  migration: MigrationFixture;
}

/** `t` whose streams are reset once `after` bytes went out through them: a link broken midway. */
function breaking(t: MigrationTransport, after: number): MigrationTransport {
  return {
    async open(label, options) {
      const inner = await t.open(label, options);
      let sent = 0;
      const outer: Duplex = new Duplex({
        allowHalfOpen: true,
        read: () => inner.resume(),
        write(chunk: Buffer, _enc, callback) {
          if (sent + chunk.length <= after) {
            sent += chunk.length;
            inner.write(chunk, callback);
            return;
          }
          // Part of this chunk gets through, then the link breaks.
          inner.write(chunk.subarray(0, after - sent), () => {
            inner.destroy();
            callback(new Error('the link broke'));
          });
          sent = after;
        },
        final: (callback) => inner.end(callback),
        destroy: (err, callback) => {
          inner.destroy();
          callback(err);
        },
      });
      inner.on('data', (d: Buffer) => outer.push(d));
      inner.on('end', () => outer.push(null));
      inner.on('error', () => outer.destroy());
      return outer;
    },
  };
}

export function migrationContract(init: MigrationContractInit): void {
  describe('migration between two hosts', () => {
    const net = new TestNet();
    let pair: Awaited<ReturnType<typeof libp2pPair>>;
    let source: Driver;
    let destination: Driver;

    beforeEach(async () => {
      pair = await libp2pPair(net);
      source = init.harness.track(init.makeDriver(await init.harness.dataDir()));
      destination = init.harness.track(init.makeDriver(await init.harness.dataDir()));
      await source.start();
      await destination.start();
    });
    afterEach(async () => {
      await pair.stop();
      await net.cleanup();
    });

    async function running(spec: DomainSpec): Promise<DomainInfo> {
      const info = await source.startDomain(spec);
      await init.answering(info, spec);
      return info;
    }

    it('moves a running domain with its state; the source copy is left stopped', async () => {
      const spec = init.serverSpec(init.instance('mig'));
      const before = await running(spec);
      await init.migration.mark(source, before, 'kept-across-hosts');
      const ref = pair.expect();
      const progress: MigrationProgress[] = [];
      const [report, arrived] = await Promise.all([
        source.migrateOut(spec.id, pair.dialer(ref), {
          mode: init.migration.mode,
          onProgress: (p) => progress.push(p),
        }),
        destination.migrateIn(spec, pair.incoming(ref.uid)),
      ]);
      expect(report.mode).toBe(init.migration.mode);
      expect(report.bytesTransferred).toBeGreaterThan(0);
      expect(report.downtimeMs).toBeGreaterThan(0);
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.at(-1)!.bytesTransferred).toBeGreaterThan(0);
      expect(arrived.state).toBe('running');
      await init.answering(arrived, spec);
      expect(await init.migration.read(destination, arrived)).toBe('kept-across-hosts');
      expect((await source.inspect(spec.id))?.state).toMatch(/stopped|crashed/);
      expect((await destination.list()).filter((d) => d.state === 'running').map((d) => d.id)).toEqual([
        spec.id,
      ]);
    });

    it('a link broken midway fails both sides; the source started again is the one running copy', async () => {
      const spec = init.serverSpec(init.instance('cut'));
      await running(spec);
      const ref = pair.expect();
      // Each side must see the break itself; one still waiting after two minutes is named, not masked.
      const late = new AbortController();
      const noLater = (p: Promise<unknown>, side: string) =>
        Promise.race([
          p,
          sleep(120_000, undefined, { signal: late.signal }).then(() => {
            throw new Error(`the ${side} was still waiting two minutes after the link broke`);
          }),
        ]);
      const [out, inn] = await Promise.allSettled([
        noLater(
          source.migrateOut(spec.id, breaking(pair.dialer(ref), 4096), { mode: init.migration.mode }),
          'source',
        ),
        noLater(destination.migrateIn(spec, pair.incoming(ref.uid)), 'destination'),
      ]);
      late.abort();
      expect(out.status).toBe('rejected');
      expect(inn.status).toBe('rejected');
      for (const side of [out, inn])
        if (side.status === 'rejected') expect(String(side.reason)).not.toContain('still waiting');
      // The caller's roll back: the source's copy runs again, the destination's leftovers go.
      const resumed = await source.startDomain(spec);
      await init.answering(resumed, spec);
      await destination.destroy(spec.id);
      const runningOn = async (d: Driver) => (await d.list()).filter((x) => x.state === 'running').length;
      expect(await runningOn(source)).toBe(1);
      expect(await runningOn(destination)).toBe(0);
    });
  });
}
