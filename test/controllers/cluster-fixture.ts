// A cluster as the controllers see it, in one process: a real (in-memory SQLite) store, the real liveness
// and placement over a scripted membership (which passes the real one's contract). Hosts are added Ready
// and alive, with room for 10 instances each; the clock starts past warming up.

import { HostLiveness } from '../../src/cluster/liveness.ts';
import { Placement } from '../../src/cluster/placement.ts';
import type { XObject } from '../../src/model/object.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';
import { ScriptedMembership } from '../cluster/scripted-membership.ts';

export const peerOf = (name: string) => `12D3KooWTestPeer${name.padEnd(36, 'x')}`;

export function obj(
  kind: string,
  name: string,
  spec: object,
  namespace: string | undefined = 'default',
): XObject {
  return { apiVersion: 'xenos.io/v1alpha1', kind, metadata: { name, namespace }, spec };
}

export interface ClusterFixture {
  store: SqliteStore;
  membership: ScriptedMembership;
  liveness: HostLiveness;
  placement: Placement;
  addHost(name: string, opts?: { cordoned?: boolean; drivers?: string[] }): void;
  close(): void;
}

/** The fixture as host `self` sees it. */
export function clusterFixture(self: string): ClusterFixture {
  const store = openStore({ path: ':memory:', namespaced: (k) => k !== 'Host', writer: self });
  const membership = new ScriptedMembership();
  let now = 1_000_000;
  const liveness = new HostLiveness(
    { store, now: () => now, membership: () => membership },
    { self, timeoutMs: 5000 },
  );
  const placement = new Placement({ store, liveness });
  liveness.start();
  now += 60_000; // past warming up: the membership decides who is live
  return {
    store,
    membership,
    liveness,
    placement,
    addHost(name, opts = {}) {
      const created = store.create({
        ...obj('Host', name, { unschedulable: opts.cordoned ?? false }, undefined),
        metadata: { name, labels: { zone: name } },
      });
      store.update(
        {
          ...created,
          status: {
            peerId: peerOf(name),
            allocatable: { cpu: '2', memory: '4Gi', instances: 10 },
            drivers: opts.drivers ?? ['process'],
            conditions: [
              {
                type: 'Ready',
                status: 'True',
                reason: 'Test',
                message: name,
                lastTransitionTime: new Date().toISOString(),
              },
            ],
          },
        } as XObject,
        { subresource: 'status' },
      );
      membership.set(peerOf(name), 'alive');
    },
    close() {
      placement.stop();
      liveness.stop();
      store.close();
    },
  };
}
