// The load average as benches print it beside their figures: the 1, 5 and 15 minute averages.

import { loadavg } from 'node:os';

export function loadText(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}
