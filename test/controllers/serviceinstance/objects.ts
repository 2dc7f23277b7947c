// The objects the ServiceInstance controller tests apply: a template of the fixture HTTP service
// (fixtures/http-service, a `message` parameter, an http health check every second) and instances of it.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are Xenos `${params.X}` templates, not JS ones

import { join } from 'node:path';
import type { XObject } from '../../../src/model/object.ts';

export const IMAGE = join(import.meta.dirname, 'fixtures', 'http-service');

export function template(name = 'web', extra: Record<string, unknown> = {}): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceTemplate',
    metadata: { name, namespace: 'default' },
    spec: {
      serviceType: 'greeter',
      image: { path: IMAGE, format: 'directory' },
      process: {
        command: ['node', 'server.mjs'],
        env: [{ name: 'MESSAGE', value: '${params.message}' }],
      },
      parameters: [{ name: 'message', default: 'hello', pattern: '[a-z]+' }],
      ports: [{ name: 'http', port: 8080, appProtocol: 'http' }],
      healthCheck: { http: { port: 'http', path: '/' }, periodSeconds: 1 },
      ...extra,
    },
  };
}

export function instance(name: string, spec: Record<string, unknown> = {}): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name, namespace: 'default' },
    spec: { templateRef: { name: 'web' }, ...spec },
  };
}
