// The Xenos kinds as XenosClient addresses them (group, version, plural), for the end-to-end tests that
// set up and read objects of a real xenosd through the CLI's own client.

import { GROUP, VERSION } from '../../src/api/types.ts';
import type { ResourceType } from '../../src/cli/client.ts';

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
