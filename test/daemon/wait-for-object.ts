// Test helpers: wait, through a watch on a real xenosd's API, until one object satisfies a condition
// (a controller bound it, wrote its status, added its finalizer) or is gone. Event-driven, no polling
// sleeps; fails after a deadline with the last version seen, so a wrong expectation says what was there.

import type { XenosdProcess } from './xenosd-process.ts';

type Obj = Record<string, any>;
type Api = Pick<XenosdProcess, 'api'>;

/** Follow the watch events of `collection`/`name` until `done` says so; false if the deadline came first. */
async function watchUntil(
  xd: Api,
  collection: string,
  name: string,
  query: string,
  timeoutMs: number,
  done: (ev: { type: string; object: Obj }) => boolean,
): Promise<boolean> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const sel = encodeURIComponent(`metadata.name=${name}`);
    const res = await xd.api(
      `${collection}?watch=1&fieldSelector=${sel}&timeoutSeconds=${Math.ceil(timeoutMs / 1000)}${query}`,
      { signal: ctrl.signal },
    );
    if (res.status !== 200) throw new Error(`watch ${collection}: HTTP ${res.status}: ${await res.text()}`);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) return false;
      buf += value;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const ev = JSON.parse(buf.slice(0, nl)) as { type: string; object: Obj };
        buf = buf.slice(nl + 1);
        if (done(ev)) return true;
      }
    }
  } catch (err) {
    if (ctrl.signal.aborted) return false;
    throw err;
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
}

/**
 * Resolves with the first version of `collection`/`name` for which `condition` holds (the current one
 * included). `collection` is the list path, e.g. `/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances`.
 */
export async function waitForObject(
  xd: Api,
  collection: string,
  name: string,
  condition: (obj: Obj) => boolean,
  opts: { what?: string; timeoutMs?: number } = {},
): Promise<Obj> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  let last: Obj | undefined;
  let found: Obj | undefined;
  await watchUntil(xd, collection, name, '', timeoutMs, (ev) => {
    if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED') return false;
    last = ev.object;
    if (condition(ev.object)) found = ev.object;
    return found !== undefined;
  });
  if (found) return found;
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'} on ${collection}/${name}; ` +
      `last seen: ${JSON.stringify(last)}`,
  );
}

/** Resolves once `collection`/`name` no longer exists (finalizers done). */
export async function waitForDeletion(
  xd: Api,
  collection: string,
  name: string,
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const res = await xd.api(`${collection}/${name}`);
  if (res.status === 404) return;
  const current = (await res.json()) as Obj;
  const rv = current.metadata.resourceVersion as string;
  const gone = await watchUntil(xd, collection, name, `&resourceVersion=${rv}`, timeoutMs, (ev) => {
    return ev.type === 'DELETED';
  });
  if (!gone) {
    const now = await xd.api(`${collection}/${name}`);
    if (now.status === 404) return;
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${collection}/${name} to be deleted; it is still there: ` +
        (await now.text()),
    );
  }
}
