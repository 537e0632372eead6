/**
 * One WebSocket (`learnhub/api/stream`) carrying many subscriptions.
 *
 * The client sends `{"subscribe": "notifications"}`, `{"subscribe": "help"}` (the learner's
 * answers), `{"subscribe": "help", "course"}` (a course's staff queue, topic `help:<course>`),
 * `{"subscribe": "submission", "id"}`, `{"subscribe": "check", "id"}`, and the same with
 * "unsubscribe"; the server answers frames `{"topic", "event"}`, `{"topic", "error"}` (an upstream
 * failed; the server retries it) and `{"topic", "closed": true}` (the topic ended for good).
 * When the socket drops, it is opened again after an exponential backoff and every topic still
 * wanted is subscribed again. Pure logic: the socket and the timers are injected.
 */
import { backoffDelay, DEFAULT_BACKOFF, IBackoffOptions } from './backoff';

export type SubscribeRequest =
  | { subscribe: 'notifications' }
  | { subscribe: 'help'; course?: string }
  | { subscribe: 'submission'; id: string }
  | { subscribe: 'check'; id: string };

export interface IStreamFrame {
  topic: string;
  event?: any;
  error?: any;
  closed?: boolean;
}

/** The topic name the server uses in its frames for a subscribe request. */
export function topicOf(request: SubscribeRequest): string {
  switch (request.subscribe) {
    case 'submission':
    case 'check':
      return `${request.subscribe}:${request.id}`;
    case 'help':
      return request.course ? `help:${request.course}` : 'help';
    default:
      return request.subscribe;
  }
}

/** The message that ends a subscription: the request with "unsubscribe" for "subscribe". */
export function unsubscribeMessage(request: SubscribeRequest): { [key: string]: string } {
  const { subscribe, ...rest } = request as { subscribe: string; [key: string]: string | undefined };
  const out: { [key: string]: string } = { unsubscribe: subscribe };
  for (const [key, value] of Object.entries(rest)) {
    if (value !== undefined) {
      out[key] = value;
    }
  }
  return out;
}

/** The part of the browser's WebSocket the multiplexer uses. */
export interface ISocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: { data: any }) => any) | null;
  onclose: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
}

const OPEN = 1;

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'waiting' | 'disposed';

export interface IConnectionChange {
  state: ConnectionState;
  /** Failed attempts in a row (0 once a connection works). */
  attempt: number;
  /** When waiting: ms until the next attempt. */
  delay?: number;
  /** When open: true if this is not the first connection (events may have been missed). */
  reconnected?: boolean;
}

export interface IMultiplexerOptions {
  connect: () => ISocket;
  backoff?: IBackoffOptions;
  random?: () => number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** A connection that stayed open this long resets the backoff when it drops (ms). */
  stableMs?: number;
  onStateChange?: (change: IConnectionChange) => void;
}

export type FrameListener = (frame: IStreamFrame) => void;

export interface IStreamSubscription {
  readonly topic: string;
  dispose(): void;
}

interface ITopicEntry {
  request: SubscribeRequest;
  listeners: Set<FrameListener>;
}

export class StreamMultiplexer {
  constructor(options: IMultiplexerOptions) {
    this._options = options;
    this._backoff = options.backoff ?? DEFAULT_BACKOFF;
    this._random = options.random ?? Math.random;
    this._now = options.now ?? (() => Date.now());
    this._setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this._clearTimer = options.clearTimer ?? (handle => clearTimeout(handle as any));
    this._stableMs = options.stableMs ?? 10000;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Failed connection attempts in a row. */
  get attempt(): number {
    return this._attempt;
  }

  /** Topics currently wanted. */
  get topics(): string[] {
    return [...this._topics.keys()];
  }

  /**
   * Listen to a topic; the subscribe message is sent now if the socket is open, else when it
   * opens. Several listeners of one topic share one subscription.
   */
  subscribe(request: SubscribeRequest, listener: FrameListener): IStreamSubscription {
    if (this._state === 'disposed') {
      throw new Error('The learnhub stream is disposed.');
    }
    const topic = topicOf(request);
    let entry = this._topics.get(topic);
    if (!entry) {
      entry = { request, listeners: new Set() };
      this._topics.set(topic, entry);
      if (this._socket && this._socket.readyState === OPEN) {
        this._send(request);
      }
    }
    entry.listeners.add(listener);
    if (this._state === 'idle') {
      this._connect();
    }
    let disposed = false;
    return {
      topic,
      dispose: () => {
        if (disposed) {
          return;
        }
        disposed = true;
        const current = this._topics.get(topic);
        if (current) {
          current.listeners.delete(listener);
          if (current.listeners.size === 0) {
            this._topics.delete(topic);
            if (this._socket && this._socket.readyState === OPEN) {
              this._send(unsubscribeMessage(current.request));
            }
          }
        }
      }
    };
  }

  /** Skip the backoff wait and try to connect now (e.g. a "Reconnect" button). */
  reconnectNow(): void {
    if (this._state !== 'waiting') {
      return;
    }
    this._clearTimer(this._timer);
    this._timer = null;
    this._connect();
  }

  dispose(): void {
    if (this._state === 'disposed') {
      return;
    }
    if (this._timer !== null) {
      this._clearTimer(this._timer);
      this._timer = null;
    }
    const socket = this._socket;
    this._socket = null;
    this._topics.clear();
    this._setState({ state: 'disposed', attempt: this._attempt });
    if (socket) {
      this._detach(socket);
      socket.close();
    }
  }

  private _connect(): void {
    this._setState({ state: 'connecting', attempt: this._attempt });
    let socket: ISocket;
    try {
      socket = this._options.connect();
    } catch (reason) {
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      if (this._socket !== socket) {
        return;
      }
      this._openedAt = this._now();
      const reconnected = this._everOpened;
      this._everOpened = true;
      this._setState({ state: 'open', attempt: this._attempt, reconnected });
      for (const entry of this._topics.values()) {
        this._send(entry.request);
      }
    };
    socket.onmessage = (ev: { data: any }) => {
      if (this._socket !== socket) {
        return;
      }
      this._attempt = 0;
      this._receive(ev.data);
    };
    socket.onerror = () => {
      // A close event always follows; reconnecting is handled there.
    };
    socket.onclose = () => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      this._detach(socket);
      if (this._openedAt !== null && this._now() - this._openedAt >= this._stableMs) {
        this._attempt = 0;
      }
      this._openedAt = null;
      if (this._topics.size === 0) {
        this._setState({ state: 'idle', attempt: this._attempt });
        return;
      }
      this._scheduleReconnect();
    };
  }

  private _scheduleReconnect(): void {
    if (this._state === 'disposed') {
      return;
    }
    const delay = backoffDelay(this._attempt, this._backoff, this._random);
    this._attempt += 1;
    this._setState({ state: 'waiting', attempt: this._attempt, delay });
    this._timer = this._setTimer(() => {
      this._timer = null;
      if (this._state !== 'waiting') {
        return;
      }
      if (this._topics.size === 0) {
        this._setState({ state: 'idle', attempt: this._attempt });
        return;
      }
      this._connect();
    }, delay);
  }

  private _receive(data: unknown): void {
    let frame: IStreamFrame;
    try {
      frame = JSON.parse(String(data));
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.topic !== 'string') {
      return;
    }
    const entry = this._topics.get(frame.topic);
    if (!entry) {
      return;
    }
    for (const listener of [...entry.listeners]) {
      try {
        listener(frame);
      } catch (reason) {
        console.error('learnhub: a stream listener failed', reason);
      }
    }
    if (frame.closed) {
      // The server ended the topic (e.g. a grading job finished): do not subscribe again.
      this._topics.delete(frame.topic);
    }
  }

  private _send(message: object): void {
    try {
      this._socket?.send(JSON.stringify(message));
    } catch (reason) {
      console.warn('learnhub: could not send on the stream', reason);
    }
  }

  private _detach(socket: ISocket): void {
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
  }

  private _setState(change: IConnectionChange): void {
    this._state = change.state;
    this._options.onStateChange?.(change);
  }

  private _options: IMultiplexerOptions;
  private _backoff: IBackoffOptions;
  private _random: () => number;
  private _now: () => number;
  private _setTimer: (fn: () => void, ms: number) => unknown;
  private _clearTimer: (handle: unknown) => void;
  private _stableMs: number;
  private _topics = new Map<string, ITopicEntry>();
  private _socket: ISocket | null = null;
  private _state: ConnectionState = 'idle';
  private _attempt = 0;
  private _timer: unknown = null;
  private _openedAt: number | null = null;
  private _everOpened = false;
}
