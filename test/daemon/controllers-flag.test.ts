// `xenosd --controllers`, as kube-controller-manager's flag: '*' (the default) runs every optional
// controller, NAME runs that one, -NAME leaves one out; an unknown name is a usage error that names the
// known ones.

import { expect, it } from 'vitest';
import { parseOptions } from '../../src/daemon/options.ts';

const disabled = (...args: string[]) =>
  parseOptions(['--data-dir', '/tmp/x', ...args], () => {})?.disabledControllers;

it('runs every optional controller unless told otherwise', () => {
  expect(disabled()).toEqual([]);
  expect(disabled('--controllers', '*')).toEqual([]);
  expect(disabled('--controllers', 'servicedeployment')).toEqual([]);
  expect(disabled('--controllers', '*,-servicedeployment')).toEqual(['servicedeployment']);
  expect(disabled('--controllers=-servicedeployment')).toEqual(['servicedeployment']);
  expect(() => disabled('--controllers', 'replicaset')).toThrow(
    /--controllers: unknown controller "replicaset" \(known: servicedeployment\)/,
  );
});
