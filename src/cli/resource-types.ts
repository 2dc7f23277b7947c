// The Xenos kinds as XenosClient addresses them (group, version, plural), for code that talks to a xenosd
// through the client without discovery: the local-cluster launcher, benches and end-to-end tests.

import { GROUP, VERSION } from '../api/types.ts';
import type { ResourceType } from './client.ts';

const GV = { group: GROUP, version: VERSION };

export const TEMPLATES: ResourceType = {
  ...GV,
  plural: 'servicetemplates',
  kind: 'ServiceTemplate',
  namespaced: true,
};

export const INSTANCES: ResourceType = {
  ...GV,
  plural: 'serviceinstances',
  kind: 'ServiceInstance',
  namespaced: true,
};

export const HOSTS: ResourceType = { ...GV, plural: 'hosts', kind: 'Host', namespaced: false };
