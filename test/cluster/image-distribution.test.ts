// Ahead-of-need distribution (`spec.distribution`): the CRD takes exactly one of hosts/count/selector and
// says where a mistake is; each host decides alone and all hosts agree — every host, the matching hosts, or
// exactly N live schedulable hosts, where a holder that dies is replaced by one other host and the rest stay.

import { describe, expect, it } from 'vitest';
import { loadKinds } from '../../src/api/kinds.ts';
import { Validator } from '../../src/api/validation.ts';
import { heldDigests, shouldHoldAhead } from '../../src/cluster/image-distribution.ts';
import type { Host } from '../../src/model/host.ts';
import type { DistributionSpec, ServiceTemplate } from '../../src/model/service-template.ts';

const DIGEST = `sha256:${'5e'.repeat(32)}`;
const validator = new Validator(loadKinds());

/** A template of the image DIGEST (null: an image whose digest is not known yet). */
function template(distribution?: DistributionSpec, digest: string | null = DIGEST): ServiceTemplate {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceTemplate',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      image: { path: '/srv/images/web', ...(digest ? { digest } : {}) },
      ...(distribution ? { distribution } : {}),
    },
  } as ServiceTemplate;
}

function host(name: string, labels: Record<string, string> = {}, cordoned = false): Host {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'Host',
    metadata: { name, labels },
    spec: { unschedulable: cordoned },
    status: {},
  } as Host;
}

const names = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];
const hosts = names.map((n, i) => host(n, { zone: i % 2 ? 'b' : 'a' }));

function holders(t: ServiceTemplate, all: Host[], live: (n: string) => boolean): string[] {
  return all.map((h) => h.metadata.name).filter((n) => shouldHoldAhead(t, n, all, live).hold);
}

describe('spec.distribution in the CRD', () => {
  it('accepts each form and refuses two at once, zero hosts or an empty selector, with the field', () => {
    for (const d of [{ hosts: 'All' }, { count: 3 }, { selector: { zone: 'a' } }]) {
      expect(validator.validate(template(d as DistributionSpec)), JSON.stringify(d)).toEqual([]);
    }
    const both = validator.validate(template({ hosts: 'All', count: 2 }));
    expect(both.map((e) => e.path)).toContain('spec.distribution');
    const zero = validator.validate(template({ count: 0 }));
    expect(zero.map((e) => e.path)).toContain('spec.distribution.count');
    const some = validator.validate(template({ hosts: 'Some' as 'All' }));
    expect(some.map((e) => e.path)).toContain('spec.distribution.hosts');
    const empty = validator.validate(template({ selector: {} }));
    expect(empty.map((e) => e.path)).toContain('spec.distribution.selector');
  });
});

describe('shouldHoldAhead', () => {
  const live = () => true;

  it('holds nothing ahead of need without spec.distribution', () => {
    expect(holders(template(), hosts, live)).toEqual([]);
    expect(shouldHoldAhead(template(), 'h1', hosts, live).reason).toBe('OnDemand');
  });

  it('holds on every host for hosts: All, and on the matching hosts for a selector', () => {
    expect(holders(template({ hosts: 'All' }), hosts, live)).toEqual(names);
    expect(holders(template({ selector: { zone: 'b' } }), hosts, live)).toEqual(['h2', 'h4', 'h6']);
    expect(shouldHoldAhead(template({ selector: { zone: 'b' } }), 'h1', hosts, live)).toMatchObject({
      hold: false,
      reason: 'SelectorDoesNotMatch',
    });
  });

  it('holds on exactly N live schedulable hosts; a dead holder is replaced by one host, the rest stay', () => {
    const t = template({ count: 3 });
    const first = holders(t, hosts, live);
    expect(first).toHaveLength(3);
    // Every host reaches the same answer from its own view (the order hosts come in does not matter).
    expect(holders(t, [...hosts].reverse(), live).sort()).toEqual(first.sort());

    const dead = first[0];
    const after = holders(t, hosts, (n) => n !== dead);
    expect(after).toHaveLength(3);
    expect(after).not.toContain(dead);
    expect(after.filter((n) => first.includes(n))).toHaveLength(2);

    // A cordoned host takes no instances, so it holds nothing ahead of need either.
    const cordoned = hosts.map((h) => (h.metadata.name === first[1] ? host(first[1], {}, true) : h));
    expect(holders(t, cordoned, live)).not.toContain(first[1]);
    expect(holders(t, cordoned, live)).toHaveLength(3);

    // More than there are: every live host.
    expect(holders(template({ count: 50 }), hosts, live)).toEqual(names);
  });

  it('waits for a digest before it ranks (two templates of one image pick the same hosts)', () => {
    expect(shouldHoldAhead(template({ count: 2 }, null), 'h1', hosts, live).reason).toBe('NoDigest');
    const other = { ...template({ count: 2 }), metadata: { name: 'api', namespace: 'prod' } };
    expect(holders(other as ServiceTemplate, hosts, live)).toEqual(
      holders(template({ count: 2 }), hosts, live),
    );
  });

  it('reads Host.status.images entries and bare digests', () => {
    const h = host('x');
    h.status = { images: [{ digest: DIGEST, manifest: 'sha256:m', size: 3 }, 'sha256:old'] as never };
    expect([...heldDigests(h)]).toEqual([DIGEST, 'sha256:old']);
  });
});
