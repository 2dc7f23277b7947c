// xenosd and xenosctl run their TypeScript sources directly, which needs Node >= 22.18 (type stripping).
// Machines that ship an older Node get Node 22 from `npm install` (the `node` package in package.json):
// when a command is started with an older node, it runs itself again under that one, passing signals on;
// with no such node it says what to do in one line.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MIN = [22, 18];

/** True when this node can run the sources; otherwise re-runs `script` under the bundled node (or exits). */
export function ensureModernNode(script) {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major > MIN[0] || (major === MIN[0] && minor >= MIN[1])) return true;
  const bundled = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(bundled)) {
    process.stderr.write(
      `error: Xenos needs Node >= ${MIN.join('.')} (this is ${process.version}); run \`npm install\` in ${fileURLToPath(new URL('..', import.meta.url))} to get it, or install Node 22\n`,
    );
    process.exit(2);
  }
  const child = spawn(bundled, ['--disable-warning=ExperimentalWarning', script, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    process.exit(code ?? 1);
  });
  return false;
}
