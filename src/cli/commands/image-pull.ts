// `xenosctl image pull DIGEST --host H [--timeout 30m]`: asks host H to fetch an image ahead of need and
// shows the pull until H holds it. H is found through its Host object (status.addresses.api) and asked
// directly: `POST /apis/images.xenos.io/v1/pulls {digest}` starts (or joins) the pull,
// `GET /apis/images.xenos.io/v1/pulls/<digest>` says how far it is (once a second), until `done` or an
// `error`. Progress: a bar on a terminal, plain lines otherwise (pull-progress.ts). Each host has its own
// admin token, so the token given must be H's: simplest is to talk to H itself (XENOS_SERVER); a refusal
// says so.

import type { Command } from 'commander';
import type { XenosClient } from '../../client/client.ts';
import { ApiStatusError, isNotFound } from '../../client/errors.ts';
import { PULLS_PATH } from '../../model/images-api.ts';
import { HOST } from '../../model/kinds.ts';
import type { ImagePullStatus } from '../../model/service-template.ts';
import { parseDuration } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { progressBar, pullSample, shortDigest } from '../pull-progress.ts';

const PULLS = PULLS_PATH;
const POLL_MS = 1000;

/** What a host's pulls API answers. */
export interface PullState extends Partial<ImagePullStatus> {
  digest: string;
  done?: boolean;
  error?: { reason: string; message: string };
}

/** The `image` command group, made by whichever image command registers first. */
export function imageCommand(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'image') ??
    program.command('image').description('Images of templates: push, list, pull')
  );
}

export function registerImagePull(program: Command, ctx: CommandContext): void {
  imageCommand(program)
    .command('pull')
    .description('Have a host fetch an image (from the peers that hold it) before an instance needs it')
    .argument('<digest>', 'the image digest, sha256:<64 hex>')
    .requiredOption('--host <name>', 'the host that should hold the image')
    .option('--timeout <duration>', 'give up waiting after this long (the pull goes on)', '30m')
    .addHelpText(
      'after',
      `
Examples:
  xenosctl image pull sha256:3f9c...e1 --host node-2`,
    )
    .action(async (digest: string, opts: { host: string; timeout: string }) => {
      if (!/^sha256:[a-f0-9]{64}$/.test(digest)) {
        throw new UsageError(
          `"${digest}" is not an image digest: expected sha256: and 64 lower-case hex digits`,
        );
      }
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      const api = await hostApi(ctx, opts.host);
      const own = sameServer(api, ctx.settings().server);
      const client = own ? ctx.client() : ctx.clientFor(api);
      try {
        await follow(ctx, client, digest, opts.host, timeoutMs, opts.timeout);
      } catch (err) {
        if (err instanceof ApiStatusError && err.code === 401 && !own) {
          throw new CliError(
            `host ${opts.host} (${api}) refused the token: each host has its own admin token; run this against ` +
              `${opts.host} itself (XENOS_SERVER=${api} with the token in its data dir's admin.token)`,
          );
        }
        throw err;
      } finally {
        if (!own) client.close();
      }
    });
}

/** Whether two API URLs name the same server (scheme, host and port). */
function sameServer(a: string, b: string): boolean {
  try {
    const [x, y] = [new URL(a), new URL(b)];
    return x.protocol === y.protocol && x.host === y.host;
  } catch {
    return false;
  }
}

/** Host `name`'s API URL, from its Host object. */
async function hostApi(ctx: CommandContext, name: string): Promise<string> {
  let api: string | undefined;
  try {
    api = (await ctx.client().get(HOST, name, { signal: ctx.signal })).status?.addresses?.api;
  } catch (err) {
    if (isNotFound(err))
      throw new CliError(`no host "${name}" in the cluster (xenosctl get hosts lists them)`);
    throw err;
  }
  if (!api) throw new CliError(`host "${name}" publishes no API address (status.addresses.api); is it up?`);
  return api;
}

async function follow(
  ctx: CommandContext,
  client: XenosClient,
  digest: string,
  host: string,
  timeoutMs: number,
  timeoutText: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const bar = progressBar(ctx.io, `pulling ${shortDigest(digest)} on ${host}`);
  let state = await client.request<PullState>('POST', PULLS, { body: { digest }, signal: ctx.signal });
  try {
    for (;;) {
      if (state.size !== undefined && state.bytes !== undefined)
        bar.update(pullSample(state as ImagePullStatus));
      if (state.error) {
        throw new CliError(
          `host ${host} could not pull ${digest}: ${state.error.message} (${state.error.reason})`,
        );
      }
      if (state.done) break;
      if (Date.now() >= deadline) {
        throw new CliError(
          `${shortDigest(digest)} is not on host ${host} after ${timeoutText} (${state.percent ?? 0} %); the pull goes on`,
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
      ctx.signal.throwIfAborted();
      state = await client.request<PullState>('GET', `${PULLS}/${digest}`, { signal: ctx.signal });
    }
  } finally {
    bar.done();
  }
  ctx.out(`${digest} is on host ${host}${state.size ? ` (${state.size} bytes)` : ''}\n`);
}
