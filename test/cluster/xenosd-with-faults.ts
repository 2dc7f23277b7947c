// Test entry point: the real xenosd (the same runXenosd that bin/xenosd.js runs) with a partition hook
// wired into its p2p layer, so tests can cut real hosts apart without root, and a gate that can hold a
// migration midway. Usage:
//     node test/cluster/xenosd-with-faults.ts --deny-file FILE [--migration-gate DIR] [xenosd flags...]
// FILE is watched as fault-injection.ts describes, DIR as migration/migration-gate.ts does. The flags
// are this script's, not xenosd's: the production daemon has no way to turn fault injection on.

import { resolve } from 'node:path';
import { fail, runXenosd } from '../../src/daemon/run-xenosd.ts';
import { PartitionInjector } from './fault-injection.ts';
import { migrationGate } from './migration/migration-gate.ts';

const [flag, file, ...after] = process.argv.slice(2);
const gate = after[0] === '--migration-gate' ? after[1] : undefined;
const rest = gate ? after.slice(2) : after;
if (flag !== '--deny-file' || !file) {
  process.stderr.write('usage: xenosd-with-faults.ts --deny-file FILE [xenosd flags...]\n');
  process.exit(2);
}
const hook = new PartitionInjector(
  { log: (msg) => process.stderr.write(`xenosd (faults): [p2p] ${msg}\n`) },
  { file: resolve(file) },
);
runXenosd(rest, {
  p2pConnectionHook: hook,
  ...(gate ? { wrapMigrationTransport: migrationGate(resolve(gate)) } : {}),
}).catch((err) => fail((err as Error).message, 1));
