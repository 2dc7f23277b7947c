// Decoding request bodies without stalling the API: bodies up to `inlineBytes` are decoded on the API's
// thread (most requests, where a thread hop would cost more than it saves); larger ones in a worker
// thread (decode-worker.ts), one at a time, so that a 3 MiB YAML body — about a second of js-yaml —
// does not hold up /healthz, watches and every other request meanwhile. A decode that takes longer than
// `timeoutMs` is stopped (the worker is replaced) and answered 400: whatever a body holds, its decoding
// is bounded in time.

import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DecodeReply, DecodeRequest } from './decode-worker.ts';
import { type BodyFormat, decodeBody } from './request-body.ts';
import { ApiError, errors } from './status-errors.ts';

export interface BodyDecoderInit {
  /** Larger bodies go to the worker. Default 64 KiB. */
  inlineBytes?: number;
  /** A decode taking longer is stopped. Default 15 s. */
  timeoutMs?: number;
}

// Beside this module, with its extension: decode-worker.ts in the sources, decode-worker.js in the build.
const WORKER_URL = new URL(`./decode-worker${extname(import.meta.url)}`, import.meta.url);

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class BodyDecoder {
  readonly #inlineBytes: number;
  readonly #timeoutMs: number;
  #worker?: { thread: Worker; ready: Promise<void> };
  readonly #pending = new Map<number, Pending>();
  /** Requests wait here while the worker decodes another. */
  #queue: Promise<unknown> = Promise.resolve();
  #nextId = 0;

  constructor(init: BodyDecoderInit = {}) {
    this.#inlineBytes = init.inlineBytes ?? 64 * 1024;
    this.#timeoutMs = init.timeoutMs ?? 15_000;
  }

  /** decodeBody, off the API's thread when the body is large. Throws ApiError as decodeBody does. */
  decode(body: Buffer, format: BodyFormat): Promise<unknown> {
    if (body.length <= this.#inlineBytes) return Promise.resolve().then(() => decodeBody(body, format));
    const run = this.#queue.then(() => this.#offThread(body, format));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Ends the worker (the API server is stopping); pending decodes fail with 503. */
  stop(): void {
    this.#fail(errors.serviceUnavailable('xenosd is stopping'));
    void this.#worker?.thread.terminate();
    this.#worker = undefined;
  }

  async #offThread(body: Buffer, format: BodyFormat): Promise<unknown> {
    const { thread: worker, ready } = this.#ensureWorker();
    // Starting a worker (loading js-yaml) is not the body's time.
    await ready;
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // A decode that runs away: stop the worker (the next request gets a fresh one).
        this.#fail(
          errors.badRequest(
            `the request body took longer than ${this.#timeoutMs / 1000} s to decode and was refused; send a smaller or simpler body`,
          ),
        );
        void worker.terminate();
        if (this.#worker?.thread === worker) this.#worker = undefined;
      }, this.#timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      const request: DecodeRequest = { id, body: new Uint8Array(body), format };
      worker.postMessage(request);
    });
  }

  #ensureWorker(): { thread: Worker; ready: Promise<void> } {
    if (this.#worker) return this.#worker;
    const worker = new Worker(WORKER_URL, { execArgv: ['--disable-warning=ExperimentalWarning'] });
    worker.unref();
    let markReady = () => {};
    let markFailed = (_err: Error) => {};
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    worker.on('message', (reply: DecodeReply) => {
      if ('ready' in reply) {
        markReady();
        return;
      }
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#pending.delete(reply.id);
      clearTimeout(p.timer);
      if ('json' in reply) p.resolve(JSON.parse(reply.json));
      else
        p.reject(
          new ApiError(reply.error.code, reply.error.reason, reply.error.message, reply.error.details),
        );
    });
    const lost = (why: string) => {
      if (this.#worker?.thread === worker) this.#worker = undefined;
      markFailed(errors.internal(`the body decoder could not start (${why})`));
      this.#fail(errors.internal(`the body decoder stopped (${why})`));
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => {
      if (this.#pending.size > 0) lost(`exit ${code}`);
      else if (this.#worker?.thread === worker) this.#worker = undefined;
      markFailed(errors.serviceUnavailable('the body decoder stopped'));
    });
    // A rejection nobody awaits (the worker ended idle) is not an error.
    ready.catch(() => {});
    this.#worker = { thread: worker, ready };
    return this.#worker;
  }

  #fail(err: ApiError): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.#pending.delete(id);
    }
  }
}
