// Which API resource a name on the command line means. `serviceinstances`, `serviceinstance`,
// `si`, `ServiceInstance` and `serviceinstances.xenos.io` all name the same kind. The server's
// discovery document (`GET /apis/xenos.io/v1alpha1`) is asked first, so xenosctl works against
// any xenosd; the CRDs this xenosctl was built with are the fallback (and give the printer
// columns, which discovery does not carry).

import type { XenosClient } from '../client/client.ts';
import type { DiscoveryResource, KindNames, PrinterColumn, ResourceType } from '../model/api-resource.ts';
import { GROUP, VERSION } from '../model/kinds.ts';
import { UsageError } from './errors.ts';

/** What xenosctl knows about a kind from its own CRDs. */
export interface LocalKind extends KindNames {
  printerColumns: PrinterColumn[];
}

export interface ResolvedKind extends ResourceType {
  singular: string;
  shortNames: readonly string[];
  printerColumns: PrinterColumn[];
}

export interface KindResolverComponents {
  client: XenosClient;
  /** The kinds of this xenosctl's CRDs. */
  localKinds: () => LocalKind[];
}

export interface KindResolverInit {
  group?: string;
  version?: string;
  /** Skip the server (e.g. apply --dry-run=client). */
  offline?: boolean;
}

/** `servicetemplate.xenos.io`: how kubectl names a kind in messages (`... created`). */
export function qualifiedSingular(k: ResolvedKind): string {
  return k.group ? `${k.singular}.${k.group}` : k.singular;
}

function matches(
  alias: string,
  r: { name: string; singular: string; shortNames: readonly string[]; kind: string },
  group: string,
) {
  const a = alias.toLowerCase();
  const names = [r.name, r.singular, r.kind.toLowerCase(), ...r.shortNames].map((n) => n.toLowerCase());
  if (names.includes(a)) return true;
  return names.some((n) => a === `${n}.${group}`);
}

export class KindResolver {
  private readonly client: XenosClient;
  private readonly localKinds: () => LocalKind[];
  private readonly group: string;
  private readonly version: string;
  private readonly offline: boolean;
  private discovered?: Promise<DiscoveryResource[] | undefined>;

  constructor(components: KindResolverComponents, init: KindResolverInit = {}) {
    this.client = components.client;
    this.localKinds = components.localKinds;
    this.group = init.group ?? GROUP;
    this.version = init.version ?? VERSION;
    this.offline = init.offline ?? false;
  }

  /** The server's resources; undefined when the server cannot be reached or has no discovery. */
  private discovery(signal?: AbortSignal): Promise<DiscoveryResource[] | undefined> {
    if (this.offline) return Promise.resolve(undefined);
    this.discovered ??= this.client
      .discovery(`${this.group}/${this.version}`, { signal })
      .then((list) => list.resources.filter((r) => !r.name.includes('/')))
      // Unreachable: the request that follows reports it. Any other failure (404, an old
      // server): the local kinds stand in.
      .catch(() => undefined);
    return this.discovered;
  }

  /** Every kind known, the server's first. */
  async all(opts: { signal?: AbortSignal } = {}): Promise<ResolvedKind[]> {
    const local = this.localKinds();
    const remote = await this.discovery(opts.signal);
    if (!remote) return local.map((l) => this.fromLocal(l));
    return remote.map((r) => {
      const l = local.find((k) => k.kind === r.kind);
      return {
        group: this.group,
        version: this.version,
        plural: r.name,
        kind: r.kind,
        namespaced: r.namespaced,
        singular: r.singularName || l?.singular || r.kind.toLowerCase(),
        shortNames: r.shortNames ?? l?.shortNames ?? [],
        printerColumns: l?.printerColumns ?? [],
      };
    });
  }

  private fromLocal(l: LocalKind): ResolvedKind {
    return { ...l, group: this.group, version: this.version };
  }

  /** Resolves what the user typed; UsageError (exit 2) naming the known kinds if nothing matches. */
  async resolve(alias: string, opts: { signal?: AbortSignal } = {}): Promise<ResolvedKind> {
    const kinds = await this.all(opts);
    const hit = kinds.find((k) =>
      matches(
        alias,
        { name: k.plural, singular: k.singular, shortNames: k.shortNames, kind: k.kind },
        this.group,
      ),
    );
    if (hit) return hit;
    const known = kinds.map((k) =>
      k.shortNames.length ? `${k.plural} (${k.shortNames.join(', ')})` : k.plural,
    );
    throw new UsageError(
      `the server doesn't have a resource type "${alias}" (known: ${known.join(', ') || 'none'})`,
    );
  }

  /** The kind of a manifest object, by its apiVersion and kind. */
  async forObject(
    apiVersion: string,
    kind: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<ResolvedKind> {
    if (apiVersion !== `${this.group}/${this.version}`) {
      throw new UsageError(
        `apiVersion "${apiVersion}" is not served here (expected ${this.group}/${this.version})`,
      );
    }
    const hit = (await this.all(opts)).find((k) => k.kind === kind);
    if (!hit) throw new UsageError(`no kind "${kind}" is registered for version "${apiVersion}"`);
    return hit;
  }
}
