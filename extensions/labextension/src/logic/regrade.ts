/**
 * Regrades (extensions/feedback/regrades.py): an instructor or TA grades an assignment again after
 * fixing a test. `POST courses/{c}/assignments/{a}/regrades` → 202 `{id, status, total}`, then
 * `GET .../regrades/{id}` until `status` is `done`: progress (total, done, failed) and the changes
 * (learner, submission, score before → after). Parsing, progress text, polling decisions and the
 * list of changes live here, without React, so they are tested on their own.
 */

import { count, numberOrNull, records, text } from './values';

export type RegradeStatus = 'queueing' | 'running' | 'done';

export interface IScore {
  score: number | null;
  max_score: number | null;
}

export interface IRegradeChange {
  learner: string;
  submission: string;
  job: string | null;
  before: IScore;
  after: IScore;
}

export interface IRegradeFailure {
  learner: string;
  submission: string;
  error: string;
}

export interface IRegrade {
  id: string;
  course: string;
  assignment: string;
  requested_by: string;
  created_at: string | null;
  status: RegradeStatus;
  total: number;
  done: number;
  failed: number;
  changes: IRegradeChange[];
  unchanged: number;
  failures: IRegradeFailure[];
  skipped: number;
}

const STATUSES: ReadonlyArray<string> = ['queueing', 'running', 'done'];
/** How often the panel asks for progress while a regrade runs. */
export const REGRADE_POLL_MS = 1500;

function score(value: unknown): IScore {
  const raw = (value && typeof value === 'object' ? value : {}) as { [key: string]: unknown };
  return { score: numberOrNull(raw.score), max_score: numberOrNull(raw.max_score) };
}

/** Validate a regrade answer of the feedback service; null when it is not one. */
export function parseRegrade(body: unknown): IRegrade | null {
  if (!body || typeof body !== 'object') {
    return null;
  }
  const raw = body as { [key: string]: unknown };
  if (typeof raw.id !== 'string' || !raw.id || !STATUSES.includes(text(raw.status))) {
    return null;
  }
  const changes = records(raw.changes)
    .filter(c => typeof c.learner === 'string')
    .map(c => ({
      learner: text(c.learner),
      submission: text(c.submission),
      job: typeof c.job === 'string' ? c.job : null,
      before: score(c.before),
      after: score(c.after)
    }));
  const failures = records(raw.failures)
    .filter(f => typeof f.learner === 'string')
    .map(f => ({ learner: text(f.learner), submission: text(f.submission), error: text(f.error, 'failed') }));
  return {
    id: raw.id,
    course: text(raw.course),
    assignment: text(raw.assignment),
    requested_by: text(raw.requested_by),
    created_at: typeof raw.created_at === 'string' ? raw.created_at : null,
    status: raw.status as RegradeStatus,
    total: count(raw.total),
    done: count(raw.done),
    failed: count(raw.failed),
    changes: changes.sort((a, b) => a.learner.localeCompare(b.learner)),
    unchanged: count(raw.unchanged),
    failures,
    skipped: Array.isArray(raw.skipped) ? raw.skipped.length : count(raw.skipped)
  };
}

/** The regrades endpoint of an assignment (relative to the feedback service's API). */
export function regradesPath(course: string, assignment: string, id?: string): string {
  const base = `courses/${encodeURIComponent(course)}/assignments/${encodeURIComponent(assignment)}/regrades`;
  return id ? `${base}/${encodeURIComponent(id)}` : base;
}

/** Whether the panel should keep asking for progress. */
export function shouldPoll(regrade: IRegrade | null): boolean {
  return regrade !== null && regrade.status !== 'done';
}

/** 0–100, for a progress bar; a regrade of nobody is complete. */
export function progressPercent(regrade: IRegrade): number {
  if (regrade.total === 0) {
    return 100;
  }
  return Math.min(100, Math.round((100 * regrade.done) / regrade.total));
}

/** "12 of 50 graded, 1 failed" while it runs; the outcome once done. */
export function progressText(regrade: IRegrade): string {
  const failed = regrade.failed ? `, ${regrade.failed} failed` : '';
  if (regrade.status !== 'done') {
    const queueing = regrade.status === 'queueing' ? ' (queueing)' : '';
    return `${regrade.done} of ${regrade.total} graded${failed}${queueing}`;
  }
  if (regrade.total === 0) {
    return 'No autograded submissions to regrade.';
  }
  const changed = regrade.changes.length;
  const scores = changed === 0 ? 'no score changed' : changed === 1 ? '1 score changed' : `${changed} scores changed`;
  return `Regraded ${regrade.total - regrade.failed} of ${regrade.total}: ${scores}${failed}.`;
}

function formatNumber(value: number | null): string {
  if (value === null) {
    return '–';
  }
  return Number.isInteger(value) ? String(value) : value.toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
}

/** "5 → 7 / 10" (the maximum once when it did not change, or was not known before). */
export function changeText(change: IRegradeChange): string {
  const before = formatNumber(change.before.score);
  const after = formatNumber(change.after.score);
  if (change.before.max_score === null || change.before.max_score === change.after.max_score) {
    return `${before} → ${after} / ${formatNumber(change.after.max_score)}`;
  }
  return `${before} / ${formatNumber(change.before.max_score)} → ${after} / ${formatNumber(change.after.max_score)}`;
}

/** +2, −1.5, or "" when either score is unknown. */
export function changeDelta(change: IRegradeChange): string {
  if (change.before.score === null || change.after.score === null) {
    return '';
  }
  const delta = change.after.score - change.before.score;
  if (delta === 0) {
    return '±0';
  }
  return `${delta > 0 ? '+' : '−'}${formatNumber(Math.abs(delta))}`;
}

/** The newest regrade of a list answer (`{"items": [...]}`, newest first), or null. */
export function latestRegrade(body: unknown): IRegrade | null {
  const items = body && typeof body === 'object' ? (body as { items?: unknown }).items : null;
  if (!Array.isArray(items)) {
    return null;
  }
  for (const item of items) {
    const parsed = parseRegrade(item);
    if (parsed) {
      return parsed;
    }
  }
  return null;
}
