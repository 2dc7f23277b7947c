// The scale subresource, as Kubernetes serves it for a custom resource that declares one (the CRD's
// subresources.scale: ServiceDeployment's specReplicasPath .spec.replicas, statusReplicasPath
// .status.replicas): the object seen as an autoscaling/v1 Scale. GET reads the counts out of the object;
// PUT (a Scale) and PATCH (a merge or JSON patch of the Scale) change the desired count alone, written as
// an update of the object (the same admission, validation and resourceVersion check as any update).
// `kubectl scale` and `xenosctl scale` use it.

import type { ApiResource } from '../model/api-resource.ts';
import type { XObject } from '../model/object.ts';

type Obj = Record<string, any>;
export type ScalePaths = NonNullable<ApiResource['scale']>;

/** `.spec.replicas` → ['spec', 'replicas']. */
function segments(path: string): string[] {
  return path.replace(/^\./, '').split('.');
}

function read(obj: Obj, path: string): unknown {
  let at: unknown = obj;
  for (const k of segments(path)) at = at && typeof at === 'object' ? (at as Obj)[k] : undefined;
  return at;
}

/** The object as an autoscaling/v1 Scale. */
export function toScale(obj: XObject, paths: ScalePaths): Obj {
  const m = obj.metadata;
  const statusReplicas = read(obj as Obj, paths.statusReplicasPath);
  const selector = paths.labelSelectorPath ? read(obj as Obj, paths.labelSelectorPath) : undefined;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: m.name,
      ...(m.namespace ? { namespace: m.namespace } : {}),
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
    },
    spec: { replicas: read(obj as Obj, paths.specReplicasPath) ?? 0 },
    status: {
      replicas: typeof statusReplicas === 'number' ? statusReplicas : 0,
      ...(typeof selector === 'string' ? { selector } : {}),
    },
  };
}

/** Why `scale` cannot be applied (field and message), or undefined. */
export function scaleProblem(scale: unknown): { field: string; message: string } | undefined {
  const replicas = (scale as Obj | null)?.spec?.replicas;
  if (!Number.isInteger(replicas) || replicas < 0)
    return {
      field: 'spec.replicas',
      message: `Invalid value: ${JSON.stringify(replicas)}: must be a whole number, 0 or more`,
    };
  return undefined;
}

/** `current` with its desired count set from `scale` (checked by scaleProblem) and the resourceVersion
 *  the Scale carries, if any (a conflict then, as for any update). */
export function scaledObject(current: XObject, scale: Obj, paths: ScalePaths): XObject {
  const next = structuredClone(current) as Obj;
  const keys = segments(paths.specReplicasPath);
  let at = next;
  for (const k of keys.slice(0, -1)) {
    at[k] ??= {};
    at = at[k];
  }
  at[keys.at(-1)!] = scale.spec.replicas;
  const rv = scale.metadata?.resourceVersion;
  if (typeof rv === 'string' && rv !== '') next.metadata.resourceVersion = rv;
  return next as XObject;
}
