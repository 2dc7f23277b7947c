// The worker thread body-decoder.ts hands large request bodies to: it runs the same decodeBody the API
// runs inline and answers with the value as JSON text (which the API thread parses back natively, far
// faster than a structured clone of a large tree), or with the ApiError's parts.

import { parentPort } from 'node:worker_threads';
import { type BodyFormat, decodeBody } from './request-body.ts';
import { ApiError } from './status-errors.ts';

export interface DecodeRequest {
  id: number;
  body: Uint8Array;
  format: BodyFormat;
}

export type DecodeReply =
  | { ready: true }
  | { id: number; json: string }
  | { id: number; error: { code: number; reason: string; message: string; details?: ApiError['details'] } };

parentPort?.on('message', (req: DecodeRequest) => {
  let reply: DecodeReply;
  try {
    const value = decodeBody(
      Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength),
      req.format,
    );
    reply = { id: req.id, json: JSON.stringify(value) };
  } catch (err) {
    const e =
      err instanceof ApiError
        ? err
        : new ApiError(500, 'InternalError', `decoding failed: ${(err as Error).message}`);
    reply = { id: req.id, error: { code: e.code, reason: e.reason, message: e.message, details: e.details } };
  }
  parentPort?.postMessage(reply);
});
// Loaded (js-yaml and all): the decoder starts timing requests from here.
parentPort?.postMessage({ ready: true } satisfies DecodeReply);
