// Which host may write the status of which object — the cluster's rule, enforced by every host's store on
// its own writes and on every row from a peer (src/store/row-authority.ts checks signatures and bindings and
// asks this policy):
//  - a Host's status is written by that host alone (writer = the Host's name), and the peer id it states
//    is the writer's own;
//  - a ServiceInstance's status by the host it is bound to (`spec.host`); rebinding it clears the status
//    (statusOwnerChanged), so the previous host's status never stands beside the new binding;
//  - other kinds (templates: every host reports its own image import; deployments, migrations, events):
//    any host.
// The one exception is a verdict: the live host that the rendezvous picks (controllers/host) says that a
// silent host is NotReady — later, that its instances are not Ready — by changing only `phase` and the
// `Ready` condition of the status the owner last signed. `verdict` says which of those changes are
// verdicts: they can only lower readiness. Which host wrote one is not checked (a receiver cannot see
// another host's view of liveness); any host may write one, and the owner's next write replaces it.

import { HOST, SERVICE_INSTANCE } from '../model/kinds.ts';
import type { XObject } from '../model/object.ts';
import { RowAuthority, type WritePolicy } from '../store/row-authority.ts';
import { RowSigner } from '../store/row-proof.ts';

/** The phases a verdict may put on a status, per kind. */
const VERDICT_PHASES: Record<string, readonly string[]> = {
  [HOST.kind]: ['NotReady'],
  [SERVICE_INSTANCE.kind]: ['Unknown', 'Failed'],
};

function where(object: XObject): string {
  const ns = object.metadata.namespace;
  return `${object.kind} ${ns ? `${ns}/` : ''}${object.metadata.name}`;
}

function isEmpty(status: unknown): boolean {
  return status == null || (typeof status === 'object' && Object.keys(status).length === 0);
}

export const clusterWritePolicy: WritePolicy = {
  statusWriter({ object, status, writer, signer }) {
    // Nothing in it: creation writes one, a rebind clears it. Any host may.
    if (isEmpty(status)) return undefined;
    if (object.kind === HOST.kind) {
      const name = object.metadata.name;
      if (writer !== name) return `only host ${name} writes the status of ${where(object)}, not ${writer}`;
      const peerId = (status as { peerId?: unknown }).peerId;
      if (peerId !== undefined && peerId !== signer)
        return `${where(object)} status.peerId ${String(peerId)} is not its writer's key (${signer})`;
      return undefined;
    }
    if (object.kind === SERVICE_INSTANCE.kind) {
      const host = (object.spec as { host?: unknown } | undefined)?.host;
      if (writer === host) return undefined;
      return typeof host === 'string' && host !== ''
        ? `the status of ${where(object)} is written by host ${host} (its spec.host), not ${writer}; send it there`
        : `${where(object)} is not bound to a host (spec.host is empty): no host writes its status yet`;
    }
    return undefined;
  },

  verdict(kind, { phase, ready }) {
    const phases = VERDICT_PHASES[kind];
    if (!phases) return `${kind} has no verdicts`;
    if (typeof phase !== 'string' || !phases.includes(phase))
      return `phase ${JSON.stringify(phase)} is not one of ${phases.join(', ')}`;
    const status = (ready as { status?: unknown } | null)?.status;
    if (status !== 'False' && status !== 'Unknown') return `the Ready condition must be False or Unknown`;
    return undefined;
  },

  statusOwnerChanged(before, after) {
    if (after.kind !== SERVICE_INSTANCE.kind) return false;
    const host = (o: XObject) => (o.spec as { host?: unknown } | undefined)?.host ?? '';
    return host(before) !== host(after);
  },
};

/** What a host in a cluster opens its store with: its libp2p Ed25519 key signing, this policy checking. */
export function clusterRowAuthority(
  privateKey: { type: string; raw: Uint8Array },
  peerId: string,
): RowAuthority {
  return new RowAuthority({
    signer: RowSigner.fromLibp2pKey(privateKey, peerId),
    policy: clusterWritePolicy,
  });
}
