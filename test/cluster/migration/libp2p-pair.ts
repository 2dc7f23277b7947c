// Test helper: one migration transport between two real libp2p nodes of one cluster (cluster key + Noise
// over loopback): the first node dials, a MigrationReceiver on the second accepts the migrations the test
// `expect`s from the first node's peer id and refuses the rest.

import { randomUUID } from 'node:crypto';
import { MigrationRefusedError } from '../../../src/cluster/migration/errors.ts';
import { MigrationDialer } from '../../../src/cluster/migration/migration-dialer.ts';
import {
  type IncomingMigrationRequest,
  MigrationReceiver,
} from '../../../src/cluster/migration/migration-receiver.ts';
import type { MigrationRef } from '../../../src/cluster/migration/protocol.ts';
import type { IncomingMigration } from '../../../src/drivers/driver.ts';
import type { TestHost } from '../../p2p/cluster.ts';

/** Two nodes (`hosts`, or started from a TestNet or any starter of connected cluster nodes), a receiver on
 *  the second that accepts the migrations `expect`ed of the first node. */
export async function libp2pPair(
  net: { startCluster(n: number): Promise<TestHost[]> },
  hosts?: [TestHost, TestHost],
) {
  const [a, b] = hosts ?? (await net.startCluster(2));
  const expected = new Set<string>();
  const arrivals = new Map<string, PromiseWithResolvers<IncomingMigrationRequest>>();
  const held = Promise.withResolvers<void>();
  const arrival = (uid: string) => {
    const d = arrivals.get(uid) ?? Promise.withResolvers<IncomingMigrationRequest>();
    arrivals.set(uid, d);
    return d;
  };
  const receiver = new MigrationReceiver({
    node: b.node,
    authorize: async (m, peer) => {
      if (!expected.has(m.uid)) throw new MigrationRefusedError('UnknownMigration', `no ${m.name} here`);
      if (peer !== a.node.peerId.toString()) throw new MigrationRefusedError('WrongSource', 'not its host');
    },
    accept: async (req) => {
      arrival(req.migration.uid).resolve(req);
      await held.promise;
    },
  });
  await receiver.start();
  const dialer = (migration: MigrationRef) =>
    new MigrationDialer({ node: a.node }, { peer: b.node.peerId.toString(), target: 'b', migration });
  return {
    a,
    b,
    receiver,
    dialer,
    expect(): MigrationRef {
      const ref = { namespace: 'default', name: `m-${expected.size}`, uid: randomUUID() };
      expected.add(ref.uid);
      return ref;
    },
    /** The destination's IncomingMigration of `uid`, once its first stream came. */
    incoming(uid: string): IncomingMigration {
      return {
        async *[Symbol.asyncIterator]() {
          yield* (await arrival(uid).promise).incoming;
        },
      };
    },
    async stop() {
      held.resolve();
      await receiver.stop();
    },
  };
}
