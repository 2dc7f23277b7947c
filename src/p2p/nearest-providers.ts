// The fast way to a service type's providers: GET_PROVIDERS straight to the few peers closest to the
// type's key among the routing table and the connections (one round trip each, on connections already
// open; in a small cluster every host holds every provider record), all at once — instead of a Kademlia
// query, which fans out to ~10 peers and costs several times more. Discovery falls back to the query when
// none of them lists a provider.

import { setTimeout as sleep } from 'node:timers/promises';
import type { PeerId } from '@libp2p/interface';
import type { DhtClient, OpOptions, ProviderPeer } from './dht-client.ts';

/** How many of the closest peers are asked directly before running the DHT query. */
export const NEAREST_ASKED = 3;

/**
 * Asks the NEAREST_ASKED peers closest to `key` for its providers, all at once. Yields the providers of each
 * answer as it arrives (deduplicated); once one answer listed any, the others get as long again as that one
 * took (a slow or dead peer must not hold the answer back; one peer's list may miss a provider whose
 * ADD_PROVIDER it has not handled yet, so the others are heard when they come in time). Returns the peer IDs
 * listed (none also when the DHT cannot ask peers directly).
 */
export async function* askNearest(
  node: DhtClient,
  key: Uint8Array,
  options: OpOptions,
): AsyncGenerator<ProviderPeer, Set<string>> {
  const seen = new Set<string>();
  const peers = await node.nearestPeers(key, { count: NEAREST_ASKED });
  if (peers.length === 0) return seen;
  const done = new AbortController();
  const signal = AbortSignal.any([
    done.signal,
    AbortSignal.timeout(options.timeout ?? 5000),
    ...(options.signal ? [options.signal] : []),
  ]);
  const started = performance.now();
  const waiting = new Map(
    peers.map((peer: PeerId, i) => [
      i,
      node.askProviders(peer, key, { signal }).then(
        (list) => ({ i, list }),
        () => ({ i, list: [] as ProviderPeer[] }),
      ),
    ]),
  );
  let grace: Promise<undefined> | undefined;
  try {
    while (waiting.size > 0) {
      const next = await Promise.race([...waiting.values(), ...(grace ? [grace] : [])]);
      if (next == null) break; // the others took too long
      waiting.delete(next.i);
      if (next.list.length > 0 && grace == null) {
        const wait = Math.max(10, performance.now() - started);
        grace = sleep(wait, undefined, { signal: done.signal }).catch(() => undefined);
      }
      for (const p of next.list) {
        if (seen.has(p.peerId)) continue;
        seen.add(p.peerId);
        yield p;
      }
    }
  } finally {
    done.abort();
  }
  if (options.signal?.aborted) throw options.signal.reason;
  return seen;
}
