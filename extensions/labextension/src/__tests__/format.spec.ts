import {
  attemptsLeft,
  canSubmit,
  formatAttemptsLeft,
  formatDue,
  formatDuration,
  formatScore,
  slug,
  statusLabel
} from '../logic/format';

describe('attempts left', () => {
  it('counts down and never below zero', () => {
    expect(attemptsLeft(3, 1)).toBe(2);
    expect(attemptsLeft(3, 5)).toBe(0);
    expect(attemptsLeft(2, null)).toBe(2);
  });

  it('treats a missing maximum as unlimited', () => {
    expect(attemptsLeft(null, 4)).toBeNull();
    expect(formatAttemptsLeft(null, 4)).toBe('unlimited attempts');
    expect(canSubmit(null, 100)).toBe(true);
  });

  it('formats the count', () => {
    expect(formatAttemptsLeft(3, 1)).toBe('2 of 3 attempts left');
    expect(formatAttemptsLeft(1, 0)).toBe('1 of 1 attempt left');
    expect(formatAttemptsLeft(3, 3)).toBe('no attempts left');
    expect(canSubmit(3, 3)).toBe(false);
  });
});

describe('due dates', () => {
  const now = new Date('2025-03-10T12:00:00Z');

  it('says when there is none', () => {
    expect(formatDue(null, now)).toEqual({ text: 'no due date', state: 'none', title: '' });
  });

  it('counts days, hours and minutes ahead', () => {
    expect(formatDue('2025-03-13T12:00:00Z', now)).toMatchObject({ text: 'due in 3 days', state: 'later' });
    expect(formatDue('2025-03-11T09:00:00Z', now)).toMatchObject({ text: 'due in 21 hours', state: 'soon' });
    expect(formatDue('2025-03-10T12:30:00Z', now)).toMatchObject({ text: 'due in 30 minutes', state: 'soon' });
  });

  it('marks overdue dates, and closed ones with a hard deadline', () => {
    expect(formatDue('2025-03-10T09:00:00Z', now)).toMatchObject({ text: 'overdue by 3 hours', state: 'overdue' });
    expect(formatDue('2025-03-08T12:00:00Z', now, true).text).toBe('overdue by 2 days (closed)');
  });

  it('keeps an unparseable date as it is', () => {
    expect(formatDue('next monday', now).text).toBe('due next monday');
  });

  it('rounds durations', () => {
    expect(formatDuration(10 * 1000)).toBe('1 minute');
    expect(formatDuration(-90 * 60 * 1000)).toBe('2 hours');
    expect(formatDuration(47 * 3600 * 1000)).toBe('47 hours');
    expect(formatDuration(49 * 3600 * 1000)).toBe('2 days');
  });
});

describe('scores and labels', () => {
  it('formats scores', () => {
    expect(formatScore(7.5, 10)).toBe('7.5 / 10');
    expect(formatScore(null, 10)).toBe('– / 10');
    expect(formatScore(3, null)).toBe('3');
    expect(formatScore(2.25, 3)).toBe('2.3 / 3');
  });

  it('labels statuses', () => {
    expect(statusLabel('not fetched')).toBe('Not fetched');
    expect(statusLabel('graded')).toBe('Graded');
    expect(statusLabel('late')).toBe('Late');
    expect(statusLabel(undefined)).toBe('Unknown');
  });

  it('makes ids safe for test ids', () => {
    expect(slug('intro-python')).toBe('intro-python');
    expect(slug('a1/cell 3')).toBe('a1-cell-3');
  });
});
