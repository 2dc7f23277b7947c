// What reconciling one ServiceInstance on this host is, as the steps of the Reconciler skeleton
// (src/reconcile/reconciler.ts) run it, in order. Gone → its machine deletes the domain. Not placed here →
// a domain of it here goes, an orphaned finalizer goes, an unplaced instance is placed here (single host).
// Being deleted → the machine stops and destroys the domain, then the finalizer goes. Otherwise, one step
// each: the driver it asks for is this host's; a machine of an older instance of the same name goes
// first; its template and the template's image are here (else TemplateReady=False and a requeue); the
// desired domain (invalid parameters are terminal: Stalled); the domain machine made or fed; the
// machine's snapshot queued as status. The skeleton writes that status once.

import type { EventRecorder } from '../../src/api/events.ts';
import { failoverOf } from '../../src/cluster/failover.ts';
import type { LocalMigrations } from '../../src/cluster/migration/local-migrations.ts';
import type { Driver } from '../../src/drivers/driver.ts';
import type { ImageProgress } from '../../src/images/image-source.ts';
import { HOST, SERVICE_INSTANCE, SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import type { ServiceTemplate } from '../../src/model/service-template.ts';
import { getCondition, isConditionTrue, setCondition } from '../../src/reconcile/conditions.ts';
import type { ReconcileResult } from '../../src/reconcile/controller.ts';
import { TerminalError } from '../../src/reconcile/errors.ts';
import { keyOf } from '../../src/reconcile/keys.ts';
import { type ReconcilerInit, removeFinalizer, type Scope } from '../../src/reconcile/reconciler.ts';
import type { Store } from '../../src/store/store.ts';
import { teardownDomain } from './actors.ts';
import {
  applySnapshot,
  DOMAIN_RUNNING,
  type DomainSnapshot,
  SCHEDULED,
  summariseInstance,
  TEMPLATE_READY,
} from './conditions.ts';
import type { InstanceCredentials } from './credentials.ts';
import { buildDesiredDomain, domainIdOf, identityOf, instanceRef } from './domain-spec.ts';
import { failoverStatus } from './failover-status.ts';
import type { InstanceLayerCopies } from './layer-copies.ts';
import type { DesiredDomain } from './machine-types.ts';
import type { DomainMachines } from './machines.ts';

export const DOMAIN_FINALIZER = 'xenos.io/domain';

/** Where this host keeps imported template images (src/images' content-addressed cache). */
export interface LocalImages {
  /** The local path of the image with this digest, or undefined when this host does not hold it. */
  locate(digest: string, options?: { signal?: AbortSignal }): Promise<string | undefined>;
  /** Starts getting an image this host lacks (a pull from its peers) unless that is under way, and says
   *  how far it is, or why the last attempt failed; undefined when this host has no way to get it. */
  fetch?(digest: string): { progress?: ImageProgress; error?: Error } | undefined;
}

/** How often an instance waiting for its image looks again (and writes its progress). */
const PULL_POLL_MS = 2000;

export interface InstanceStepsComponents {
  store: Store;
  driver: Driver;
  images: LocalImages;
  machines: DomainMachines;
  credentials?: InstanceCredentials;
  event: EventRecorder;
  /** Instances moving between hosts, whose domains this controller leaves alone meanwhile. */
  migrations?: Pick<LocalMigrations, 'protects' | 'leaving'>;
  /** True until this host's store has caught up with the cluster after a start: instances that fail over
   *  are not taken as this host's meanwhile (they may have been re-bound while it was away). */
  fenced?: () => boolean;
  /** Whether this host sees a majority of the cluster's hosts live; without it, singleton copies stop. */
  quorum?: () => boolean;
  /** Failover's copies of disk layers: the one a domain failing over here is made from, the last sent. */
  layerCopies?: InstanceLayerCopies;
}

export interface InstanceStepsInit {
  hostName: string;
  placeUnplaced?: boolean;
  apiUrl?: string;
  templateRetryMs?: number;
  stopGraceMs?: number;
}

/** What a pass's steps hand on to the later ones. */
export interface InstancePass {
  template?: ServiceTemplate;
  /** The digest of the template's image, and where it is on this host. */
  digest?: string;
  imagePath?: string;
  desired?: DesiredDomain;
  snapshot?: DomainSnapshot;
}

type InstanceScope = Scope<typeof SERVICE_INSTANCE.kind, InstancePass>;

function specOf(instance: ServiceInstance) {
  return instance.spec ?? ({ templateRef: { name: '' } } as NonNullable<ServiceInstance['spec']>);
}

/** Deleted, with our finalizer, and no host that could remove it: unplaced, or placed on a host that
 *  is not a member (no Host object). A member host removes its own; one that died is failover's. */
export function orphanedFinalizer(store: Store, instance: ServiceInstance): boolean {
  if (!instance.metadata.deletionTimestamp || !instance.metadata.finalizers?.includes(DOMAIN_FINALIZER)) {
    return false;
  }
  const host = instance.spec?.host;
  return !host || !store.get({ kind: HOST.kind, namespace: '', name: host });
}

export function instanceSteps(
  c: InstanceStepsComponents,
  init: InstanceStepsInit,
): ReconcilerInit<typeof SERVICE_INSTANCE.kind, InstancePass> {
  const { store, driver, machines } = c;
  const host = init.hostName;
  return {
    kind: SERVICE_INSTANCE.kind,
    finalizer: DOMAIN_FINALIZER,
    data: () => ({}),

    // Gone from the store: nothing of it may stay here (the machine's end brings the key back).
    gone: (key) => {
      machines.release(key);
      return undefined;
    },

    // Bound here, and not held back: while fenced, no instance that fails over is taken as this host's;
    // without a majority, no singleton is.
    owns: (instance) => {
      if (specOf(instance).host !== host) return false;
      const fenced = c.fenced?.() ?? false;
      if (!fenced && (c.quorum?.() ?? true)) return true;
      const failover = failoverOf(store, instance);
      return !(failover && (fenced || failover.singleton));
    },

    elsewhere: async (instance): Promise<ReconcileResult | undefined> => {
      const key = keyOf(instance);
      // Still tearing down a domain of it: the machine's end brings the key back. Gone now: go on at
      // once, as no other change may come to bring it back (a deletion seen while the machine ended).
      if (machines.has(key) && machines.release(key, instance)) return undefined;
      if (orphanedFinalizer(store, instance)) {
        removeFinalizer(store, SERVICE_INSTANCE.kind, key, DOMAIN_FINALIZER);
      } else if (
        !specOf(instance).host &&
        !instance.metadata.deletionTimestamp &&
        init.placeUnplaced !== false
      ) {
        // Single host: place every unplaced instance here.
        store.update({ ...instance, spec: { ...specOf(instance), host } });
        c.event(instance, 'Normal', 'Scheduled', `Placed on host ${host}`);
      }
      return undefined;
    },

    // The machine stops and destroys the domain (and, dropped, its token goes); without one (deleted
    // while no controller ran), the driver's domain is torn down and the token revoked here. Then the
    // skeleton drops the finalizer.
    finalize: async (scope) => {
      const instance = scope.object;
      if (machines.has(scope.key)) {
        const snap = machines.release(scope.key, instance);
        if (snap) {
          scope.status((s) => applySnapshot(s, snap, scope.generation));
          return false; // the machine's progress brings the key back
        }
      } else {
        const id = domainIdOf(instance);
        if (await driver.inspect(id, { signal: scope.signal })) {
          c.event(instance, 'Normal', 'Killing', `Stopping domain ${id}`);
          await teardownDomain(driver, id, { signal: scope.signal, graceMs: init.stopGraceMs });
        }
        c.credentials?.revoke(identityOf(instance));
      }
      return true;
    },

    steps: [
      {
        // Moving between hosts: the ServiceMigration controller has the domain (see LocalMigrations). A
        // cold move stops the service: the status says so until it runs again, here or there.
        name: 'migrating',
        run: ({ key, object, status, generation }) => {
          if (!c.migrations?.protects(object)) return undefined;
          const leaving = c.migrations.leaving(key);
          if (leaving?.mode === 'cold')
            status((s) =>
              setCondition(
                s,
                {
                  type: DOMAIN_RUNNING,
                  status: 'False',
                  reason: 'Migrating',
                  message: `stopped and moving to host ${leaving.peer} (a cold migration)`,
                },
                generation,
              ),
            );
          return { stop: true };
        },
      },
      {
        name: 'driver',
        run: ({ object }) => {
          const wanted = specOf(object).driver;
          if (!wanted || wanted === driver.name) return undefined;
          throw new TerminalError(
            'DriverUnavailable',
            `${instanceRef(object)}: spec.driver is ${wanted} but host ${host} runs the ${driver.name} driver; ` +
              `clear spec.driver or place the instance on a host with ${wanted}`,
          );
        },
      },
      {
        // Deleted and created again under the same name while we looked away: the old domain goes first
        // (its machine's end brings the key back).
        name: 'replaced',
        run: ({ key, object }) => {
          const uid = machines.uidOf(key);
          if (uid === undefined || uid === object.metadata.uid) return undefined;
          machines.release(key);
          return { stop: true };
        },
      },
      { name: 'template', run: (scope) => findTemplate(scope, c, host, init.templateRetryMs) },
      {
        name: 'desiredDomain',
        run: ({ object, data }) => {
          // Throws TerminalError for a spec that can never work: the skeleton records it as Stalled.
          data.desired = desiredDomainOf(c, init, object, data.template!, data.imagePath!);
          const fromCopy = c.layerCopies?.restorable(object);
          if (fromCopy) data.desired.spec.fromCopy = fromCopy;
          return undefined;
        },
      },
      {
        name: 'machine',
        run: async ({ key, object, data, signal }) => {
          data.snapshot = await machines.drive(key, object, data.desired!, signal);
          return undefined;
        },
      },
      {
        name: 'status',
        run: ({ object, data, generation, status }) => {
          const template = data.template!;
          const digest = data.digest;
          const snap = data.snapshot!;
          status((s) => {
            if (!isConditionTrue(s, TEMPLATE_READY)) {
              c.event(object, 'Normal', 'Pulled', `Image ${digest} is present on host ${host}`);
            }
            setCondition(
              s,
              {
                type: TEMPLATE_READY,
                status: 'True',
                reason: 'ImagePresent',
                message: `template ${template.metadata.name}: image ${digest} is on host ${host}`,
              },
              generation,
            );
            applySnapshot(s, snap, generation);
            s.serviceType = template.spec?.serviceType ?? template.metadata.name;
          });
          return undefined;
        },
      },
    ],

    always: (s, instance, generation) => {
      // Shown only while a pull runs: each pass that waits for the image puts it back.
      delete s.imagePull;
      s.host = host;
      s.driver = driver.name;
      setCondition(
        s,
        { type: SCHEDULED, status: 'True', reason: 'Scheduled', message: `placed on host ${host}` },
        generation,
      );
      failoverStatus(s, instance, { ...c, host }, generation);
    },
    // A spec that can never work, before any domain: the instance failed (a domain, if any, is left as it is).
    failed: (s, failure, instance) => {
      if (failure.terminal && !machines.has(keyOf(instance))) s.phase = 'Failed';
    },
    summarise: summariseInstance,
    event: c.event,
  };
}

/** The domain this host runs for `instance`: its template's, with this host's environment and token. */
export function desiredDomainOf(
  c: Pick<InstanceStepsComponents, 'credentials'>,
  init: Pick<InstanceStepsInit, 'apiUrl'>,
  instance: ServiceInstance,
  template: ServiceTemplate,
  imagePath: string,
): DesiredDomain {
  const identity = identityOf(instance);
  const env: Record<string, string> = { XENOS_INSTANCE: identity.name, XENOS_NAMESPACE: identity.namespace };
  if (init.apiUrl) env.XENOS_API = init.apiUrl;
  const token = c.credentials?.tokenFor(identity);
  return buildDesiredDomain(instance, template, { imagePath, env, token });
}

/** The template and the local path of its image; or TemplateReady=False saying why, and a requeue. */
async function findTemplate(
  scope: InstanceScope,
  c: InstanceStepsComponents,
  host: string,
  retryMs = 10_000,
): Promise<{ requeueAfterMs: number; stop: true } | undefined> {
  const instance = scope.object;
  const ns = instance.metadata.namespace ?? 'default';
  const name = specOf(instance).templateRef.name;
  const template = c.store.get({ kind: SERVICE_TEMPLATE.kind, namespace: ns, name });
  // The template names its image by digest (spec.image.digest), or its controller found it (status.digest).
  const digest = template?.spec?.image?.digest ?? template?.status?.digest;
  const imagePath = digest ? await c.images.locate(digest, { signal: scope.signal }) : undefined;
  if (template && imagePath) {
    scope.data.template = template;
    scope.data.digest = digest;
    scope.data.imagePath = imagePath;
    return undefined;
  }
  if (template && digest && c.images.fetch) {
    const pull = c.images.fetch(digest);
    if (pull) return pulling(scope, c, host, { template, digest, ...pull }, retryMs);
  }
  const problem = !template
    ? {
        reason: 'TemplateNotFound',
        message: `${instanceRef(instance)}: spec.templateRef.name: ServiceTemplate ${ns}/${name} does not exist; create it (xenosctl apply -f) or fix the reference`,
      }
    : !digest
      ? {
          reason: 'ImageNotReady',
          message: `ServiceTemplate ${ns}/${name} has no imported image yet (status.digest is empty); waiting for it`,
        }
      : {
          reason: 'ImageNotPresent',
          message: `image ${digest} of ServiceTemplate ${ns}/${name} is not on host ${host} yet; waiting for the import`,
        };
  scope.status((s) => {
    setCondition(s, { type: TEMPLATE_READY, status: 'False', ...problem }, scope.generation);
    if (!c.machines.has(scope.key)) s.phase = problem.reason === 'TemplateNotFound' ? 'Pending' : 'Pulling';
  });
  // The template watch brings the key back when it changes; poll too (the image may arrive by other ways).
  return { requeueAfterMs: retryMs, stop: true };
}

/** The image is being pulled from peers (or the last pull failed): Pulling with its progress in
 *  status.imagePull, looked at again every PULL_POLL_MS (a failed pull after the template retry). */
function pulling(
  scope: InstanceScope,
  c: InstanceStepsComponents,
  host: string,
  pull: { template: ServiceTemplate; digest: string; progress?: ImageProgress; error?: Error },
  retryMs: number,
): { requeueAfterMs: number; stop: true } {
  const { digest, progress, error } = pull;
  const template = `ServiceTemplate ${pull.template.metadata.namespace ?? 'default'}/${pull.template.metadata.name}`;
  const before = getCondition(scope.object.status, TEMPLATE_READY);
  const condition = error
    ? {
        reason: 'ImagePullFailed',
        message: `pulling image ${digest} of ${template} onto host ${host} failed: ${error.message}; retrying`,
      }
    : {
        reason: 'ImagePulling',
        message: progress
          ? `pulling image ${digest} of ${template} onto host ${host}: ${progress.percent} % (${progress.bytes} of ${progress.size} bytes) from ${progress.holders} peers`
          : `pulling image ${digest} of ${template} onto host ${host}: looking for peers that hold it`,
      };
  if (before?.reason !== condition.reason) {
    c.event(
      scope.object,
      error ? 'Warning' : 'Normal',
      error ? 'Failed' : 'Pulling',
      error ? condition.message : `Pulling image ${digest} from peers`,
    );
  }
  const previous = scope.object.status?.imagePull;
  scope.status((s) => {
    setCondition(s, { type: TEMPLATE_READY, status: 'False', ...condition }, scope.generation);
    if (!c.machines.has(scope.key)) s.phase = 'Pulling';
    if (!progress) return;
    // The time moves only with the figures, so a pull that stands still writes nothing.
    const same = previous?.bytes === progress.bytes && previous.holders === progress.holders;
    s.imagePull = {
      ...progress,
      host,
      updatedAt: same && previous?.updatedAt ? previous.updatedAt : new Date().toISOString(),
    };
  });
  return { requeueAfterMs: error ? retryMs : PULL_POLL_MS, stop: true };
}
