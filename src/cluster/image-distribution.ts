// Where a template's image should be before any instance needs it (`spec.distribution`), decided by each
// host alone from the replicated store: every host (`hosts: All`), the hosts whose labels match
// (`selector`), or N hosts (`count`) — the top N of the live, schedulable hosts ranked by rendezvous
// hashing of the image digest, so that all hosts agree without an election, two templates of one image
// pick the same hosts, and when a holder leaves only its place moves (the next host in the ranking takes
// it). The ServiceTemplate controller asks `shouldHoldAhead` and pulls when it says so. Also what a Host
// says it holds (`status.images`), for placement's preference and the CLI.

import type { Host } from '../model/host.ts';
import type { ServiceTemplate } from '../model/service-template.ts';
import { rankHosts } from './rendezvous.ts';

export interface HoldDecision {
  hold: boolean;
  /** CamelCase, for a condition: OnDemand, AllHosts, SelectorMatches, SelectorDoesNotMatch, Ranked,
   *  NotRanked, NoDigest. */
  reason: string;
  /** For people. */
  message: string;
}

/** The digest placement and distribution key on: the template's declared digest, else the one found. */
export function templateDigest(template: ServiceTemplate): string | undefined {
  return template.spec?.image?.digest ?? template.status?.digest;
}

/** The digests a host says it holds complete. Entries are `{digest, manifest, size}`; a bare digest string
 *  (older hosts) counts too. */
export function heldDigests(host: Host): Set<string> {
  const out = new Set<string>();
  for (const entry of (host.status?.images ?? []) as unknown[]) {
    if (typeof entry === 'string') out.add(entry);
    else if (entry && typeof (entry as { digest?: unknown }).digest === 'string') {
      out.add((entry as { digest: string }).digest);
    }
  }
  return out;
}

export function hostHolds(host: Host, digest: string): boolean {
  return heldDigests(host).has(digest);
}

/** Whether a host may take new instances (so holding an image ahead of need is worth it). */
function schedulable(host: Host): boolean {
  if (host.spec?.unschedulable || host.spec?.drain) return false;
  const ready = host.status?.conditions?.find((c) => c.type === 'Ready');
  return !ready || ready.status === 'True';
}

function labelsMatch(host: Host | undefined, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => host?.metadata.labels?.[k] === v);
}

/** The rendezvous key of an image's ahead-of-need holders. */
export function distributionKey(digest: string): string {
  return `image/${digest}`;
}

/**
 * Whether host `self` should hold `template`'s image ahead of need. `hosts` are the Host objects this host
 * knows (its own among them), `isLive` the membership's view. Pure: the same inputs give every host the
 * same answer about every host.
 */
export function shouldHoldAhead(
  template: ServiceTemplate,
  self: string,
  hosts: Iterable<Host>,
  isLive: (name: string) => boolean,
): HoldDecision {
  const d = template.spec?.distribution;
  if (!d) {
    return {
      hold: false,
      reason: 'OnDemand',
      message: 'no spec.distribution: pulled when an instance is placed on this host',
    };
  }
  if (d.hosts === 'All') return { hold: true, reason: 'AllHosts', message: 'distribution: every host' };
  const all = [...hosts];
  const me = all.find((h) => h.metadata.name === self);
  if (d.selector) {
    const text = Object.entries(d.selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    return labelsMatch(me, d.selector)
      ? { hold: true, reason: 'SelectorMatches', message: `distribution: host ${self} matches ${text}` }
      : {
          hold: false,
          reason: 'SelectorDoesNotMatch',
          message: `distribution: host ${self} does not match ${text}`,
        };
  }
  const count = d.count ?? 0;
  const digest = templateDigest(template);
  if (!digest) {
    return {
      hold: false,
      reason: 'NoDigest',
      message: 'distribution: the image has no digest yet (it is known once one host has imported it)',
    };
  }
  const candidates = all.filter((h) => schedulable(h) && isLive(h.metadata.name)).map((h) => h.metadata.name);
  const chosen = rankHosts(distributionKey(digest), candidates).slice(0, count);
  return chosen.includes(self)
    ? {
        hold: true,
        reason: 'Ranked',
        message: `distribution: host ${self} is among the ${count} of ${candidates.length} live hosts chosen for ${digest}`,
      }
    : {
        hold: false,
        reason: 'NotRanked',
        message: `distribution: ${chosen.join(', ') || 'no host'} hold ${digest} (count ${count})`,
      };
}
