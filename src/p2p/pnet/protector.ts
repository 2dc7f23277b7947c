// Private-network connection protector: the @libp2p/pnet protocol (exchange 24-byte random nonces, then XOR
// every byte each way with XSalsa20(nonce, psk)), wire-compatible with `preSharedKey` from @libp2p/pnet, but
// using XSalsa20Stream (./xsalsa20-stream.ts), which does not crash under bulk load, and encrypting the
// outgoing write queue buffer by buffer instead of concatenating it into one.
//
// A peer without the key (or with another key) fails the next handshake (Noise) on garbage and is dropped.

import type {
  AbortOptions,
  ConnectionProtector,
  MessageStream,
  MultiaddrConnection,
} from '@libp2p/interface';
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils';
import { parseClusterKey } from './cluster-key.ts';
import { NONCE_LENGTH, XSalsa20Stream } from './xsalsa20-stream.ts';

export interface ClusterProtectorInit {
  /** The swarm.key v1 file content (as for @libp2p/pnet's preSharedKey). */
  psk: Uint8Array;
  /** Nonce exchange timeout in ms when the caller gives no signal (default 5000). */
  timeout?: number;
}

const DEFAULT_TIMEOUT = 5000;

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
  readonly [Symbol.toStringTag] = '@xenos/pnet';

  constructor(init: ClusterProtectorInit) {
    this.#psk = parseClusterKey(init.psk).psk;
    this.#timeout = init.timeout ?? DEFAULT_TIMEOUT;
  }

  async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const opts = options ?? { signal: AbortSignal.timeout(this.#timeout) };
    const localNonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
    const bytes = byteStream(connection as MultiaddrConnection);
    const [remote] = await Promise.all([
      bytes.read({ bytes: NONCE_LENGTH, ...opts }),
      bytes.write(localNonce, opts),
    ]);
    return new EncryptedConnection(bytes.unwrap(), localNonce, remote.subarray(), this.#psk);
  }
}

/** libp2p `connectionProtector` factory, a drop-in for `preSharedKey({ psk })` from @libp2p/pnet. */
export function clusterProtector(init: ClusterProtectorInit): () => ConnectionProtector {
  return () => new ClusterProtector(init);
}
