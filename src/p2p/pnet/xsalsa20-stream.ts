// XSalsa20 stream cipher for the private-network protector, built on the WASM core of the `xsalsa20`
// package that @libp2p/pnet uses, but safe under bulk load.
//
// Why not the package's own wrapper: every cipher in the process shares one WASM memory, each keeps a
// Uint8Array view of it that goes stale (detached, length 0) when another cipher grows the memory, and a stale
// view makes the next update grow the memory again by the whole input size. pnet also hands it a whole write
// queue in one call. Under a few hundred MB of traffic the 1000-page (62.5 MiB) limit is hit and the process
// dies with `RangeError: WebAssembly.Memory.grow(): Maximum memory size exceeded`.
//
// Here: one WASM instance per process, no state kept in WASM memory between calls (each cipher keeps its
// 64-byte state in JS and copies it in and out around each call), a fresh memory view for every call, and input
// fed in slices of at most CHUNK bytes, so the memory never grows past CHUNK + 272 bytes.

import { createRequire } from 'node:module';

interface XSalsa20Wasm {
  memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  /** xsalsa20_xor(statePtr, outPtr, inPtr, len, noncePtr, keyPtr): counter (8 bytes) at statePtr. */
  xsalsa20_xor(state: number, out: number, input: number, len: number, nonce: number, key: number): void;
}

const require = createRequire(import.meta.url);

/** Largest slice handed to the WASM core in one call. */
export const CHUNK = 1024 * 1024;
export const NONCE_LENGTH = 24;
export const KEY_LENGTH = 32;

// The core uses bytes [0, 144) as scratch (the package's own wrapper starts its allocations at 144).
const STATE = 144; // counter (8) | nonce (24) | key (32)
const DATA = STATE + 64;
const PAGE = 65536;

let wasm: XSalsa20Wasm | undefined;

function core(): XSalsa20Wasm {
  if (wasm == null) {
    const instantiate = require('xsalsa20/xsalsa20.js') as (imports?: object) => XSalsa20Wasm;
    wasm = instantiate();
  }
  return wasm;
}

/** One direction of an XSalsa20 stream: `update` XORs the next bytes of the key stream into its input. */
export class XSalsa20Stream {
  readonly #state = new Uint8Array(64);
  #overflow = 0;

  constructor(nonce: Uint8Array, key: Uint8Array) {
    if (nonce.byteLength !== NONCE_LENGTH)
      throw new RangeError(`xsalsa20: nonce must be ${NONCE_LENGTH} bytes`);
    if (key.byteLength !== KEY_LENGTH) throw new RangeError(`xsalsa20: key must be ${KEY_LENGTH} bytes`);
    this.#state.set(nonce, 8);
    this.#state.set(key, 32);
  }

  /** Returns a new buffer with `input` XORed with the key stream; the stream position advances. */
  update(input: Uint8Array): Uint8Array {
    const output = new Uint8Array(input.byteLength);
    for (let offset = 0; offset < input.byteLength; offset += CHUNK) {
      this.#xorSlice(input.subarray(offset, offset + CHUNK), output, offset);
    }
    return output;
  }

  #xorSlice(slice: Uint8Array, output: Uint8Array, at: number): void {
    const w = core();
    const len = this.#overflow + slice.byteLength;
    const needed = DATA + len;
    const have = w.memory.buffer.byteLength;
    if (needed > have) w.memory.grow(Math.ceil((needed - have) / PAGE));
    const mem = new Uint8Array(w.memory.buffer);
    mem.set(this.#state, STATE);
    mem.set(slice, DATA + this.#overflow);
    w.xsalsa20_xor(STATE, DATA, DATA, len, STATE + 8, STATE + 32);
    output.set(mem.subarray(DATA + this.#overflow, DATA + len), at);
    this.#state.set(mem.subarray(STATE, STATE + 8), 0);
    mem.fill(0, STATE, DATA);
    this.#overflow = len & 63;
  }
}
