// Where xenosctl finds its server and token: flag, environment, config file, the local data dir.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readConfigFile, resolveSettings, writeConfigFile } from '../../src/cli/config.ts';
import { CliError } from '../../src/cli/errors.ts';
import { runCli } from '../../src/cli/main.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenosctl-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const noFile = () => ({ XENOS_CONFIG: join(dir, 'absent.yaml') });

describe('resolveSettings', () => {
  it('falls back to http://127.0.0.1:7443, namespace default, no token', () => {
    const s = resolveSettings({}, noFile(), dir);
    expect(s).toMatchObject({ server: 'http://127.0.0.1:7443', namespace: 'default', token: undefined });
    expect(s.sources.server).toBe('default');
  });

  it('reads the local data dir: api.addr and admin.token', () => {
    mkdirSync(join(dir, '.xenos'));
    writeFileSync(join(dir, '.xenos', 'api.addr'), '127.0.0.1:45678\n');
    writeFileSync(join(dir, '.xenos', 'admin.token'), 'tok\n');
    const s = resolveSettings({}, noFile(), dir);
    expect(s).toMatchObject({ server: 'http://127.0.0.1:45678', token: 'tok' });
    expect(s.sources).toEqual({ server: 'data-dir', token: 'data-dir' });
  });

  it('trusts the data dir tls.crt for a local https xenosd, and a CA given by flag or file', () => {
    mkdirSync(join(dir, '.xenos'));
    writeFileSync(join(dir, '.xenos', 'api.addr'), 'https://127.0.0.1:7443\n');
    writeFileSync(join(dir, '.xenos', 'tls.crt'), 'PEM');
    expect(resolveSettings({}, noFile(), dir).caFile).toBe(join(dir, '.xenos', 'tls.crt'));
    expect(resolveSettings({ certificateAuthority: '/ca.pem' }, noFile(), dir).caFile).toBe('/ca.pem');
    const cfg = join(dir, 'c.yaml');
    writeConfigFile(cfg, { server: 'https://h:1', certificateAuthority: 'ca.pem' });
    expect(resolveSettings({}, { XENOS_CONFIG: cfg }, dir).caFile).toBe(join(dir, 'ca.pem'));
  });

  it('prefers flag over env over config file', () => {
    const cfg = join(dir, 'c.yaml');
    writeConfigFile(cfg, { server: 'http://file:1', token: 'file-token', namespace: 'filens' });
    const env = { XENOS_CONFIG: cfg, XENOS_SERVER: 'http://env:2', XENOS_TOKEN: 'env-token' };
    expect(resolveSettings({}, { XENOS_CONFIG: cfg }, dir)).toMatchObject({
      server: 'http://file:1',
      token: 'file-token',
      namespace: 'filens',
    });
    expect(resolveSettings({}, env, dir)).toMatchObject({ server: 'http://env:2', token: 'env-token' });
    expect(resolveSettings({ server: 'http://flag:3', token: 'f', namespace: 'n' }, env, dir)).toMatchObject({
      server: 'http://flag:3',
      token: 'f',
      namespace: 'n',
    });
  });

  it('reads tokenFile relative to the config file', () => {
    writeFileSync(join(dir, 'admin.token'), 'from-file\n');
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, 'tokenFile: admin.token\n');
    expect(resolveSettings({}, { XENOS_CONFIG: cfg }, dir).token).toBe('from-file');
  });

  it('rejects a malformed config file, naming it and the field', () => {
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, 'server: [1\n');
    expect(() => readConfigFile(cfg)).toThrow(CliError);
    writeFileSync(cfg, 'sever: http://x\n');
    expect(() => resolveSettings({}, { XENOS_CONFIG: cfg }, dir)).toThrow(/c\.yaml: unknown field "sever"/);
    expect(() => resolveSettings({ config: join(dir, 'nope.yaml') }, {}, dir)).toThrow(/does not exist/);
  });
});

describe('xenosctl config', () => {
  it('set-server, set-token and view edit and show the file, the token redacted', async () => {
    const cfg = join(dir, 'sub', 'config.yaml');
    const out: string[] = [];
    const io = {
      stdout: (t: string) => out.push(t),
      stderr: (t: string) => out.push(t),
      env: { XENOS_CONFIG: cfg },
      cwd: dir,
      readStdin: async () => '',
    };
    expect(await runCli(['config', 'set-server', '10.0.0.5:7443'], io)).toBe(0);
    expect(await runCli(['config', 'set-token', 's3cret'], io)).toBe(0);
    expect(readConfigFile(cfg)).toEqual({ server: 'http://10.0.0.5:7443', token: 's3cret' });
    out.length = 0;
    expect(await runCli(['config', 'view'], io)).toBe(0);
    const text = out.join('');
    expect(text).toContain('server: http://10.0.0.5:7443 (from config)');
    expect(text).toContain('token: REDACTED (from config)');
    expect(text).not.toContain('s3cret');
  });
});
