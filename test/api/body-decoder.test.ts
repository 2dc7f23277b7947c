// The off-thread body decoder: a large body decodes in the worker to the same value and the same errors
// (ApiError, code, message) as inline, while the API's thread keeps running other work; a decode past
// its time limit is stopped and refused with 400, and the next one gets a fresh worker.

import { afterEach, describe, expect, it } from 'vitest';
import { BodyDecoder } from '../../src/api/body-decoder.ts';
import { decodeBody } from '../../src/api/request-body.ts';
import { ApiError } from '../../src/api/status-errors.ts';
import { aliasBomb } from './hostile-bodies.ts';

const decoders: BodyDecoder[] = [];
afterEach(() => {
  for (const d of decoders.splice(0)) d.stop();
});

function decoder(init: ConstructorParameters<typeof BodyDecoder>[0] = {}): BodyDecoder {
  const d = new BodyDecoder({ inlineBytes: 1024, ...init });
  decoders.push(d);
  return d;
}

const bigYaml = `metadata: {name: big}\nspec:\n${Array.from({ length: 5000 }, (_, i) => `  key${i}: value ${i}`).join('\n')}\n`;

async function refusal(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('accepted');
}

describe('BodyDecoder', () => {
  it('decodes a large body in the worker to what decodeBody gives inline, the thread free meanwhile', async () => {
    const d = decoder();
    let ranMeanwhile = false;
    setImmediate(() => {
      ranMeanwhile = true;
    });
    const value = await d.decode(Buffer.from(bigYaml), 'yaml');
    expect(ranMeanwhile).toBe(true);
    expect(value).toEqual(decodeBody(Buffer.from(bigYaml), 'yaml'));
    // Small bodies stay on the thread.
    expect(await d.decode(Buffer.from('{"a": 1}'), 'json')).toEqual({ a: 1 });
  });

  it('answers a refused large body with the same ApiError as inline', async () => {
    const d = decoder();
    const bomb = Buffer.from(`${aliasBomb(12)}# ${'x'.repeat(2000)}\n`);
    let inline: ApiError | undefined;
    try {
      decodeBody(bomb, 'yaml');
    } catch (err) {
      inline = err as ApiError;
    }
    const off = await refusal(d.decode(bomb, 'yaml'));
    expect([off.code, off.reason, off.message]).toEqual([inline!.code, inline!.reason, inline!.message]);
    const deep = Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`);
    expect((await refusal(d.decode(deep, 'json'))).message).toContain('nested deeper than 100 levels');
  });

  it('stops a decode past its time limit with 400 and decodes the next body in a fresh worker', async () => {
    // A million-item YAML list takes js-yaml about a second; the limit here is a tenth of that.
    const d = decoder({ timeoutMs: 100 });
    const slow = Buffer.from(`[${'1,'.repeat(1_000_000)}1]`);
    const err = await refusal(d.decode(slow, 'yaml'));
    expect(err.code).toBe(400);
    expect(err.message).toContain('took longer than 0.1 s to decode and was refused');
    expect(await d.decode(Buffer.from('{"a": ['.padEnd(2000, ' ') + '1]}'), 'json')).toEqual({ a: [1] });
  });
});
