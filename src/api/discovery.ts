// Discovery documents kubectl reads before anything else: /version, /apis (APIGroupList),
// /apis/<group> (APIGroup), /apis/<group>/<version> and /api/v1 (APIResourceList). Only the plain
// (non-aggregated) form is served: kubectl falls back to it, and /api answers 404 (no core group
// discovery), which kubectl tolerates.

import type { ApiResource } from '../model/api-resource.ts';
import type { ApiResources } from './api-resources.ts';

/** Reported to clients. The Kubernetes API level Xenos is shaped after is 1.32 (kubectl's
 *  version dispatcher picks its binary from `minor`); the Xenos version rides in gitVersion. */
export function versionInfo(xenosVersion: string): Record<string, string> {
  return {
    major: '1',
    minor: '32',
    gitVersion: `v1.32.0+xenos-${xenosVersion}`,
    gitCommit: '',
    gitTreeState: 'clean',
    buildDate: '',
    goVersion: '',
    compiler: 'node',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
}

const ITEM_VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
const STATUS_VERBS = ['get', 'patch', 'update'];
const LOG_VERBS = ['get'];

function groupEntry(group: string, version: string) {
  const gv = { groupVersion: `${group}/${version}`, version };
  return { name: group, versions: [gv], preferredVersion: gv };
}

export function apiGroupList(resources: ApiResources) {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: resources.groupVersions().map((gv) => groupEntry(gv.group, gv.version)),
  };
}

export function apiGroup(resources: ApiResources, group: string) {
  const gv = resources.groupVersions().find((g) => g.group === group);
  return gv ? { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(gv.group, gv.version) } : undefined;
}

function resourceEntries(r: ApiResource) {
  const main = {
    name: r.plural,
    singularName: r.singular,
    namespaced: r.namespaced,
    kind: r.kind,
    verbs: ITEM_VERBS,
    ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
    ...(r.categories.length ? { categories: r.categories } : {}),
  };
  const sub = (name: string, verbs: string[]) => ({
    name: `${r.plural}/${name}`,
    singularName: '',
    namespaced: r.namespaced,
    kind: r.kind,
    verbs,
  });
  return [
    main,
    ...(r.statusSubresource ? [sub('status', STATUS_VERBS)] : []),
    ...(r.logSubresource ? [sub('log', LOG_VERBS)] : []),
    // kubectl scale finds the Scale's group, version and kind here.
    ...(r.scale
      ? [{ ...sub('scale', STATUS_VERBS), group: 'autoscaling', version: 'v1', kind: 'Scale' }]
      : []),
  ];
}

export function apiResourceList(resources: ApiResources, group: string, version: string) {
  const rs = resources.inGroupVersion(group, version);
  if (rs.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: rs.flatMap(resourceEntries),
  };
}
