// Client-side apply's patch: set what differs, null what the last applied config had and the new
// one dropped, leave alone what others set.

import { describe, expect, it } from 'vitest';
import { mergePatch } from '../../src/api/merge-patch.ts';
import {
  LAST_APPLIED,
  lastApplied,
  threeWayPatch,
  withLastApplied,
} from '../../src/client/three-way-patch.ts';
import type { XObject } from '../../src/model/object.ts';

function template(spec: Record<string, unknown>, labels?: Record<string, string>): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceTemplate',
    metadata: { name: 'web', namespace: 'default', ...(labels ? { labels } : {}) },
    spec,
  };
}

/** What the server would hold after creating `applied` and then getting `serverAdds` merged in. */
function liveAfter(applied: XObject, serverAdds: Record<string, unknown> = {}): XObject {
  return mergePatch(withLastApplied(applied), serverAdds) as XObject;
}

describe('withLastApplied', () => {
  it('records the configuration without status and without the annotation itself', () => {
    const desired = { ...template({ a: 1 }), status: { phase: 'x' } };
    const m = withLastApplied(desired);
    expect(m.status).toBeUndefined();
    expect(lastApplied(m)).toEqual(template({ a: 1 }));
    expect(JSON.parse(m.metadata.annotations![LAST_APPLIED])).not.toHaveProperty('metadata.annotations');
  });
});

describe('threeWayPatch', () => {
  it('is undefined when the live object already matches', () => {
    const live = liveAfter(template({ a: 1, b: { c: 2 } }), {
      metadata: { uid: 'u', resourceVersion: '7', generation: 1 },
      status: { phase: 'Ready' },
    });
    expect(threeWayPatch(live, withLastApplied(template({ a: 1, b: { c: 2 } })))).toBeUndefined();
  });

  it('sets changed fields and nulls removed ones, keeping fields set by others', () => {
    const live = liveAfter(template({ a: 1, b: { c: 2, d: 3 }, gone: true }, { app: 'web' }), {
      metadata: { labels: { 'added-by-hand': 'yes' } },
      spec: { defaulted: 'by-server' },
    });
    const next = withLastApplied(template({ a: 2, b: { c: 2 } }, { app: 'web' }));
    const patch = threeWayPatch(live, next)!;
    expect(patch.spec).toEqual({ a: 2, b: { d: null }, gone: null });
    const result = mergePatch(live, patch) as XObject;
    expect(result.spec).toEqual({ a: 2, b: { c: 2 }, defaulted: 'by-server' });
    expect(result.metadata.labels).toEqual({ app: 'web', 'added-by-hand': 'yes' });
    expect(lastApplied(result)).toEqual(template({ a: 2, b: { c: 2 } }, { app: 'web' }));
  });

  it('replaces arrays whole and removes a label dropped from the file', () => {
    const live = liveAfter(template({ ports: [{ name: 'a', port: 1 }] }, { app: 'web', tier: 'x' }));
    const patch = threeWayPatch(
      live,
      withLastApplied(template({ ports: [{ name: 'b', port: 2 }] }, { app: 'web' })),
    )!;
    expect(patch.spec).toEqual({ ports: [{ name: 'b', port: 2 }] });
    expect((patch.metadata as { labels: unknown }).labels).toEqual({ tier: null });
  });

  it('without a last-applied annotation only adds and changes', () => {
    const live = template({ a: 1, extra: true });
    const patch = threeWayPatch(live, withLastApplied(template({ a: 1 })))!;
    expect(patch.spec).toBeUndefined();
    expect(Object.keys((patch.metadata as { annotations: object }).annotations)).toEqual([LAST_APPLIED]);
  });

  it('never patches status', () => {
    const live = liveAfter(template({ a: 1 }), { status: { phase: 'Ready' } });
    expect(
      threeWayPatch(live, withLastApplied({ ...template({ a: 1 }), status: { phase: 'Other' } })),
    ).toBeUndefined();
  });
});
