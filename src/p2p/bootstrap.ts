// Joining the overlay: dial every bootstrap address in the background, with backoff, until one
// connection is up, then a Kademlia join (a lookup of our own ID through the peers reached), which fills
// our routing table with the peers closest to us and puts us in theirs. Without the join a new node only
// knows its bootstrap peers until the next periodic self-query (5 minutes by default).

import { setTimeout as sleep } from 'node:timers/promises';
import type { Libp2p } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import type { Log } from '../log/logger.ts';
import type { KadDht } from './kad-dht.ts';

export interface BootstrapInit {
  /** Multiaddrs with /p2p/<peerId>. */
  addrs: string[];
  dialTimeout: number;
  /** The join's lookup must end within this (ms). */
  joinTimeout: number;
  backoff: { initial: number; max: number };
}

/** Dials the bootstrap peers until one answers, then joins; resolves when joined, rejects when `signal` ends it. */
export async function bootstrap(
  components: { libp2p: Libp2p; dht: KadDht; log: Log },
  init: BootstrapInit,
  signal: AbortSignal,
): Promise<void> {
  const { libp2p, dht, log } = components;
  const addrs = init.addrs.map((a) => multiaddr(a));
  let delay = init.backoff.initial;
  while (!signal.aborted) {
    const results = await Promise.allSettled(
      addrs.map((ma) =>
        libp2p.dial(ma, { signal: AbortSignal.any([signal, AbortSignal.timeout(init.dialTimeout)]) }),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length < results.length) {
      await join(libp2p, dht, AbortSignal.any([signal, AbortSignal.timeout(init.joinTimeout)]));
      return;
    }
    log.warn(
      `bootstrap: no peer reachable (${(failed[0] as PromiseRejectedResult).reason}); retry in ${delay} ms`,
    );
    await sleep(delay, undefined, { signal });
    delay = Math.min(delay * 2, init.backoff.max);
  }
  throw signal.reason;
}

async function join(libp2p: Libp2p, dht: KadDht, signal: AbortSignal): Promise<void> {
  // The dial resolves before identify tells the DHT the peer speaks our protocol; a lookup started earlier
  // has no peer to ask and ends at once. Wait for the routing table's first entry.
  while (dht.routingTableSize === 0) {
    if (signal.aborted) throw signal.reason;
    await sleep(10, undefined, { signal });
  }
  await dht.lookupSelf(libp2p.peerId, signal);
}
