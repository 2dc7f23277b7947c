// One GitOps source on one host (`xenosd --watch [NAME=]DIR`): keeps the cluster equal to a directory of
// manifests. Each sync reads the directory as one revision (checkout.ts), applies every object of every
// file that parsed and validated — through this host's own API, as `xenosctl apply` does, labelled
// `xenos.io/manifest-source: NAME` — imports a template's image from the checkout into this host's image
// store (the template then names it by digest, like an uploaded one), and prunes the objects carrying the
// label that the revision no longer has, but only when every file was good: a broken file never deletes
// anything. A sync runs when chokidar sees the directory change (after a quiet moment, so a checkout that
// swaps many files is one revision) and every `intervalMs`, which repairs drift: an object edited or
// deleted by hand comes back. How it went is the ManifestSource `<host>.<name>`, written only when
// something changed. Hosts that watch copies of one repository under one name write the same objects,
// so the second writes nothing (an apply with no difference sends nothing).

import { realpath, stat } from 'node:fs/promises';
import { type FSWatcher, watch } from 'chokidar';
import { formatLocatedError, type ManifestDoc } from '../../api/manifest.ts';
import type { Validator } from '../../api/validation.ts';
import { applyObject } from '../../client/apply.ts';
import type { XenosClient } from '../../client/client.ts';
import { isNotFound } from '../../client/errors.ts';
import type { ImageStore } from '../../images/image-store.ts';
import { importInto } from '../../images/import-image.ts';
import { type Log, silentLogger } from '../../log/logger.ts';
import { HOST, MANIFEST_SOURCE, SERVICE_TEMPLATE, XENOS_KINDS } from '../../model/kinds.ts';
import { type ManifestSourceStatus, SOURCE_LABEL } from '../../model/manifest-source.ts';
import type { Condition, XObject } from '../../model/object.ts';
import { guessFormat, type ImageSource } from '../../model/service-template.ts';
import { readCheckout } from './checkout.ts';
import { LiveObjects, liveKey } from './live-objects.ts';

export const GITOPS_FIELD_MANAGER = 'xenosd-gitops';
/** At most this many errors are kept in status (the CRD's maxItems). */
const MAX_ERRORS = 100;

export interface ManifestSyncComponents {
  /** This host's API, as the admin. */
  client: XenosClient;
  /** The daemon's validator (the CRDs it serves): validation is as strict as `xenosctl apply`'s. */
  validator: Validator;
  /** Where a template's image from the checkout is imported. */
  images: ImageStore;
  log?: Log;
}

export interface ManifestSyncInit {
  hostName: string;
  dir: string;
  /** The source's name (the label's value): the directory's name unless given. */
  name: string;
  /** Drift repair: a sync this often even when nothing changed on disk. Default 5 s. */
  intervalMs?: number;
  /** A change on disk is synced once the directory has been quiet this long. Default 300 ms. */
  quietMs?: number;
}

/** What one sync did (also what the tests look at). */
export interface SyncReport {
  revision?: string;
  objects: number;
  applied: number;
  pruned: number;
  errors: string[];
  /** False when the checkout was changing: nothing was done, a sync follows shortly. */
  settled: boolean;
}

export class ManifestSync {
  readonly #c: ManifestSyncComponents;
  readonly #init: ManifestSyncInit;
  readonly #log: Log;
  #watcher: FSWatcher | undefined;
  /** Where the directory led when its files were last watched (a symlink's target). */
  #root: string | undefined;
  #follow: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;
  #quiet: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #again = false;
  /** The objects the last sync applied (identity), so a change to one of them wakes a sync. */
  #wanted = new Set<string>();
  /** When chokidar last saw the directory change (ms). */
  #changedAt = 0;
  #stop = new AbortController();
  /** What the ManifestSource says now (so an unchanged sync writes nothing). */
  #written: string | undefined;
  /** What the cluster holds of each kind a source may apply, kept by a watch (live-objects.ts). */
  readonly #live = new Map<string, LiveObjects>();
  /** Images imported from the checkout, by path, size and mtime: not imported again when unchanged. */
  readonly #imported = new Map<string, { stamp: string; digest: string }>();

  constructor(components: ManifestSyncComponents, init: ManifestSyncInit) {
    this.#c = components;
    this.#init = init;
    this.#log = components.log ?? silentLogger.root;
  }

  /** The ManifestSource's name: `<host>.<source name>`. */
  get objectName(): string {
    return `${this.#init.hostName}.${this.#init.name}`;
  }

  async start(): Promise<void> {
    this.#stop = new AbortController();
    await this.#watchFiles();
    // A symlink switched to another directory changes no file chokidar watches: look at where the
    // directory leads every second, and watch the new place when it moved.
    let moving = false;
    this.#follow = setInterval(async () => {
      if (moving) return;
      moving = true;
      try {
        const root = await realpath(this.#init.dir).catch(() => undefined);
        if (root === this.#root || this.#stop.signal.aborted) return;
        this.#changedAt = Date.now();
        await this.#watchFiles();
        this.#soon();
      } finally {
        moving = false;
      }
    }, 1000);
    this.#follow.unref();
    for (const rt of XENOS_KINDS) {
      if (rt.kind === MANIFEST_SOURCE.kind || rt.kind === HOST.kind) continue;
      // A change made by someone else to what this source applied: repair it now, not at the next tick.
      const watched = new LiveObjects(this.#c.client, rt, this.#log, (o) => {
        if (o.metadata.labels?.[SOURCE_LABEL] === this.#init.name || this.#wanted.has(identity(rt.kind, o)))
          this.#soon();
      });
      this.#live.set(rt.kind, watched);
      watched.start(this.#stop.signal).catch((err) => {
        if (!this.#stop.signal.aborted)
          this.#log.warn({ err }, `listing ${rt.plural} failed: ${err.message}`);
      });
    }
    const every = this.#init.intervalMs ?? 5000;
    this.#timer = setInterval(() => this.trigger(), every);
    this.#timer.unref();
    this.trigger();
  }

  /** Watches the files where the directory leads now (chokidar follows a symlink once, when it starts). */
  async #watchFiles(): Promise<void> {
    await this.#watcher?.close();
    this.#root = await realpath(this.#init.dir).catch(() => undefined);
    this.#watcher = watch(this.#root ?? this.#init.dir, {
      ignoreInitial: true,
      // In .git only HEAD and the index lock: a checkout that moves HEAD counts as a change.
      ignored: (path) => /(^|\/)\.git\/./.test(path) && !/\/\.git\/(HEAD|index\.lock)$/.test(path),
    });
    this.#watcher.on('all', () => {
      this.#changedAt = Date.now();
      this.#soon();
    });
    this.#watcher.on('error', (err) =>
      this.#log.warn({ err }, `watching ${this.#init.dir}: ${(err as Error).message}`),
    );
    if (this.#stop.signal.aborted) await this.#watcher.close(); // stop() ran meanwhile
  }

  async stop(): Promise<void> {
    this.#stop.abort(new Error('xenosd is stopping'));
    clearInterval(this.#timer);
    clearInterval(this.#follow);
    clearTimeout(this.#quiet);
    await this.#watcher?.close();
    this.#watcher = undefined;
    await this.#running;
    await Promise.all([...this.#live.values()].map((l) => l.stopped()));
    this.#live.clear();
  }

  /** How many times each kind was listed (once each, unless a watch fell behind a compaction). */
  get lists(): number {
    let n = 0;
    for (const l of this.#live.values()) n += l.lists;
    return n;
  }

  /** Sync now, or right after the sync that runs (never two at once). */
  trigger(): Promise<void> {
    if (this.#stop.signal.aborted) return this.#running;
    this.#again = true;
    this.#running = this.#running.then(async () => {
      if (!this.#again || this.#stop.signal.aborted) return;
      this.#again = false;
      try {
        const report = await this.sync();
        if (!report.settled) this.#soon();
      } catch (err) {
        if (!this.#stop.signal.aborted)
          this.#log.warn({ err }, `syncing ${this.#init.dir} failed: ${(err as Error).message}`);
      }
    });
    return this.#running;
  }

  /** A change on disk: sync once the directory has been quiet for a moment. */
  #soon(): void {
    clearTimeout(this.#quiet);
    this.#quiet = setTimeout(() => this.trigger(), this.#init.quietMs ?? 300);
  }

  /** One sync: read, apply, prune, record. */
  async sync(): Promise<SyncReport> {
    const signal = this.#stop.signal;
    let read: Awaited<ReturnType<typeof readCheckout>>;
    try {
      read = await readCheckout(this.#init.dir, this.#c.validator, signal);
    } catch (err) {
      const errors = [`${this.#init.dir}: cannot read: ${(err as Error).message}`];
      const report = { objects: 0, applied: 0, pruned: 0, errors, settled: true };
      await this.#record(report);
      return report;
    }
    const quietMs = this.#init.quietMs ?? 300;
    if (read.settled && Date.now() - this.#changedAt < quietMs)
      read = { settled: false, why: 'it changed a moment ago' };
    if (!read.settled) {
      this.#log.debug(`${this.#init.dir}: ${read.why}; reading it again shortly`);
      return { objects: 0, applied: 0, pruned: 0, errors: [], settled: false };
    }
    const { manifests } = read;
    const errors = manifests.errors.map((e) => formatLocatedError(e));
    const broken = new Set(manifests.errors.map((e) => e.file));
    const docs = manifests.docs.filter((d) => !broken.has(d.file));
    let applied = 0;
    const wanted = new Set<string>();
    // The watched cache, not a GET per object: a sync of an unchanged checkout sends nothing at all.
    const listed = await this.#cache(signal);
    for (const doc of docs) {
      const rt = this.#c.validator.kindOf(doc.object);
      if (!rt) continue; // validation refused it already
      const id = identity(rt.kind, doc.object);
      wanted.add(id);
      try {
        const object = await this.#prepare(doc);
        const { result } = await applyObject(this.#c.client, rt, object, {
          signal,
          fieldManager: GITOPS_FIELD_MANAGER,
          guard: (live) => this.#mustNotBeOthers(live),
          live: listed.get(rt.kind)?.get(liveKey(doc.object)) ?? null,
        });
        if (result !== 'unchanged') {
          applied++;
          this.#log.info(`${doc.file}:${doc.line}: ${rt.singular}/${doc.object.metadata.name} ${result}`);
        }
      } catch (err) {
        if (signal.aborted) throw err;
        const details = (err as { details?: string[] }).details ?? [];
        errors.push(
          `${doc.file}:${doc.line}: ${rt.singular}/${doc.object.metadata.name}: ${(err as Error).message}` +
            details.map((d) => `; ${d}`).join(''),
        );
      }
    }
    // A broken file (or an object the API refused) may hide objects that are still wanted: prune nothing.
    this.#wanted = wanted;
    const pruned = errors.length === 0 ? await this.#prune(listed, wanted, signal) : 0;
    const report = { revision: read.revision, objects: docs.length, applied, pruned, errors, settled: true };
    await this.#record(report);
    return report;
  }

  /** The watched objects of each kind, once every kind's first list is in. */
  async #cache(signal: AbortSignal): Promise<Map<string, Map<string, XObject>>> {
    const out = new Map<string, Map<string, XObject>>();
    for (const [kind, live] of this.#live) {
      await live.start(signal);
      out.set(kind, live.objects);
    }
    return out;
  }

  /** Two sources defining one object would take it from each other at every sync: the second is refused
   *  (an object without the label, made by hand or by xenosctl, is taken over). */
  #mustNotBeOthers(live: XObject): void {
    const owner = live.metadata.labels?.[SOURCE_LABEL];
    if (owner !== undefined && owner !== this.#init.name)
      throw new Error(
        `already applied by manifest source "${owner}" (its ${SOURCE_LABEL} label); one object belongs to one source`,
      );
  }

  /** The object as it is applied: labelled with the source; a template's local image imported here. */
  async #prepare(doc: ManifestDoc): Promise<XObject> {
    const object = structuredClone(doc.object);
    object.metadata.labels = { ...object.metadata.labels, [SOURCE_LABEL]: this.#init.name };
    if (object.kind !== SERVICE_TEMPLATE.kind) return object;
    const image = (object.spec as { image?: ImageSource } | undefined)?.image;
    if (!image || typeof image.path !== 'string') return object;
    const path = image.path;
    const st = await stat(path).catch(() => undefined);
    if (!st) return object; // not in the checkout: a path on the hosts themselves, as the CRD allows
    const stamp = `${st.size}:${st.mtimeMs}`;
    let known = this.#imported.get(path);
    if (known?.stamp !== stamp || !(await this.#c.images.get(known.digest))) {
      const imported = await importInto(this.#c.images, { path }, undefined, {
        signal: this.#stop.signal,
      });
      known = { stamp, digest: imported.digest };
      this.#imported.set(path, known);
    }
    if (image.digest && image.digest !== known.digest)
      throw new Error(`spec.image.digest is ${image.digest} but ${path} has digest ${known.digest}`);
    (object.spec as { image: ImageSource }).image = {
      digest: known.digest,
      format: image.format ?? guessFormat(path, st.isDirectory()),
    };
    return object;
  }

  /** Deletes what this source applied before and the revision no longer has. */
  async #prune(
    live: Map<string, Map<string, XObject>>,
    wanted: Set<string>,
    signal: AbortSignal,
  ): Promise<number> {
    let pruned = 0;
    for (const rt of XENOS_KINDS) {
      for (const o of [...(live.get(rt.kind)?.values() ?? [])]) {
        if (o.metadata.labels?.[SOURCE_LABEL] !== this.#init.name) continue;
        if (wanted.has(identity(rt.kind, o)) || o.metadata.deletionTimestamp) continue;
        const namespace = o.metadata.namespace || undefined;
        try {
          await this.#c.client.delete(rt, o.metadata.name, { namespace, signal });
          pruned++;
          this.#log.info(`${rt.singular}/${o.metadata.name} pruned: its file is gone from ${this.#init.dir}`);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    }
    return pruned;
  }

  /** Writes the ManifestSource when the revision, the objects or the errors changed, or the sync did
   *  something. */
  async #record(report: Omit<SyncReport, 'settled'>): Promise<void> {
    const errors = report.errors.slice(0, MAX_ERRORS);
    const same = JSON.stringify([report.revision, report.objects, errors]);
    if (same === this.#written && report.applied === 0 && report.pruned === 0) return;
    const status: ManifestSourceStatus = {
      revision: report.revision,
      lastSyncTime: new Date().toISOString(),
      objects: report.objects,
      applied: report.applied,
      pruned: report.pruned,
      errorCount: report.errors.length,
      errors,
      conditions: [readyCondition(report.errors)],
    };
    const client = this.#c.client;
    const signal = this.#stop.signal;
    const name = this.objectName;
    try {
      await client.get(MANIFEST_SOURCE, name, { signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const spec = { host: this.#init.hostName, path: this.#init.dir, sourceName: this.#init.name };
      await client.create(
        MANIFEST_SOURCE,
        { apiVersion: MANIFEST_SOURCE.apiVersion, kind: MANIFEST_SOURCE.kind, metadata: { name }, spec },
        { signal, fieldManager: GITOPS_FIELD_MANAGER },
      );
    }
    await client.patchStatus(MANIFEST_SOURCE, name, status, { signal, fieldManager: GITOPS_FIELD_MANAGER });
    this.#written = same;
    if (report.errors.length)
      this.#log.warn(`${this.#init.dir}: ${report.errors.length} problem(s): ${report.errors.join(' | ')}`);
  }
}

function identity(kind: string, o: XObject): string {
  return `${kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function readyCondition(errors: string[]): Condition {
  const now = new Date().toISOString();
  return errors.length === 0
    ? {
        type: 'Ready',
        status: 'True',
        reason: 'Synced',
        message: 'every object is applied',
        lastTransitionTime: now,
      }
    : {
        type: 'Ready',
        status: 'False',
        reason: 'ManifestErrors',
        message: `${errors.length} problem(s); the first: ${errors[0]}`.slice(0, 32_000),
        lastTransitionTime: now,
      };
}
