/**
 * LMS links of a course (LTI 1.3, extensions/courses/lti.py), as the Instructor panel shows them:
 * `GET courses/{c}/lti` (the linked LMS courses), `GET courses/{c}/lti/scores?status=…` (the grade
 * passback outbox, with the course's `counts`), `POST courses/{c}/lti/scores/retry` and
 * `POST courses/{c}/lti/roster-sync`. Parsing and the texts live here, without React.
 */

import { formatScore } from './format';
import { count, JsonObject, numberOrNull, records, text } from './values';

export type ScorePolicy = 'latest' | 'best';

export interface ILmsLink {
  id: string;
  contextId: string;
  title: string;
  rosterSync: boolean;
  gradePassback: boolean;
  scorePolicy: ScorePolicy;
  lastRosterSync: string | null;
}

export interface IPassbackScore {
  id: string;
  user: string;
  assignment: string;
  score: number | null;
  maxScore: number | null;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  lastError: string;
}

export interface IPassbackCounts {
  pending: number;
  sent: number;
  failed: number;
}

type Raw = JsonObject;

function listOf(body: unknown, key: string): Raw[] {
  return records(body && typeof body === 'object' ? (body as Raw)[key] : null);
}

/** The LMS courses linked to a course (`{"items": [...]}`); entries without an id are dropped. */
export function parseLinks(body: unknown): ILmsLink[] {
  return listOf(body, 'items')
    .filter(r => typeof r.id === 'string' && r.id !== '')
    .map(r => ({
      id: text(r.id),
      contextId: text(r.context_id),
      title: text(r.title),
      rosterSync: r.roster_sync === true,
      gradePassback: r.grade_passback === true,
      scorePolicy: r.score_policy === 'best' ? 'best' : 'latest',
      lastRosterSync: typeof r.last_roster_sync === 'string' ? r.last_roster_sync : null
    }));
}

const STATUSES: ReadonlyArray<string> = ['pending', 'sent', 'failed'];

/** The outbox answer: its rows and the course's counts per status. */
export function parseScores(body: unknown): { items: IPassbackScore[]; counts: IPassbackCounts } {
  const items = listOf(body, 'items')
    .filter(r => typeof r.id === 'string' && STATUSES.includes(text(r.status)))
    .map(r => ({
      id: text(r.id),
      user: text(r.user),
      assignment: text(r.assignment_id),
      score: numberOrNull(r.score),
      maxScore: numberOrNull(r.max_score),
      status: text(r.status) as IPassbackScore['status'],
      attempts: count(r.attempts),
      lastError: text(r.last_error)
    }));
  const raw = (body && typeof body === 'object' ? (body as Raw).counts : null) as Raw | null;
  const counts = raw && typeof raw === 'object'
    ? { pending: count(raw.pending), sent: count(raw.sent), failed: count(raw.failed) }
    : {
        pending: items.filter(i => i.status === 'pending').length,
        sent: items.filter(i => i.status === 'sent').length,
        failed: items.filter(i => i.status === 'failed').length
      };
  return { items, counts };
}

/** The course's LTI endpoint (relative to the courses service's API). */
export function lmsPath(course: string, rest = ''): string {
  return `courses/${encodeURIComponent(course)}/lti${rest ? `/${rest}` : ''}`;
}

/** "12 sent to the LMS gradebook, 1 waiting, 2 failed"; what is zero is left out (but "sent"). */
export function passbackSummary(counts: IPassbackCounts): string {
  const parts = [`${counts.sent} sent to the LMS gradebook`];
  if (counts.pending) {
    parts.push(`${counts.pending} waiting`);
  }
  if (counts.failed) {
    parts.push(`${counts.failed} failed`);
  }
  return parts.join(', ');
}

/** "bea, 01-basics: 6 / 10 (5 tries)" for a score that did not reach the LMS. */
export function scoreLine(score: IPassbackScore): string {
  const tries = score.attempts === 1 ? '1 try' : `${score.attempts} tries`;
  return `${score.user}, ${score.assignment}: ${formatScore(score.score, score.maxScore)} (${tries})`;
}

/** The newest error among the rows still waiting: why scores are not in the gradebook yet. */
export function waitingReason(items: IPassbackScore[]): string {
  const waiting = items.filter(i => i.status === 'pending' && i.attempts > 0 && i.lastError);
  return waiting.length ? waiting[waiting.length - 1].lastError : '';
}

/**
 * The roster-sync answer (`{"contexts": {id: {enrolled, updated, inactive, dropped: [names]}}}`)
 * as one sentence: "Roster synced: 1 enrolled, 2 no longer listed (bea, tim)."
 */
export function rosterSyncText(body: unknown): string {
  const contexts = body && typeof body === 'object' ? (body as Raw).contexts : null;
  if (!contexts || typeof contexts !== 'object') {
    return 'Roster synced.';
  }
  let enrolled = 0;
  const dropped: string[] = [];
  for (const value of Object.values(contexts as Raw)) {
    const result = (value && typeof value === 'object' ? value : {}) as Raw;
    enrolled += count(result.enrolled);
    if (Array.isArray(result.dropped)) {
      dropped.push(...result.dropped.filter((n): n is string => typeof n === 'string'));
    }
  }
  const parts = [`${enrolled} enrolled`];
  const names = [...new Set(dropped)].sort();
  if (names.length) {
    parts.push(`${names.length} no longer listed (${names.join(', ')})`);
  }
  return `Roster synced: ${parts.join(', ')}.`;
}
