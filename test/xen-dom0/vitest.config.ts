// The tests that run inside the test Xen host's dom0 (started by test/drivers/xen/dom0-suite.test.ts with
// the repository shared over 9p): they talk to the real hypervisor and toolstack.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/xen-dom0/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    execArgv: ['--disable-warning=ExperimentalWarning'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
