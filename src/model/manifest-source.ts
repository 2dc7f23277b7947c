// ManifestSource: how one host keeps the cluster equal to one directory of manifests (`xenosd --watch`),
// an object per watched directory per host, written by that host's watcher (src/daemon/gitops).
// crds/manifestsources.xenos.io.yaml is the source of truth.

import type { BaseStatus, XObject } from './object.ts';

/** The label on every object a source applied, naming the source (not the host): hosts watching copies of
 *  one repository under one name write the same objects, and each prunes only what that name applied. */
export const SOURCE_LABEL = 'xenos.io/manifest-source';

export interface ManifestSourceSpec {
  /** The host that watches. */
  host: string;
  /** The directory it watches, as that host sees it. */
  path: string;
  /** The source's name: the value of the SOURCE_LABEL label on what it applied. */
  sourceName: string;
}

export interface ManifestSourceStatus extends BaseStatus {
  /** `git:<HEAD>` when the directory is a git checkout, else `sha256:<digest of its manifests>`. */
  revision?: string;
  /** When the last sync that changed something (an object, the revision, the errors) ended. */
  lastSyncTime?: string;
  /** Objects the revision defines (in files without errors). */
  objects?: number;
  /** Objects created or changed by that sync. */
  applied?: number;
  /** Objects deleted by that sync (their files gone). */
  pruned?: number;
  /** `path/file.yaml:LINE: message`, for every file that failed to parse, validate or apply. */
  errors?: string[];
  errorCount?: number;
}

export type ManifestSource = XObject<ManifestSourceSpec, ManifestSourceStatus>;
