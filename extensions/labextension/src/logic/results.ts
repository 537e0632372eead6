/**
 * Grading and check runs: from the feedback service's event stream to per-cell results.
 *
 * Events (extensions/feedback/handlers.py, SubmissionEventsHandler):
 *   {"type": "queued", "id"} → {"type": "started", "id"} →
 *   {"type": "test", "id", "notebook", "grade_id", "points", "max_points", "passed", "hidden"} (one per test) →
 *   {"type": "done", ...submission payload} with "status" ("graded" or "failed"), "score",
 *   "max_score", "error", "tests" (each also with "message", "error", "explanation", "hint").
 * "notebook" is the notebook's name without ".ipynb"; "grade_id" is the test cell's
 * `metadata.nbgrader.grade_id`. Hidden tests are shown as passed/failed only.
 */

export type RunKind = 'check' | 'submission';
export type RunStatus = 'queued' | 'started' | 'graded' | 'failed';

export interface ITestResult {
  notebook: string | null;
  gradeId: string;
  passed: boolean;
  hidden: boolean;
  points: number | null;
  maxPoints: number | null;
  /** What went wrong (visible tests only). */
  message: string | null;
  /** The error's explanation for learners (visible tests only). */
  explanation: string | null;
  /** The instructor's hint (visible tests only). */
  hint: string | null;
}

export interface IRunState {
  id: string;
  kind: RunKind;
  status: RunStatus;
  /** In arrival order, one per (notebook, grade id). */
  tests: ITestResult[];
  score: number | null;
  maxScore: number | null;
  /** Why the run failed (status "failed"). */
  error: string | null;
  /** A passing problem with the live results (an upstream error the server retries). */
  notice: string | null;
  needsManualGrade: boolean;
  limitMessages: string[];
}

export function initialRun(id: string, kind: RunKind): IRunState {
  return {
    id,
    kind,
    status: 'queued',
    tests: [],
    score: null,
    maxScore: null,
    error: null,
    notice: null,
    needsManualGrade: false,
    limitMessages: []
  };
}

/** True once nothing more will happen to the run. */
export function isFinished(state: IRunState): boolean {
  return state.status === 'graded' || state.status === 'failed';
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && isFinite(value) ? value : null;
}

const HIDDEN_PASSED = 'Passed.';
const HIDDEN_FAILED = 'Failed: this cell has hidden tests, so no details are shown.';
const HIDDEN_CHECK_NOTE = ' Hidden tests run only when the assignment is graded.';

/**
 * A test result safe to show: hidden tests keep only passed/failed (no message, explanation,
 * hint, points), whatever the server sent.
 */
export function redact(test: ITestResult, kind: RunKind = 'submission'): ITestResult {
  if (!test.hidden) {
    return test;
  }
  return {
    notebook: test.notebook,
    gradeId: test.gradeId,
    passed: test.passed,
    hidden: true,
    points: null,
    maxPoints: null,
    message: (test.passed ? HIDDEN_PASSED : HIDDEN_FAILED) + (kind === 'check' ? HIDDEN_CHECK_NOTE : ''),
    explanation: null,
    hint: null
  };
}

/** Parse one test entry of an event or of the final payload; null if it has no grade id. */
export function parseTest(raw: unknown): ITestResult | null {
  if (typeof raw !== 'object' || raw === null) {
    return null;
  }
  const t = raw as { [key: string]: unknown };
  const gradeId = str(t.grade_id);
  if (gradeId === null) {
    return null;
  }
  const test: ITestResult = {
    notebook: str(t.notebook),
    gradeId,
    passed: t.passed === true,
    hidden: t.hidden === true,
    points: num(t.points),
    maxPoints: num(t.max_points),
    message: str(t.message),
    explanation: str(t.explanation),
    hint: str(t.hint)
  };
  if (test.message === null && !test.passed && str(t.error) !== null) {
    test.message = str(t.error);
  }
  return test;
}

function testKey(test: ITestResult): string {
  return `${test.notebook ?? ''}\u0000${test.gradeId}`;
}

/** Put a test into the list: replace the one with the same (notebook, grade id), or append. */
function upsert(tests: ITestResult[], test: ITestResult): ITestResult[] {
  const key = testKey(test);
  const index = tests.findIndex(t => testKey(t) === key);
  if (index === -1) {
    return [...tests, test];
  }
  const next = tests.slice();
  // A later, richer entry (the final payload has messages and hints) wins; keep known values.
  const old = tests[index];
  next[index] = {
    ...test,
    points: test.points ?? old.points,
    maxPoints: test.maxPoints ?? old.maxPoints,
    message: test.message ?? (test.passed === old.passed ? old.message : null),
    explanation: test.explanation ?? (test.passed === old.passed ? old.explanation : null),
    hint: test.hint ?? (test.passed === old.passed ? old.hint : null)
  };
  return next;
}

/** Apply one upstream event to a run; returns a new state (the old one is not changed). */
export function applyEvent(state: IRunState, event: unknown): IRunState {
  if (typeof event !== 'object' || event === null) {
    return state;
  }
  const e = event as { [key: string]: unknown };
  if (state.notice !== null && typeof e.type === 'string') {
    state = { ...state, notice: null }; // events flow again
  }
  switch (e.type) {
    case 'queued':
      return isFinished(state) || state.status === 'started' ? state : { ...state, status: 'queued' };
    case 'started':
      return isFinished(state) ? state : { ...state, status: 'started' };
    case 'test': {
      const test = parseTest(e);
      if (!test) {
        return state;
      }
      const status = isFinished(state) ? state.status : 'started';
      return { ...state, status, tests: upsert(state.tests, test) };
    }
    case 'done':
    case 'failed': {
      let tests = state.tests;
      if (Array.isArray(e.tests)) {
        for (const raw of e.tests) {
          const test = parseTest(raw);
          if (test) {
            tests = upsert(tests, test);
          }
        }
      }
      const failed = e.type === 'failed' || e.status === 'failed';
      return {
        ...state,
        status: failed ? 'failed' : 'graded',
        tests,
        score: num(e.score) ?? state.score,
        maxScore: num(e.max_score) ?? state.maxScore,
        error: failed ? str(e.error) ?? 'Grading failed.' : str(e.error),
        needsManualGrade: e.needs_manual_grade === true,
        limitMessages: Array.isArray(e.limit_messages)
          ? e.limit_messages.filter((m): m is string => typeof m === 'string')
          : state.limitMessages
      };
    }
    default:
      return state;
  }
}

/**
 * A stream error frame for the run's topic: the live results are interrupted (the server opens
 * the upstream again), the run goes on.
 */
export function applyStreamError(state: IRunState, message: string): IRunState {
  if (isFinished(state)) {
    return state;
  }
  return { ...state, notice: `Live results interrupted (${message}); reconnecting…` };
}

/** The run cannot be followed any more (its stream ended without a result). */
export function failRun(state: IRunState, message: string): IRunState {
  if (isFinished(state)) {
    return state;
  }
  return { ...state, status: 'failed', error: message, notice: null };
}

/** "basics" for "intro-python/01-basics/basics.ipynb". */
export function notebookStem(path: string): string {
  const name = path.split('/').pop() ?? path;
  return name.replace(/\.ipynb$/i, '');
}

/**
 * The (redacted) results for one notebook, by grade id. Tests without a notebook name count
 * for every notebook of the assignment.
 */
export function resultsForNotebook(state: IRunState, notebookPath: string): Map<string, ITestResult> {
  const stem = notebookStem(notebookPath);
  const out = new Map<string, ITestResult>();
  for (const test of state.tests) {
    if (test.notebook === null || test.notebook === stem) {
      out.set(test.gradeId, redact(test, state.kind));
    }
  }
  return out;
}

export interface ISummary {
  passed: number;
  failed: number;
  total: number;
  text: string;
}

/** "Checking…", "3 of 5 tests passed · score 6 / 10", "Grading failed: …". */
export function summarize(state: IRunState, notebookPath?: string): ISummary {
  const tests = notebookPath
    ? [...resultsForNotebook(state, notebookPath).values()]
    : state.tests;
  const passed = tests.filter(t => t.passed).length;
  const total = tests.length;
  const failed = total - passed;
  const verb = state.kind === 'check' ? 'Check' : 'Grading';
  let text: string;
  if (state.status === 'queued') {
    text = `${verb} queued…`;
  } else if (state.status === 'started') {
    text = `${state.kind === 'check' ? 'Checking' : 'Grading'}… ${passed} of ${total} test${total === 1 ? '' : 's'} passed so far`;
  } else if (state.status === 'failed') {
    text = `${verb} failed: ${state.error ?? 'unknown error'}`;
  } else {
    text = `${passed} of ${total} test${total === 1 ? '' : 's'} passed`;
    if (total === 0 && state.error) {
      text = `No test results: ${state.error}`;
    }
    if (state.kind === 'submission' && state.score !== null) {
      const value = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));
      text += ` · score ${value(state.score)}` + (state.maxScore !== null ? ` / ${value(state.maxScore)}` : '');
    }
    if (state.needsManualGrade) {
      text += ' · some answers wait for manual grading';
    }
  }
  if (state.notice && !isFinished(state)) {
    text += ` · ${state.notice}`;
  }
  return { passed, failed, total, text };
}

/** The lines of a marker: the message, then the explanation, then "Hint: …". */
export function markerLines(test: ITestResult): string[] {
  const lines: string[] = [];
  if (test.message) {
    lines.push(test.message);
  } else if (!test.passed) {
    lines.push('Failed.');
  }
  if (test.explanation) {
    lines.push(test.explanation);
  }
  if (test.hint) {
    lines.push(`Hint: ${test.hint}`);
  }
  return lines;
}

/** "2 / 2 points", or "" for hidden tests and unknown points. */
export function pointsText(test: ITestResult): string {
  if (test.hidden || test.points === null || test.maxPoints === null) {
    return '';
  }
  const value = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));
  return `${value(test.points)} / ${value(test.maxPoints)} point${test.maxPoints === 1 ? '' : 's'}`;
}
