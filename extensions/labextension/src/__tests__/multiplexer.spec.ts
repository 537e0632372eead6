import {
  IConnectionChange,
  ISocket,
  IStreamFrame,
  StreamMultiplexer,
  topicOf,
  unsubscribeMessage
} from '../logic/multiplexer';

class FakeSocket implements ISocket {
  readyState = 0;
  sent: any[] = [];
  closed = false;
  onopen: ((ev: any) => any) | null = null;
  onmessage: ((ev: { data: any }) => any) | null = null;
  onclose: ((ev: any) => any) | null = null;
  onerror: ((ev: any) => any) | null = null;

  send(data: string): void {
    if (this.readyState !== 1) {
      throw new Error('not open');
    }
    this.sent.push(JSON.parse(data));
  }
  close(): void {
    this.closed = true;
    this.readyState = 3;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(frame: unknown): void {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }
  drop(): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({});
  }
}

function setup(options: { stableMs?: number } = {}) {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number; cleared: boolean }[] = [];
  const changes: IConnectionChange[] = [];
  let now = 0;
  const mux = new StreamMultiplexer({
    connect: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    backoff: { initialMs: 1000, maxMs: 8000, factor: 2, jitter: 0 },
    now: () => now,
    setTimer: (fn, ms) => {
      const t = { fn, ms, cleared: false };
      timers.push(t);
      return t;
    },
    clearTimer: t => {
      (t as { cleared: boolean }).cleared = true;
    },
    stableMs: options.stableMs ?? 10000,
    onStateChange: c => changes.push(c)
  });
  const fire = () => {
    const t = timers.filter(x => !x.cleared).pop();
    if (!t) {
      throw new Error('no timer');
    }
    t.cleared = true;
    t.fn();
    return t.ms;
  };
  return { mux, sockets, timers, changes, fire, advance: (ms: number) => (now += ms) };
}

describe('topics', () => {
  it('names topics as the server does', () => {
    expect(topicOf({ subscribe: 'notifications' })).toBe('notifications');
    expect(topicOf({ subscribe: 'help' })).toBe('help');
    expect(topicOf({ subscribe: 'submission', id: 'j1' })).toBe('submission:j1');
    expect(topicOf({ subscribe: 'check', id: 'c9' })).toBe('check:c9');
    expect(topicOf({ subscribe: 'help', course: 'intro-python' })).toBe('help:intro-python');
  });

  it('builds unsubscribe messages', () => {
    expect(unsubscribeMessage({ subscribe: 'check', id: 'c9' })).toEqual({ unsubscribe: 'check', id: 'c9' });
    expect(unsubscribeMessage({ subscribe: 'help', course: 'c' })).toEqual({ unsubscribe: 'help', course: 'c' });
    expect(unsubscribeMessage({ subscribe: 'notifications' })).toEqual({ unsubscribe: 'notifications' });
  });
});

describe('the stream multiplexer', () => {
  it('connects on the first subscription and subscribes when open', () => {
    const { mux, sockets } = setup();
    expect(sockets).toHaveLength(0);
    mux.subscribe({ subscribe: 'notifications' }, () => undefined);
    mux.subscribe({ subscribe: 'help' }, () => undefined);
    expect(sockets).toHaveLength(1);
    expect(mux.state).toBe('connecting');
    sockets[0].open();
    expect(mux.state).toBe('open');
    expect(sockets[0].sent).toEqual([{ subscribe: 'notifications' }, { subscribe: 'help' }]);
    mux.subscribe({ subscribe: 'check', id: 'c1' }, () => undefined);
    expect(sockets[0].sent[2]).toEqual({ subscribe: 'check', id: 'c1' });
  });

  it('routes frames by topic and shares one subscription between listeners', () => {
    const { mux, sockets } = setup();
    const a: IStreamFrame[] = [];
    const b: IStreamFrame[] = [];
    const other: IStreamFrame[] = [];
    mux.subscribe({ subscribe: 'submission', id: 'j1' }, f => a.push(f));
    mux.subscribe({ subscribe: 'submission', id: 'j1' }, f => b.push(f));
    mux.subscribe({ subscribe: 'notifications' }, f => other.push(f));
    sockets[0].open();
    expect(sockets[0].sent.filter(m => m.subscribe === 'submission')).toHaveLength(1);
    sockets[0].receive({ topic: 'submission:j1', event: { type: 'queued', id: 'j1' } });
    sockets[0].receive({ topic: 'unknown', event: {} });
    sockets[0].receive('not json');
    sockets[0].receive({ no: 'topic' });
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(1);
    expect(other).toHaveLength(0);
  });

  it('forgets a topic the server closed and does not subscribe to it again', () => {
    const { mux, sockets, fire } = setup();
    const frames: IStreamFrame[] = [];
    mux.subscribe({ subscribe: 'notifications' }, () => undefined);
    mux.subscribe({ subscribe: 'check', id: 'c1' }, f => frames.push(f));
    sockets[0].open();
    sockets[0].receive({ topic: 'check:c1', event: { type: 'done' } });
    sockets[0].receive({ topic: 'check:c1', closed: true });
    expect(frames.map(f => f.closed ?? false)).toEqual([false, true]);
    expect(mux.topics).toEqual(['notifications']);
    sockets[0].drop();
    fire();
    sockets[1].open();
    expect(sockets[1].sent).toEqual([{ subscribe: 'notifications' }]);
  });

  it('delivers error frames and keeps the topic', () => {
    const { mux, sockets } = setup();
    const frames: IStreamFrame[] = [];
    mux.subscribe({ subscribe: 'help' }, f => frames.push(f));
    sockets[0].open();
    sockets[0].receive({ topic: 'help', error: { status: 502, message: 'feedback down' } });
    expect(frames[0].error.message).toBe('feedback down');
    expect(mux.topics).toEqual(['help']);
  });

  it('reconnects with growing delays and resubscribes everything still wanted', () => {
    const { mux, sockets, fire, changes } = setup();
    mux.subscribe({ subscribe: 'notifications' }, () => undefined);
    mux.subscribe({ subscribe: 'submission', id: 'j2' }, () => undefined);
    sockets[0].open();
    sockets[0].drop();
    expect(mux.state).toBe('waiting');
    expect(fire()).toBe(1000);
    sockets[1].drop(); // refused before opening
    expect(fire()).toBe(2000);
    sockets[2].drop();
    expect(fire()).toBe(4000);
    sockets[3].drop();
    expect(fire()).toBe(8000);
    sockets[4].drop();
    expect(fire()).toBe(8000); // capped
    sockets[5].open();
    expect(sockets[5].sent).toEqual([{ subscribe: 'notifications' }, { subscribe: 'submission', id: 'j2' }]);
    const opened = changes.filter(c => c.state === 'open');
    expect(opened.map(c => c.reconnected)).toEqual([false, true]);
  });

  it('resets the backoff after a message or a long-lived connection', () => {
    const { mux, sockets, fire, advance } = setup({ stableMs: 5000 });
    mux.subscribe({ subscribe: 'help' }, () => undefined);
    sockets[0].drop();
    expect(fire()).toBe(1000);
    sockets[1].drop();
    expect(fire()).toBe(2000);
    sockets[2].open();
    sockets[2].receive({ topic: 'help', event: { type: 'subscribed' } });
    sockets[2].drop();
    expect(fire()).toBe(1000);
    sockets[3].open();
    advance(6000);
    sockets[3].drop();
    expect(fire()).toBe(1000);
    // Open then closed at once, without a message: the backoff keeps growing (no tight loop).
    sockets[4].open();
    sockets[4].drop();
    expect(fire()).toBe(2000);
  });

  it('unsubscribes when the last listener of a topic goes', () => {
    const { mux, sockets } = setup();
    const one = mux.subscribe({ subscribe: 'help', course: 'c1' }, () => undefined);
    const two = mux.subscribe({ subscribe: 'help', course: 'c1' }, () => undefined);
    mux.subscribe({ subscribe: 'notifications' }, () => undefined);
    sockets[0].open();
    one.dispose();
    expect(sockets[0].sent).toHaveLength(2);
    two.dispose();
    expect(sockets[0].sent[2]).toEqual({ unsubscribe: 'help', course: 'c1' });
    // the server's "closed" answer for it is ignored
    sockets[0].receive({ topic: 'help:c1', closed: true });
    expect(mux.topics).toEqual(['notifications']);
  });

  it('goes idle when nothing is wanted any more, and reconnects on demand', () => {
    const { mux, sockets, timers } = setup();
    const sub = mux.subscribe({ subscribe: 'check', id: 'c2' }, () => undefined);
    sockets[0].open();
    sub.dispose();
    sub.dispose(); // twice is harmless
    expect(mux.topics).toEqual([]);
    sockets[0].drop();
    expect(mux.state).toBe('idle');
    expect(timers).toHaveLength(0);
    mux.subscribe({ subscribe: 'help' }, () => undefined);
    expect(sockets).toHaveLength(2);
  });

  it('reconnectNow skips the wait', () => {
    const { mux, sockets, timers } = setup();
    mux.subscribe({ subscribe: 'help' }, () => undefined);
    sockets[0].drop();
    expect(mux.state).toBe('waiting');
    mux.reconnectNow();
    expect(timers[0].cleared).toBe(true);
    expect(sockets).toHaveLength(2);
    expect(mux.state).toBe('connecting');
  });

  it('survives a listener that throws and a connect that throws', () => {
    const sockets: FakeSocket[] = [];
    let fail = true;
    const timers: (() => void)[] = [];
    const mux = new StreamMultiplexer({
      connect: () => {
        if (fail) {
          fail = false;
          throw new Error('bad url');
        }
        const s = new FakeSocket();
        sockets.push(s);
        return s;
      },
      setTimer: fn => timers.push(fn),
      clearTimer: () => undefined,
      random: () => 0
    });
    const seen: IStreamFrame[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    mux.subscribe({ subscribe: 'help' }, () => {
      throw new Error('listener bug');
    });
    mux.subscribe({ subscribe: 'help' }, f => seen.push(f));
    expect(mux.state).toBe('waiting');
    timers.pop()!();
    sockets[0].open();
    sockets[0].receive({ topic: 'help', event: {} });
    expect(seen).toHaveLength(1);
    spy.mockRestore();
  });

  it('closes the socket and refuses subscriptions once disposed', () => {
    const { mux, sockets } = setup();
    mux.subscribe({ subscribe: 'help' }, () => undefined);
    sockets[0].open();
    mux.dispose();
    expect(sockets[0].closed).toBe(true);
    expect(mux.state).toBe('disposed');
    expect(() => mux.subscribe({ subscribe: 'help' }, () => undefined)).toThrow(/disposed/);
  });
});
