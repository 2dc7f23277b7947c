// The membership view liveness reads (src/cluster/liveness.ts MembershipView): the real Membership over
// two libp2p nodes and the scripted one placement tests use pass the same contract — a peer never met is
// unknown; a running peer becomes alive and answers a probe; a peer that stops is reported dead through
// onChange, reads dead, and no longer answers.

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MemberState, MembershipView } from '../../src/cluster/liveness.ts';
import { Membership } from '../../src/p2p/membership/membership.ts';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from '../../src/p2p/peer-key.ts';
import { peerSigner } from '../../src/p2p/peer-signature.ts';
import { TestNet } from '../p2p/cluster.ts';
import { ScriptedMembership } from './scripted-membership.ts';

interface Subject {
  view: MembershipView;
  /** A peer that runs, then stops when told. */
  peer: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

function contract(name: string, make: () => Promise<Subject>): void {
  describe(`membership view contract: ${name}`, () => {
    let subject: Subject | undefined;
    afterEach(async () => {
      await subject?.close();
    });

    it('unknown, then alive and answering, then dead (reported) and silent', async () => {
      subject = await make();
      const { view, peer } = subject;
      expect(view.state('12D3KooWNeverMetNeverMetNeverMetNeverMetNeverMetNeverM')).toBeUndefined();
      const seen: MemberState[] = [];
      view.onChange((c) => {
        if (c.peer === peer) seen.push(c.state);
      });
      await subject.start();
      await expect.poll(() => view.state(peer), { timeout: 15_000 }).toBe('alive');
      expect(await view.confirm(peer)).toBe(true);
      await subject.stop();
      await expect.poll(() => view.state(peer), { timeout: 15_000 }).toBe('dead');
      expect(seen.at(-1)).toBe('dead');
      expect(await view.confirm(peer)).toBe(false);
    });
  });
}

contract('scripted', async () => {
  const view = new ScriptedMembership();
  const peer = '12D3KooWScriptedPeerScriptedPeerScriptedPeerScriptedP';
  return {
    view,
    peer,
    start: async () => view.set(peer, 'alive'),
    stop: async () => view.set(peer, 'dead'),
    close: async () => {},
  };
});

contract('Membership over libp2p', async () => {
  const net = new TestNet();
  const [a, b] = await net.startCluster(2);
  const open = async (h: typeof a) => {
    const { privateKey } = await loadOrCreatePeerKey(join(h.dataDir, PEER_KEY_FILE));
    return new Membership(
      { node: h.node, signer: peerSigner(privateKey, h.node.peerId.toString()) },
      { hostTimeoutMs: 3000 },
    );
  };
  const ma = await open(a);
  const mb = await open(b);
  await ma.start();
  return {
    view: ma,
    peer: mb.self,
    start: () => mb.start(),
    stop: async () => {
      await mb.stop();
      await net.stopHost(b);
    },
    close: async () => {
      await ma.stop();
      await mb.stop();
      await net.cleanup();
    },
  };
});
