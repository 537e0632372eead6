import {
  formatBytes,
  memoryLimitAdvice,
  memoryLimitMessage,
  NOTIFICATION_LENGTH,
  OomKillMark,
  parseMemoryStatus
} from '../logic/memory';

describe('the limits answer', () => {
  it('reads the server extension\'s fields', () => {
    expect(parseMemoryStatus({ memory: { limit: 268435456, usage: 1000, oom_kills: 2, accounting: 'cgroup v1' } }))
      .toEqual({ limit: 268435456, usage: 1000, oomKills: 2 });
  });

  it('keeps "cannot tell" apart from zero', () => {
    expect(parseMemoryStatus({ memory: { limit: null, usage: null, oom_kills: null } }))
      .toEqual({ limit: null, usage: null, oomKills: null });
    expect(parseMemoryStatus({ memory: { oom_kills: 0 } })?.oomKills).toBe(0);
  });

  it('refuses what is not that answer', () => {
    expect(parseMemoryStatus(null)).toBeNull();
    expect(parseMemoryStatus('<html>')).toBeNull();
    expect(parseMemoryStatus({ error: { status: 403 } })).toBeNull();
    expect(parseMemoryStatus({ memory: { oom_kills: 'many', limit: -1 } })).toEqual({
      limit: null,
      usage: null,
      oomKills: null
    });
  });
});

describe('sizes', () => {
  it('uses binary units as the limit is set', () => {
    expect(formatBytes(512 * 1024 ** 2)).toBe('512 MiB');
    expect(formatBytes(2 * 1024 ** 3)).toBe('2 GiB');
    expect(formatBytes(1.5 * 1024 ** 3)).toBe('1.5 GiB');
    expect(formatBytes(400 * 1000 ** 2)).toBe('381.5 MiB');
    expect(formatBytes(100)).toBe('100 bytes');
  });
});

describe('the message', () => {
  it('names the limit and the notebook', () => {
    const text = memoryLimitMessage(256 * 1024 ** 2, 'bomb.ipynb');
    expect(text).toBe(
      "The kernel of bomb.ipynb was stopped: it used more than 256 MiB, this server's memory limit. " +
        'It restarts, without its variables.'
    );
  });

  it('fits in a notification, leaving out a long name rather than the limit', () => {
    const long = 'a-notebook-with-a-very-long-name-indeed-about-data-cleaning.ipynb';
    const text = memoryLimitMessage(1.5 * 1024 ** 3, long);
    expect(text.length).toBeLessThanOrEqual(NOTIFICATION_LENGTH);
    expect(text).toMatch(/^Your kernel was stopped: it used more than 1.5 GiB, this server's memory limit/);
    expect(memoryLimitMessage(512 * 1024 ** 2, 'x.ipynb').length).toBeLessThanOrEqual(NOTIFICATION_LENGTH);
  });

  it('does not invent a limit it does not know', () => {
    const text = memoryLimitMessage(null, null);
    expect(text).toMatch(/^Your kernel was stopped: it ran out of memory/);
    expect(text).not.toMatch(/MiB|GiB/);
    expect(memoryLimitAdvice(null)).not.toMatch(/MiB|GiB/);
  });

  it('says what to do', () => {
    const advice = memoryLimitAdvice(256 * 1024 ** 2);
    expect(advice).toContain("this server's memory limit of 256 MiB");
    expect(advice).toMatch(/del large objects/);
    expect(advice).toMatch(/instructor/);
  });
});

describe('the OOM-kill mark', () => {
  const at = (oomKills: number | null) => ({ limit: 1, usage: 0, oomKills });

  it('tells a kill once, however many statuses follow', () => {
    const mark = new OomKillMark();
    mark.set(at(3));
    expect(mark.wentUp(at(3))).toBe(false); // a restart asked for, or a death of another cause
    expect(mark.wentUp(at(4))).toBe(true);
    expect(mark.wentUp(at(4))).toBe(false);
    expect(mark.seen).toBe(4);
  });

  it('says nothing where it cannot tell', () => {
    const mark = new OomKillMark();
    mark.set(at(null));
    expect(mark.wentUp(at(null))).toBe(false);
    expect(mark.wentUp(null)).toBe(false);
  });

  it('without a first count, older kills are not news; a failed look keeps the mark', () => {
    const mark = new OomKillMark();
    mark.set(null);
    expect(mark.wentUp(at(2))).toBe(false);
    expect(mark.wentUp(null)).toBe(false);
    expect(mark.seen).toBe(2);
    expect(mark.wentUp(at(3))).toBe(true);
  });
});
