// What `xenosctl drain HOST` must print when every instance moved: the cordon on stdout first, one
// `serviceinstance/NAME moved to TARGET` per instance, `host/HOST drained` last, and on stderr each
// migration's end (`default/NAME  Succeeded → TARGET (Live, ...)`).

import { expect } from 'vitest';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function expectDrained(
  r: CliResult,
  want: {
    host: string;
    cordoned: 'cordoned' | 'already cordoned';
    moved: string[];
    to: string;
    mode: 'Live' | 'Cold';
  },
): void {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  const out = r.stdout.split('\n').filter(Boolean);
  expect(out[0]).toBe(`host/${want.host} ${want.cordoned}`);
  expect(out.slice(1, -1).sort()).toEqual(
    [...want.moved].sort().map((n) => `serviceinstance/${n} moved to ${want.to}`),
  );
  expect(out.at(-1)).toBe(`host/${want.host} drained`);
  for (const name of want.moved) {
    expect(r.stderr).toMatch(new RegExp(`^default/${name}\\s+Succeeded → ${want.to} \\(${want.mode}, `, 'm'));
  }
}
