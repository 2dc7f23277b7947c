// What a host's status record says and how it is checked and fitted: the instances it runs with their
// service type, readiness and endpoints (the payload of `/xenos/host/<peerId>`), its JSON schema, the
// fitting of a host's whole list into one 16 KiB record (Ready instances with endpoints first, and the
// record says what it left out), and the DHT key a service type is advertised under.

import { Ajv } from 'ajv';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { checkServiceType } from '../model/discovery.ts';
import {
  clampEndpoints,
  fitRecord,
  MAX_ENDPOINT_CHARS,
  MAX_ENTRY_ENDPOINTS,
  type Truncation,
} from './record-fit.ts';

export interface InstanceEndpoints {
  namespace: string;
  name: string;
  serviceType: string;
  /** `host:port` or URLs, as the instance registered them. */
  endpoints: string[];
  ready: boolean;
}

export interface HostStatus {
  instances: InstanceEndpoints[];
  /** What the publisher left out to fit the record (record-fit.ts); absent when nothing was. */
  truncated?: Truncation;
}

export interface DiscoveredHost {
  peerId: string;
  /** The provider's libp2p addresses (for direct streams: image chunks, migration). */
  multiaddrs: string[];
  /** Ready instances of the requested type, with endpoints, from a verified fresh status record. */
  instances: InstanceEndpoints[];
  /** seq and expiry of the status record the answer was read from. */
  seq: number;
  expiresAt?: number;
  /** The host's record did not hold all its instances or endpoints (too many for one record). */
  truncated?: Truncation;
}

const ajv = new Ajv({ strict: true });
export const checkStatus = ajv.compile<HostStatus>({
  type: 'object',
  required: ['instances'],
  additionalProperties: true,
  properties: {
    instances: {
      type: 'array',
      maxItems: 512,
      items: {
        type: 'object',
        required: ['namespace', 'name', 'serviceType', 'endpoints', 'ready'],
        additionalProperties: true,
        properties: {
          namespace: { type: 'string', maxLength: 63 },
          name: { type: 'string', maxLength: 253 },
          serviceType: { type: 'string', maxLength: 253 },
          endpoints: {
            type: 'array',
            maxItems: MAX_ENTRY_ENDPOINTS,
            items: { type: 'string', maxLength: MAX_ENDPOINT_CHARS },
          },
          ready: { type: 'boolean' },
        },
      },
    },
    truncated: {
      type: 'object',
      required: ['instances', 'endpoints'],
      properties: {
        instances: { type: 'integer', minimum: 0 },
        endpoints: { type: 'integer', minimum: 0 },
      },
    },
  },
});

/** The schema's complaint about `status` (after checkStatus refused it), for an error message. */
export function statusErrors(): string {
  return ajv.errorsText(checkStatus.errors, { dataVar: 'status' });
}

/** The DHT content ID a service type is advertised under. */
export async function serviceCid(serviceType: string): Promise<CID> {
  checkServiceType(serviceType);
  const digest = await sha256.digest(new TextEncoder().encode(`/xenos/svc/${serviceType}`));
  return CID.createV1(raw.code, digest);
}

/**
 * The host status that fits one record: endpoints clamped, Ready instances with endpoints first, as many
 * as fit; `n` is how many of `instances` it holds.
 */
export function fitHostStatus(
  key: string,
  peerId: string,
  instances: InstanceEndpoints[],
): { n: number; total: number; payload: HostStatus } {
  let endpointsOmitted = 0;
  const entries = instances
    .map((i) => {
      const { endpoints, omitted } = clampEndpoints(i.endpoints);
      endpointsOmitted += omitted;
      return { ...i, endpoints };
    })
    .map((entry, index) => ({ entry, index, rank: entry.ready && entry.endpoints.length > 0 ? 0 : 1 }))
    .sort((x, y) => x.rank - y.rank || x.index - y.index)
    .map(({ entry }) => entry);
  const { n, payload } = fitRecord('host', key, peerId, entries.length, (n) => {
    const truncated = { instances: entries.length - n, endpoints: endpointsOmitted };
    const status: HostStatus = { instances: entries.slice(0, n) };
    if (truncated.instances > 0 || truncated.endpoints > 0) status.truncated = truncated;
    return status;
  });
  return { n, total: entries.length, payload };
}
