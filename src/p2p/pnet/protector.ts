// Private-network connection protector: the @libp2p/pnet protocol (exchange 24-byte random nonces, then XOR
// every byte each way with XSalsa20(nonce, psk)), using XSalsa20Stream (./xsalsa20-stream.ts), which does not
// crash under bulk load, and encrypting the outgoing write queue buffer by buffer instead of concatenating it.
//
// Plus a key confirmation, which @libp2p/pnet lacks (so the two no longer interoperate): after the nonces
// each side sends a 16-byte tag, HMAC-SHA256(psk, domain | its nonce | the other's nonce), and checks the
// other's. Without it a peer with no key (or another key) was only found out when the next handshake read
// garbage — which could wait for the 10 s upgrade timeout, holding one of the host's pending-connection slots
// (libp2p accepts 100 at a time) all along. Now a connection that sends garbage is dropped as soon as 40
// bytes are in, and one that sends nothing when the handshake timeout (2 s by default) ends. The tags bind
// both fresh nonces, so one recorded from another connection does not pass. Refusals are counted by reason.

import { createHmac, timingSafeEqual } from 'node:crypto';
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
import { NONCE_LENGTH, XSalsa20Stream } from './xsalsa20-stream.ts';

export interface ClusterProtectorInit {
  /** The swarm.key v1 file content (as for @libp2p/pnet's preSharedKey). */
  psk: Uint8Array;
  /** The nonce exchange and key confirmation must be done within this (ms). Default 2000. */
  timeout?: number;
  /** Counts connections refused here, by reason. */
  refusals?: RefusalCounter<HandshakeRefusalReason>;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 2000;
export const TAG_LENGTH = 16;
const TAG_DOMAIN = Buffer.from('xenos/pnet-confirm/1\n');
export const HANDSHAKE_REFUSAL_REASONS = ['bad_key', 'timeout'] as const;
export type HandshakeRefusalReason = (typeof HANDSHAKE_REFUSAL_REASONS)[number];

/** A counter of the connections the protector refused, by reason. */
export function handshakeRefusalCounter(log?: Log): RefusalCounter<HandshakeRefusalReason> {
  return new RefusalCounter({
    name: 'xenos_p2p_handshakes_refused_total',
    help: 'Connections refused at the cluster-key handshake: no or another key (bad_key), or too slow (timeout).',
    reasons: HANDSHAKE_REFUSAL_REASONS,
    log,
  });
}

/** The key confirmation the side with nonce `from` sends to the side with nonce `to`. */
function confirmation(psk: Uint8Array, from: Uint8Array, to: Uint8Array): Uint8Array {
  return createHmac('sha256', psk)
    .update(TAG_DOMAIN)
    .update(from)
    .update(to)
    .digest()
    .subarray(0, TAG_LENGTH);
}

/** The write queue type of @libp2p/utils (its own copy of uint8arraylist). */
type WriteQueue = Parameters<AbstractMultiaddrConnection['sendData']>[0];

class EncryptedConnection extends AbstractMultiaddrConnection {
  readonly #inner: MultiaddrConnection;
  readonly #inbound: XSalsa20Stream;
  readonly #outbound: XSalsa20Stream;

  constructor(inner: MultiaddrConnection, localNonce: Uint8Array, remoteNonce: Uint8Array, psk: Uint8Array) {
    super({
      remoteAddr: inner.remoteAddr,
      direction: inner.direction,
      log: inner.log.newScope('xenos-pnet'),
    });
    this.#inner = inner;
    this.#inbound = new XSalsa20Stream(remoteNonce, psk);
    this.#outbound = new XSalsa20Stream(localNonce, psk);
    inner.addEventListener('message', (evt) => {
      const data = evt.data;
      if (data instanceof Uint8Array) this.onData(this.#inbound.update(data));
      else for (const buf of data) this.onData(this.#inbound.update(buf));
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
      if (!timingSafeEqual(tag.subarray(), confirmation(this.#psk, remoteNonce, localNonce))) {
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
