// Private-network connection protector: each side sends a 24-byte random nonce, then a key confirmation,
// then every byte each way is XORed with a ChaCha20 key stream whose key and nonce are derived from the
// cluster key and both nonces (HKDF-SHA256). Noise runs inside it; this layer keeps out whoever lacks the
// cluster key, and hides even the Noise handshake (the hosts' identities) from anyone watching the wire.
//
// The key confirmation: after the nonces each side sends a 16-byte tag, HMAC-SHA256(psk, domain | its nonce
// | the other's nonce), and checks the other's. Without it a peer with no key (or another key) was only found
// out when the next handshake read garbage — which could wait for the 10 s upgrade timeout, holding one of the
// host's pending-connection slots (libp2p accepts 100 at a time) all along. Now a connection that sends
// garbage is dropped as soon as 40 bytes are in, and one that sends nothing when the handshake timeout (2 s
// by default) ends. The tags bind both fresh nonces, so one recorded from another connection does not pass.
// Refusals are counted by reason.
//
// Protocol 2. Protocol 1 was @libp2p/pnet's cipher (XSalsa20 keyed by the psk itself, one nonce per
// direction) with the same confirmation: its only JavaScript implementation is a WASM core that ran at
// 154 MiB/s here. Node's own ChaCha20 (OpenSSL) runs at 951 MiB/s on this machine and 274–590 MiB/s with
// its CPU extensions masked (OPENSSL_ia32cap); AES-256-CTR would be faster only with AES-NI (1,794
// MiB/s here) and slower than XSalsa20 without it (76 MiB/s with AES-NI and SSSE3 masked, as in the
// emulated CPU the Xen tests' dom0 runs on), so ChaCha20: never slower than protocol 1, anywhere. Every
// byte between hosts goes through it twice. Protocol 1's tag is still recognised, to refuse such a host by
// name (`version`) rather than as a wrong key; it is never accepted.

import { type Cipher, createCipheriv, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type {
  AbortOptions,
  ConnectionProtector,
  MessageStream,
  MultiaddrConnection,
} from '@libp2p/interface';
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils';
import type { Log } from '../../log/logger.ts';
import { RefusalCounter } from '../../metrics/refusals.ts';
import { HandshakeRefusedError } from '../errors.ts';
import { parseClusterKey } from './cluster-key.ts';

export interface ClusterProtectorInit {
  /** The swarm.key v1 file content (as for @libp2p/pnet's preSharedKey). */
  psk: Uint8Array;
  /** The nonce exchange and key confirmation must be done within this (ms). Default 2000. */
  timeout?: number;
  /** Counts connections refused here, by reason. */
  refusals?: RefusalCounter<HandshakeRefusalReason>;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 2000;
export const NONCE_LENGTH = 24;
export const TAG_LENGTH = 16;
const TAG_DOMAIN = Buffer.from('xenos/pnet-confirm/2\n');
/** Protocol 1's confirmation domain: a tag made with it names an older host, and is refused. */
const PROTOCOL_1_TAG_DOMAIN = Buffer.from('xenos/pnet-confirm/1\n');
const STREAM_INFO = 'xenos/pnet/2 chacha20';
export const HANDSHAKE_REFUSAL_REASONS = ['bad_key', 'version', 'timeout'] as const;
export type HandshakeRefusalReason = (typeof HANDSHAKE_REFUSAL_REASONS)[number];

/** A counter of the connections the protector refused, by reason. */
export function handshakeRefusalCounter(log?: Log): RefusalCounter<HandshakeRefusalReason> {
  return new RefusalCounter({
    name: 'xenos_p2p_handshakes_refused_total',
    help: 'Connections refused at the cluster-key handshake: no or another key (bad_key), an older Xenos (version), or too slow (timeout).',
    reasons: HANDSHAKE_REFUSAL_REASONS,
    log,
  });
}

/** The key confirmation the side with nonce `from` sends to the side with nonce `to`. */
function confirmation(psk: Uint8Array, from: Uint8Array, to: Uint8Array, domain = TAG_DOMAIN): Uint8Array {
  return createHmac('sha256', psk).update(domain).update(from).update(to).digest().subarray(0, TAG_LENGTH);
}

/** The key stream of the direction from the side with nonce `from` to the side with nonce `to`: its own
 *  key and nonce, so no two directions or connections ever share a stream. ChaCha20 as OpenSSL has it: a
 *  16-byte IV of a 32-bit block counter (from 0) and a 96-bit nonce; past 2^32 blocks (256 GiB one way)
 *  OpenSSL carries into the nonce's first word, so no block is ever used twice either. (XOR both ways: both
 *  ends use a Cipher.) */
export function keyStream(psk: Uint8Array, from: Uint8Array, to: Uint8Array): Cipher {
  const okm = new Uint8Array(hkdfSync('sha256', psk, Buffer.concat([from, to]), STREAM_INFO, 44));
  const iv = new Uint8Array(16);
  iv.set(okm.subarray(32), 4);
  return createCipheriv('chacha20', okm.subarray(0, 32), iv);
}

/** The same bytes as a plain Uint8Array (no copy): what the layers above were always handed. A Buffer
 *  would differ in ways they may not expect (`slice` is a view, `toJSON`, equality in tests). */
function plain(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The write queue type of @libp2p/utils (its own copy of uint8arraylist). */
type WriteQueue = Parameters<AbstractMultiaddrConnection['sendData']>[0];

class EncryptedConnection extends AbstractMultiaddrConnection {
  readonly #inner: MultiaddrConnection;
  readonly #inbound: Cipher;
  readonly #outbound: Cipher;

  constructor(inner: MultiaddrConnection, localNonce: Uint8Array, remoteNonce: Uint8Array, psk: Uint8Array) {
    super({
      remoteAddr: inner.remoteAddr,
      direction: inner.direction,
      log: inner.log.newScope('xenos-pnet'),
    });
    this.#inner = inner;
    this.#inbound = keyStream(psk, remoteNonce, localNonce);
    this.#outbound = keyStream(psk, localNonce, remoteNonce);
    inner.addEventListener('message', (evt) => {
      const data = evt.data;
      if (data instanceof Uint8Array) this.onData(plain(this.#inbound.update(data)));
      else for (const buf of data) this.onData(plain(this.#inbound.update(buf)));
    });
    inner.addEventListener('drain', () => this.onMuxerDrain());
    inner.addEventListener('close', (evt) => {
      if (evt.error == null) this.onTransportClosed();
      else if (evt.local) this.abort(evt.error);
      else this.onRemoteReset();
    });
  }

  override async sendClose(options?: AbortOptions): Promise<void> {
    await this.#inner.close(options);
  }

  override sendData(data: WriteQueue): { sentBytes: number; canSendMore: boolean } {
    let canSendMore = true;
    for (const buf of data) canSendMore = this.#inner.send(this.#outbound.update(buf));
    return { sentBytes: data.byteLength, canSendMore };
  }

  override sendReset(err: Error): void {
    this.#inner.abort(err);
  }

  override sendPause(): void {
    this.#inner.pause();
  }

  override sendResume(): void {
    this.#inner.resume();
  }
}

export class ClusterProtector implements ConnectionProtector {
  readonly #psk: Uint8Array;
  readonly #timeout: number;
  readonly #refusals: RefusalCounter<HandshakeRefusalReason> | undefined;
  readonly [Symbol.toStringTag] = '@xenos/pnet';

  constructor(init: ClusterProtectorInit) {
    this.#psk = parseClusterKey(init.psk).psk;
    this.#timeout = init.timeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.#refusals = init.refusals;
  }

  async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const timeout = AbortSignal.timeout(this.#timeout);
    const signal = options?.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const remoteAddr = String((connection as Partial<MultiaddrConnection>).remoteAddr ?? 'a peer');
    const localNonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
    const bytes = byteStream(connection as MultiaddrConnection);
    try {
      const [remote] = await Promise.all([
        bytes.read({ bytes: NONCE_LENGTH, signal }),
        bytes.write(localNonce, { signal }),
      ]);
      const remoteNonce = remote.subarray();
      const [tag] = await Promise.all([
        bytes.read({ bytes: TAG_LENGTH, signal }),
        bytes.write(confirmation(this.#psk, localNonce, remoteNonce), { signal }),
      ]);
      const theirs = tag.subarray();
      if (!timingSafeEqual(theirs, confirmation(this.#psk, remoteNonce, localNonce))) {
        const older = confirmation(this.#psk, remoteNonce, localNonce, PROTOCOL_1_TAG_DOMAIN);
        if (timingSafeEqual(theirs, older)) {
          throw new HandshakeRefusedError(
            remoteAddr,
            'version',
            'it holds this cluster key but runs an older Xenos (cluster protocol 1, XSalsa20), which this one no longer speaks',
          );
        }
        throw new HandshakeRefusedError(remoteAddr, 'bad_key', 'it does not hold this cluster key');
      }
      return new EncryptedConnection(bytes.unwrap(), localNonce, remoteNonce, this.#psk);
    } catch (err) {
      let refusal = err;
      if (timeout.aborted && !options?.signal?.aborted) {
        refusal = new HandshakeRefusedError(
          remoteAddr,
          'timeout',
          `no key confirmation within ${this.#timeout} ms`,
        );
      }
      if (refusal instanceof HandshakeRefusedError) this.#refusals?.count(refusal.reason, refusal.message);
      throw refusal;
    }
  }
}

/** libp2p `connectionProtector` factory, a drop-in for `preSharedKey({ psk })` from @libp2p/pnet. */
export function clusterProtector(init: ClusterProtectorInit): () => ConnectionProtector {
  return () => new ClusterProtector(init);
}
