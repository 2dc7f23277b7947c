// `xenosctl apply` of ServiceTemplates whose image is a path on this machine: upload the image to the host
// (image-push.ts) and rewrite spec.image to the digest the host answered (plus the format, guessed from
// the path when not given), so the stored template is the same object on every host and none of them
// reads this machine's path. A path that does not exist here is left alone, with a warning: it then
// names a path on the hosts themselves (an older way the CRD still accepts).

import { existsSync, statSync } from 'node:fs';
import { SERVICE_TEMPLATE } from '../model/kinds.ts';
import { guessFormat, type ImageSource } from '../model/service-template.ts';
import type { CommandContext } from './context.ts';
import { CliError } from './errors.ts';
import { pushImage } from './image-push.ts';
import type { ManifestObject } from './manifests.ts';
import { progressBar } from './pull-progress.ts';

/** Uploads the local images of the ServiceTemplates among `objects` and rewrites their spec.image. */
export async function uploadLocalImages(ctx: CommandContext, objects: ManifestObject[]): Promise<void> {
  for (const m of objects) {
    if (m.kind.kind !== SERVICE_TEMPLATE.kind) continue;
    const spec = (m.object as { spec?: { image?: ImageSource } }).spec;
    const path = spec?.image?.path;
    if (!spec?.image || typeof path !== 'string') continue;
    const where = `${m.file}:${m.line}: servicetemplate/${m.name}`;
    if (!existsSync(path)) {
      ctx.err(
        `warning: ${where}: spec.image.path ${path} is not on this machine; it is sent as a path every host must have\n`,
      );
      continue;
    }
    // A bar on a terminal only: apply's output elsewhere (scripts, CI logs) stays what kubectl's is.
    const bar = ctx.io.stderrTTY ? progressBar(ctx.io, `uploading ${path}`) : undefined;
    let pushed: Awaited<ReturnType<typeof pushImage>>;
    try {
      pushed = await pushImage(ctx.client(), path, {
        signal: ctx.signal,
        onProgress: (bytes, size) => bar?.update({ bytes, size }),
      });
    } catch (err) {
      bar?.done();
      if (err instanceof CliError || ctx.signal.aborted) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new CliError(`${where}: uploading spec.image.path ${path}: ${message}`, { cause: err });
    }
    bar?.done(pushed.uploaded ? undefined : `${path}: the host already holds ${pushed.digest}`);
    if (spec.image.digest && spec.image.digest !== pushed.digest)
      throw new CliError(
        `${where}: spec.image.digest is ${spec.image.digest} but ${path} has digest ${pushed.digest}; fix the digest or the image`,
      );
    spec.image = {
      digest: pushed.digest,
      format: spec.image.format ?? guessFormat(path, statSync(path).isDirectory()),
    };
  }
}
