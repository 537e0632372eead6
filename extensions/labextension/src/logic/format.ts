/** Formatting of assignment facts: attempts left, due dates, scores, statuses. */

/** Attempts left, or null when the number of attempts is unlimited. Never negative. */
export function attemptsLeft(
  maxAttempts: number | null | undefined,
  attemptsUsed: number | null | undefined
): number | null {
  if (maxAttempts === null || maxAttempts === undefined) {
    return null;
  }
  return Math.max(0, maxAttempts - (attemptsUsed ?? 0));
}

/** "2 of 3 attempts left", "no attempts left", "unlimited attempts". */
export function formatAttemptsLeft(
  maxAttempts: number | null | undefined,
  attemptsUsed: number | null | undefined
): string {
  const left = attemptsLeft(maxAttempts, attemptsUsed);
  if (left === null) {
    return 'unlimited attempts';
  }
  if (left === 0) {
    return 'no attempts left';
  }
  return `${left} of ${maxAttempts} attempt${maxAttempts === 1 ? '' : 's'} left`;
}

/** Whether the learner may still submit, as far as attempts go. */
export function canSubmit(
  maxAttempts: number | null | undefined,
  attemptsUsed: number | null | undefined
): boolean {
  const left = attemptsLeft(maxAttempts, attemptsUsed);
  return left === null || left > 0;
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** A rough duration: "45 minutes", "3 hours", "2 days". */
export function formatDuration(ms: number): string {
  const minutes = Math.round(Math.abs(ms) / 60000);
  if (minutes < 60) {
    return plural(Math.max(minutes, 1), 'minute');
  }
  const hours = Math.round(minutes / 60);
  if (hours < 48) {
    return plural(hours, 'hour');
  }
  return plural(Math.round(hours / 24), 'day');
}

export interface IDueInfo {
  /** What to show: "due in 2 days", "overdue by 3 hours", "no due date". */
  text: string;
  /** none | later | soon (within 48 h) | overdue */
  state: 'none' | 'later' | 'soon' | 'overdue';
  /** The due date in the reader's locale, for a tooltip; empty when there is none. */
  title: string;
}

/**
 * Describe a due date relative to `now`.
 *
 * @param due ISO 8601 date-time (UTC, as the services send it) or null
 * @param hardDeadline whether submissions after the date are refused
 */
export function formatDue(
  due: string | null | undefined,
  now: Date = new Date(),
  hardDeadline = false
): IDueInfo {
  if (!due) {
    return { text: 'no due date', state: 'none', title: '' };
  }
  const at = new Date(due);
  if (isNaN(at.getTime())) {
    return { text: `due ${due}`, state: 'later', title: due };
  }
  const diff = at.getTime() - now.getTime();
  const title = at.toLocaleString();
  if (diff < 0) {
    const text = `overdue by ${formatDuration(diff)}` + (hardDeadline ? ' (closed)' : '');
    return { text, state: 'overdue', title };
  }
  const state = diff <= 48 * 3600 * 1000 ? 'soon' : 'later';
  return { text: `due in ${formatDuration(diff)}`, state, title };
}

/** "7.5 / 10", "– / 10" (not graded), "7.5" (no maximum). */
export function formatScore(
  score: number | null | undefined,
  maxScore: number | null | undefined
): string {
  const value = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1).replace(/\.0$/, ''));
  const left = score === null || score === undefined ? '–' : value(score);
  if (maxScore === null || maxScore === undefined) {
    return left;
  }
  return `${left} / ${value(maxScore)}`;
}

const STATUS_LABELS: { [status: string]: string } = {
  'not fetched': 'Not fetched',
  fetched: 'Fetched',
  submitted: 'Submitted',
  graded: 'Graded'
};

/** The assignment status as a label. */
export function statusLabel(status: string | null | undefined): string {
  if (!status) {
    return 'Unknown';
  }
  return STATUS_LABELS[status] ?? status.charAt(0).toUpperCase() + status.slice(1);
}

/** A CSS/id-safe token from an id ("intro-python", "a1/cell 3" → "a1-cell-3"). */
export function slug(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]+/g, '-');
}
