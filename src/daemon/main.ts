// The xenosd entry point (bin/xenosd.js): the daemon as run-xenosd.ts runs it, with no test hooks.

import { fail, runXenosd } from './run-xenosd.ts';

runXenosd(process.argv.slice(2)).catch((err) => fail((err as Error).message, 1));
