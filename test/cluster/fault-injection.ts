// FAULT INJECTION, for tests only: a network partition between chosen real xenosd processes without root
// or network namespaces. It is the daemon's P2pConnectionHook (src/daemon/cluster-service.ts), wired in
// by the test entry point xenosd-with-faults.ts — xenosd itself has no flag for it. It watches a deny
// file, which lists other hosts' multiaddrs (lines of their p2p.addrs, with /p2p/<peerId>); while a host
// is listed, this host
//  - refuses to dial it: the connection protector (the cluster-key layer, the first thing every
//    connection passes) fails any connection whose remote address is a listed address, and
//  - closes every open connection to it.
// Inbound connections come from ephemeral ports and cannot be matched by address, so a partition is
// made symmetric: list B on A and A on B; every connection has a dialer, and that side refuses it.
// When a host leaves the list, this host dials it again (healing does not wait for a bootstrap retry).
// Everything above the transport — replication, DHT, membership — sees a real loss of connectivity.

import { type StatsListener, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { MessageStream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import type { P2pConnectionHook, ProtectorFactory } from '../../src/daemon/cluster-service.ts';
import type { XenosNode } from '../../src/p2p/node.ts';

/** `ip:port` of a TCP multiaddr, or undefined. */
function tcpEndpoint(addr: string): string | undefined {
  const m = /^\/ip[46]\/([^/]+)\/tcp\/(\d+)/.exec(addr);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

export class PartitionInjector implements P2pConnectionHook {
  readonly #file: string;
  readonly #log: (msg: string) => void;
  #endpoints = new Set<string>();
  #peers = new Map<string, string[]>();
  #node?: XenosNode;
  #listener?: StatsListener;

  constructor(components: { log: (msg: string) => void }, init: { file: string }) {
    this.#file = init.file;
    this.#log = components.log;
  }

  /** Wraps the cluster-key protector so that connections to listed addresses fail. */
  wrapProtector(make: ProtectorFactory): ProtectorFactory {
    return (psk) => {
      const factory = make(psk);
      return () => {
        const inner = factory();
        return {
          protect: async (connection: MessageStream, options) => {
            const remote = (connection as MessageStream & { remoteAddr?: { toString(): string } }).remoteAddr;
            const endpoint = remote ? tcpEndpoint(remote.toString()) : undefined;
            if (endpoint && this.#endpoints.has(endpoint)) {
              throw new Error(`fault injection: connections to ${endpoint} are denied (deny file)`);
            }
            return inner.protect(connection, options);
          },
        };
      };
    };
  }

  /** Reads the file now and then whenever it changes. */
  async start(node: XenosNode): Promise<void> {
    this.#node = node;
    await this.#reload();
    this.#listener = () => {
      this.#reload().catch((err) =>
        this.#log(`fault injection: reading ${this.#file}: ${err?.message ?? err}`),
      );
    };
    watchFile(this.#file, { interval: 100 }, this.#listener);
    // A connection can still come up from the denied side's dial that passed before our list changed,
    // or inbound (unmatchable by address): close any that exists, whenever a peer connects.
    node.addEventListener('peer:connect', this.#onConnect);
  }

  #onConnect = (evt: Event): void => {
    const peer = (evt as CustomEvent<string>).detail;
    if (!this.#peers.has(peer) || !this.#node?.started) return;
    for (const conn of this.#node.libp2p.getConnections()) {
      if (conn.remotePeer.toString() !== peer) continue;
      this.#log(
        `fault injection: closing a ${conn.direction} connection to denied ${peer} (${conn.remoteAddr})`,
      );
      conn.abort(new Error('fault injection: peer denied'));
    }
  };

  stop(): void {
    if (this.#listener) unwatchFile(this.#file, this.#listener);
    this.#node?.removeEventListener('peer:connect', this.#onConnect);
    this.#listener = undefined;
    this.#node = undefined;
  }

  async #reload(): Promise<void> {
    const text = await readFile(this.#file, 'utf8').catch((err) => {
      if (err?.code === 'ENOENT') return '';
      throw err;
    });
    const peers = new Map<string, string[]>();
    const endpoints = new Set<string>();
    for (const line of text.split('\n').map((l) => l.trim())) {
      const m = /\/p2p\/([^/]+)$/.exec(line);
      if (!m) continue;
      peers.set(m[1], [...(peers.get(m[1]) ?? []), line]);
      const e = tcpEndpoint(line);
      if (e) endpoints.add(e);
    }
    const healed = [...this.#peers.entries()].filter(([id]) => !peers.has(id));
    this.#peers = peers;
    this.#endpoints = endpoints;
    const node = this.#node;
    if (!node?.started) return;
    for (const conn of node.libp2p.getConnections()) {
      if (peers.has(conn.remotePeer.toString())) {
        await conn.close().catch(() => conn.abort(new Error('fault injection')));
      }
    }
    this.#log(
      peers.size > 0
        ? `fault injection: denying ${[...peers.keys()].join(', ')}`
        : 'fault injection: allowing all',
    );
    for (const [id, addrs] of healed) {
      this.#log(`fault injection: ${id} allowed again; dialing it`);
      for (const a of addrs) {
        const ok = await node.libp2p
          .dial(multiaddr(a), { signal: AbortSignal.timeout(5000) })
          .then(() => true)
          .catch(() => false);
        if (ok) break;
      }
    }
  }
}
