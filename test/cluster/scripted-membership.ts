// A membership view whose states a test sets (for placement and liveness tests that need hosts alive,
// suspect or dead at will). It passes the same contract as the real Membership over libp2p
// (membership-view.test.ts), so what those tests learn holds for the real thing.

import type { MemberState, MembershipView } from '../../src/cluster/liveness.ts';

export class ScriptedMembership implements MembershipView {
  readonly #states = new Map<string, MemberState>();
  readonly #answers = new Map<string, boolean>();
  readonly #listeners = new Set<(c: { peer: string; state: MemberState; detail: string }) => void>();

  set(peer: string, state: MemberState, detail = 'set by the test'): void {
    if (this.#states.get(peer) === state) return;
    this.#states.set(peer, state);
    for (const l of this.#listeners) l({ peer, state, detail });
  }

  /** Makes `confirm(peer)` answer so whatever the state (a host held dead that still answers a probe). */
  answer(peer: string, answers: boolean): void {
    this.#answers.set(peer, answers);
  }

  state(peer: string): MemberState | undefined {
    return this.#states.get(peer);
  }

  onChange(listener: (c: { peer: string; state: MemberState; detail: string }) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async confirm(peer: string): Promise<boolean> {
    const forced = this.#answers.get(peer);
    if (forced !== undefined) return forced;
    const s = this.#states.get(peer);
    return s === 'alive' || s === 'suspect';
  }
}
