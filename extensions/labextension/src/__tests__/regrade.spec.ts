import {
  changeDelta,
  changeText,
  latestRegrade,
  parseRegrade,
  progressPercent,
  progressText,
  regradesPath,
  shouldPoll
} from '../logic/regrade';

const running = {
  id: 'r-1',
  course: 'intro-python',
  assignment: '01-basics',
  requested_by: 'ivy',
  created_at: '2026-12-01T10:00:00Z',
  status: 'running',
  total: 50,
  done: 12,
  failed: 1,
  running: 38,
  changes: [],
  unchanged: 11,
  failures: [{ learner: 'bob', submission: 's-bob', job: 'j', error: 'SandboxError: no sandbox' }],
  skipped: []
};

const done = {
  ...running,
  status: 'done',
  done: 50,
  failed: 1,
  running: 0,
  unchanged: 46,
  changes: [
    { learner: 'zoe', submission: 's-z', job: 'j-z', before: { score: 5, max_score: 10 }, after: { score: 7, max_score: 10 } },
    { learner: 'ada', submission: 's-a', job: 'j-a', before: { score: 8, max_score: 10 }, after: { score: 6.5, max_score: 10 } },
    { learner: 'cy', submission: 's-c', job: 'j-c', before: { score: null, max_score: null }, after: { score: 3, max_score: 10 } }
  ]
};

describe('regrades', () => {
  it('parses the service answer and sorts the changes by learner', () => {
    const regrade = parseRegrade(done)!;
    expect(regrade.status).toBe('done');
    expect(regrade.total).toBe(50);
    expect(regrade.changes.map(c => c.learner)).toEqual(['ada', 'cy', 'zoe']);
    expect(regrade.failures).toEqual([{ learner: 'bob', submission: 's-bob', error: 'SandboxError: no sandbox' }]);
    expect(regrade.skipped).toBe(0);
  });

  it('refuses what is not a regrade and drops malformed entries', () => {
    expect(parseRegrade(null)).toBeNull();
    expect(parseRegrade({ id: 'x', status: 'exploded' })).toBeNull();
    expect(parseRegrade({ status: 'done' })).toBeNull();
    const odd = parseRegrade({ id: 'x', status: 'done', total: -3, changes: [null, { learner: 3 }, 'x'] })!;
    expect(odd.total).toBe(0);
    expect(odd.changes).toEqual([]);
  });

  it('polls until done', () => {
    expect(shouldPoll(parseRegrade(running))).toBe(true);
    expect(shouldPoll(parseRegrade({ ...running, status: 'queueing' }))).toBe(true);
    expect(shouldPoll(parseRegrade(done))).toBe(false);
    expect(shouldPoll(null)).toBe(false);
  });

  it('describes the progress and the outcome', () => {
    expect(progressText(parseRegrade(running)!)).toBe('12 of 50 graded, 1 failed');
    expect(progressText(parseRegrade({ ...running, status: 'queueing', done: 0, failed: 0 })!)).toBe(
      '0 of 50 graded (queueing)'
    );
    expect(progressPercent(parseRegrade(running)!)).toBe(24);
    expect(progressText(parseRegrade(done)!)).toBe('Regraded 49 of 50: 3 scores changed, 1 failed.');
    expect(progressText(parseRegrade({ ...done, changes: [], failed: 0 })!)).toBe('Regraded 50 of 50: no score changed.');
    const nobody = parseRegrade({ ...done, total: 0, done: 0, failed: 0, changes: [] })!;
    expect(progressText(nobody)).toBe('No autograded submissions to regrade.');
    expect(progressPercent(nobody)).toBe(100);
  });

  it('writes each change as before → after with the difference', () => {
    const [ada, cy, zoe] = parseRegrade(done)!.changes;
    expect(changeText(zoe)).toBe('5 → 7 / 10');
    expect(changeDelta(zoe)).toBe('+2');
    expect(changeText(ada)).toBe('8 → 6.5 / 10');
    expect(changeDelta(ada)).toBe('−1.5');
    expect(changeText(cy)).toBe('– → 3 / 10');
    expect(changeDelta(cy)).toBe('');
    const points = { ...zoe, before: { score: 5, max_score: 9 } };
    expect(changeText(points)).toBe('5 / 9 → 7 / 10');
  });

  it('builds the endpoint and picks the newest regrade of a list', () => {
    expect(regradesPath('intro python', '01/basics')).toBe('courses/intro%20python/assignments/01%2Fbasics/regrades');
    expect(regradesPath('c', 'a', 'r-1')).toBe('courses/c/assignments/a/regrades/r-1');
    expect(latestRegrade({ items: [{ bad: true }, done, running] })!.status).toBe('done');
    expect(latestRegrade({ items: [] })).toBeNull();
    expect(latestRegrade('nope')).toBeNull();
  });
});
