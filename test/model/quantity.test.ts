// Quantities: the parsers accept exactly what the CRD patterns accept, and convert like Kubernetes.

import { describe, expect, it } from 'vitest';
import { loadKinds } from '../../src/api/kinds.ts';
import {
  CPU_QUANTITY,
  formatMemoryQuantity,
  MEMORY_QUANTITY,
  parseCpuQuantity,
  parseMemoryQuantity,
} from '../../src/model/quantity.ts';

describe('quantities', () => {
  it('use the same grammar as the CRDs', () => {
    const registry = loadKinds();
    const template = registry.byKind('ServiceTemplate')!.schema.properties.spec.properties.domain.properties;
    const host = registry.byKind('Host')!.schema.properties.status.properties.capacity.properties;
    const samples = [
      '1',
      '512Mi',
      '1.5Gi',
      '2G',
      '10k',
      '0',
      'Mi',
      '1.Mi',
      '1mi',
      '-1',
      '1e3',
      '1Pi',
      '500m',
      '0.5',
      '1.5m',
    ];
    for (const s of samples) {
      expect(MEMORY_QUANTITY.test(s), s).toBe(new RegExp(template.memory.pattern).test(s));
      expect(MEMORY_QUANTITY.test(s), s).toBe(new RegExp(host.memory.pattern).test(s));
      expect(CPU_QUANTITY.test(s), s).toBe(new RegExp(template.cpuLimit.pattern).test(s));
      expect(CPU_QUANTITY.test(s), s).toBe(new RegExp(host.cpu.pattern).test(s));
    }
  });

  it('parse memory in bytes', () => {
    expect(parseMemoryQuantity('512Mi')).toBe(512 * 2 ** 20);
    expect(parseMemoryQuantity('1.5Gi')).toBe(1.5 * 2 ** 30);
    expect(parseMemoryQuantity('2G')).toBe(2e9);
    expect(parseMemoryQuantity('100')).toBe(100);
    expect(parseMemoryQuantity('0.5k')).toBe(500);
    expect(parseMemoryQuantity('lots')).toBeUndefined();
  });

  it('parse CPU in cores', () => {
    expect(parseCpuQuantity('500m')).toBe(0.5);
    expect(parseCpuQuantity('2')).toBe(2);
    expect(parseCpuQuantity('1.5')).toBe(1.5);
    expect(parseCpuQuantity('1.5m')).toBeUndefined();
  });

  it('format bytes with the largest exact binary unit', () => {
    expect(formatMemoryQuantity(512 * 2 ** 20)).toBe('512Mi');
    expect(formatMemoryQuantity(3 * 2 ** 30)).toBe('3Gi');
    expect(formatMemoryQuantity(1536 * 2 ** 20)).toBe('1536Mi');
    expect(formatMemoryQuantity(1000)).toBe('1000');
  });
});
