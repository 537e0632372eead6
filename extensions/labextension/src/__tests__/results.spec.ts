import {
  applyEvent,
  applyStreamError,
  failRun,
  initialRun,
  IRunState,
  isFinished,
  markerLines,
  notebookStem,
  parseTest,
  pointsText,
  redact,
  resultsForNotebook,
  summarize
} from '../logic/results';

const test1 = { type: 'test', id: 'j1', notebook: 'basics', grade_id: 'test_add', points: 2, max_points: 2, passed: true, hidden: false };
const test2 = { type: 'test', id: 'j1', notebook: 'basics', grade_id: 'test_mul', points: 0, max_points: 3, passed: false, hidden: false };
const test3 = { type: 'test', id: 'j1', notebook: 'basics', grade_id: 'test_secret', points: 0, max_points: 5, passed: false, hidden: true };
const done = {
  type: 'done',
  id: 'j1',
  kind: 'submission',
  status: 'graded',
  score: 2,
  max_score: 10,
  error: null,
  needs_manual_grade: false,
  limit_messages: [],
  tests: [
    { ...test1, message: null, error: null, explanation: null, hint: null },
    { ...test2, message: 'AssertionError: mul(2, 3) should be 6', error: 'AssertionError', explanation: 'An assert statement failed.', hint: 'Use the * operator.' },
    { ...test3, message: 'The tests of this cell (some of them hidden) did not pass.', error: 'AssertionError', explanation: 'An assert statement failed.', hint: 'secret hint' }
  ]
};

function run(events: unknown[], kind: 'check' | 'submission' = 'submission'): IRunState {
  return events.reduce<IRunState>((state, e) => applyEvent(state, e), initialRun('j1', kind));
}

describe('mapping test events to results', () => {
  it('follows queued → started → tests → done', () => {
    let state = initialRun('j1', 'submission');
    expect(state.status).toBe('queued');
    state = applyEvent(state, { type: 'queued', id: 'j1' });
    state = applyEvent(state, { type: 'started', id: 'j1' });
    expect(state.status).toBe('started');
    state = applyEvent(state, test1);
    state = applyEvent(state, test2);
    expect(state.tests.map(t => [t.gradeId, t.passed])).toEqual([
      ['test_add', true],
      ['test_mul', false]
    ]);
    expect(summarize(state).text).toBe('Grading… 1 of 2 tests passed so far');
    state = applyEvent(state, done);
    expect(isFinished(state)).toBe(true);
    expect(state.status).toBe('graded');
    expect(state.score).toBe(2);
    expect(state.maxScore).toBe(10);
    expect(state.tests).toHaveLength(3);
    expect(summarize(state).text).toBe('1 of 3 tests passed · score 2 / 10');
  });

  it('counts a test event before "started" as started, and ignores unknown events', () => {
    const state = run([test1, { type: 'mystery' }, null, 'text']);
    expect(state.status).toBe('started');
    expect(state.tests).toHaveLength(1);
  });

  it('does not duplicate a test sent twice (replay after a reconnect)', () => {
    const state = run([test1, test2, test1, test2, done, test2]);
    expect(state.tests).toHaveLength(3);
    expect(state.status).toBe('graded');
  });

  it('takes messages and hints from the final payload', () => {
    const state = run([test2, done]);
    const mul = state.tests.find(t => t.gradeId === 'test_mul')!;
    expect(mul.message).toBe('AssertionError: mul(2, 3) should be 6');
    expect(mul.hint).toBe('Use the * operator.');
    expect(markerLines(mul)).toEqual([
      'AssertionError: mul(2, 3) should be 6',
      'An assert statement failed.',
      'Hint: Use the * operator.'
    ]);
    expect(pointsText(mul)).toBe('0 / 3 points');
  });

  it('adds no text to a passed test without a message', () => {
    expect(markerLines(parseTest({ grade_id: 'g', passed: true })!)).toEqual([]);
    expect(markerLines(parseTest({ grade_id: 'g', passed: false })!)).toEqual(['Failed.']);
  });

  it('keeps tests of different notebooks with the same grade id apart', () => {
    const state = run([test1, { ...test1, notebook: 'other', passed: false, points: 0 }]);
    expect(state.tests).toHaveLength(2);
    expect([...resultsForNotebook(state, 'intro-python/a1/basics.ipynb').keys()]).toEqual(['test_add']);
    expect(resultsForNotebook(state, 'intro-python/a1/other.ipynb').get('test_add')!.passed).toBe(false);
    expect(resultsForNotebook(state, 'intro-python/a1/none.ipynb').size).toBe(0);
  });

  it('counts tests without a notebook name for every notebook', () => {
    const state = run([{ ...test1, notebook: null }]);
    expect(resultsForNotebook(state, 'c/a/whatever.ipynb').has('test_add')).toBe(true);
  });

  it('marks a failed job with its error', () => {
    const state = run([{ type: 'started' }, { type: 'done', status: 'failed', error: 'sandbox unavailable', tests: [] }]);
    expect(state.status).toBe('failed');
    expect(state.error).toBe('sandbox unavailable');
    expect(summarize(state).text).toBe('Grading failed: sandbox unavailable');
    expect(run([{ type: 'failed' }]).error).toBe('Grading failed.');
  });

  it('a stream error interrupts the live results until events flow again', () => {
    let state = run([{ type: 'started' }, test1]);
    state = applyStreamError(state, 'The feedback service is not answering');
    expect(state.status).toBe('started');
    expect(summarize(state).text).toMatch(/Live results interrupted \(The feedback service is not answering\)/);
    state = applyEvent(state, test2);
    expect(state.notice).toBeNull();
    const finished = run([done]);
    expect(applyStreamError(finished, 'late error')).toBe(finished);
  });

  it('fails a run whose stream ended without a result', () => {
    expect(failRun(initialRun('x', 'check'), 'stream ended')).toMatchObject({ status: 'failed', error: 'stream ended' });
    const finished = run([done]);
    expect(failRun(finished, 'late')).toBe(finished);
  });

  it('explains a graded job without tests', () => {
    const state = run([{ type: 'done', status: 'graded', error: 'nbgrader could not grade this notebook', tests: [] }]);
    expect(summarize(state).text).toBe('No test results: nbgrader could not grade this notebook');
  });

  it('ignores tests without a grade id', () => {
    expect(parseTest({ passed: true })).toBeNull();
    expect(parseTest(null)).toBeNull();
    expect(parseTest({ grade_id: 'g', passed: false, error: 'NameError' })!.message).toBe('NameError');
  });

  it('summarizes checks without a score and mentions manual grading', () => {
    const check = run([test1, { ...done, kind: 'check', tests: [test1] }], 'check');
    expect(summarize(check).text).toBe('1 of 1 test passed');
    const manual = run([{ ...done, needs_manual_grade: true }]);
    expect(summarize(manual).text).toMatch(/manual grading/);
    expect(summarize(initialRun('q', 'check')).text).toBe('Check queued…');
  });

  it('names notebooks by their stem', () => {
    expect(notebookStem('intro-python/01-basics/basics.ipynb')).toBe('basics');
    expect(notebookStem('x.IPYNB')).toBe('x');
  });
});

describe('hidden-test redaction', () => {
  it('keeps only passed/failed for hidden tests', () => {
    const state = run([test3, done]);
    const raw = state.tests[0];
    expect(raw.hint).toBe('secret hint'); // as the server sent it
    const shown = redact(raw);
    expect(shown.passed).toBe(false);
    expect(shown.hint).toBeNull();
    expect(shown.explanation).toBeNull();
    expect(shown.points).toBeNull();
    expect(shown.message).toBe('Failed: this cell has hidden tests, so no details are shown.');
    expect(pointsText(shown)).toBe('');
    expect(markerLines(shown)).toEqual(['Failed: this cell has hidden tests, so no details are shown.']);
  });

  it('is applied to the per-notebook results', () => {
    const state = run([test3, done]);
    const shown = resultsForNotebook(state, 'c/a/basics.ipynb').get('test_secret')!;
    expect(shown.hint).toBeNull();
    expect(shown.message).not.toMatch(/secret/);
  });

  it('says that hidden tests run only at grading time in a check', () => {
    const state = run([{ ...test3, passed: true }], 'check');
    const shown = resultsForNotebook(state, 'basics.ipynb').get('test_secret')!;
    expect(shown.message).toBe('Passed. Hidden tests run only when the assignment is graded.');
  });

  it('leaves visible tests alone', () => {
    const visible = parseTest({ ...test2, message: 'm', hint: 'h' })!;
    expect(redact(visible)).toBe(visible);
  });
});
