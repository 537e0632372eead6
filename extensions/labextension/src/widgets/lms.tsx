/**
 * The Instructor panel's LMS section, for a course linked to an LMS course over LTI 1.3: what has
 * reached the LMS gradebook, the scores that are waiting or failed (and why), a button to send the
 * failed ones again, and the roster sync. Nothing is drawn for a course that no LMS links to.
 */
import * as React from 'react';

import { slug } from '../logic/format';
import {
  ILmsLink,
  IPassbackCounts,
  IPassbackScore,
  lmsPath,
  parseLinks,
  parseScores,
  passbackSummary,
  rosterSyncText,
  scoreLine,
  waitingReason
} from '../logic/lms';
import { Learnhub } from '../learnhub';
import { ActionButton, ErrorMessage, Section, useAsync, useInterval } from './common';

/** How often the section looks at the outbox again: often while scores are on their way. */
const WAITING_POLL_MS = 5000;
const IDLE_POLL_MS = 30000;
/** Failed scores listed at the most (the counts are the course's); the API's page limit. */
const SCORES_SHOWN = 200;

interface IPassback {
  counts: IPassbackCounts;
  failed: IPassbackScore[];
  waiting: IPassbackScore[];
}

async function loadPassback(learnhub: Learnhub, courseId: string): Promise<IPassback> {
  const [failed, waiting] = await Promise.all([
    learnhub.api.service('courses', 'GET', `${lmsPath(courseId, 'scores')}?status=failed&limit=${SCORES_SHOWN}`),
    learnhub.api.service('courses', 'GET', `${lmsPath(courseId, 'scores')}?status=pending&limit=${SCORES_SHOWN}`)
  ]);
  const failedRows = parseScores(failed);
  return { counts: failedRows.counts, failed: failedRows.items, waiting: parseScores(waiting).items };
}

export function LmsSection(props: { learnhub: Learnhub; courseId: string; instructor: boolean }): JSX.Element | null {
  const { learnhub, courseId, instructor } = props;
  const cid = slug(courseId);
  const links = useAsync(
    () => learnhub.api.service('courses', 'GET', lmsPath(courseId)).then(parseLinks),
    [courseId]
  );
  const linked = links.data ?? [];
  const passes = linked.some(l => l.gradePassback);
  const passback = useAsync(
    () => (passes ? loadPassback(learnhub, courseId) : Promise.resolve(null)),
    [courseId, passes]
  );
  const [message, setMessage] = React.useState<string | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const onTheirWay = !!passback.data && passback.data.counts.pending > 0;
  useInterval(passback.reload, passes ? (onTheirWay ? WAITING_POLL_MS : IDLE_POLL_MS) : null);

  if (!links.data && !links.error) {
    return null; // not known yet; most courses have no LMS, so no spinner for them
  }
  if (links.error) {
    return (
      <Section title="LMS" testid={`learnhub-lms-${cid}`}>
        <ErrorMessage testid={`learnhub-lms-error-${cid}`} message={links.error} onRetry={links.reload} />
      </Section>
    );
  }
  if (linked.length === 0) {
    return null;
  }
  const sendAgain = async () => {
    setError(null);
    const answer = await learnhub.api.service<{ requeued: number }>('courses', 'POST', lmsPath(courseId, 'scores/retry'));
    const n = answer.requeued ?? 0;
    setMessage(n === 1 ? '1 score is on its way again.' : `${n} scores are on their way again.`);
    passback.reload();
  };
  const syncRoster = async () => {
    setError(null);
    const answer = await learnhub.api.service('courses', 'POST', lmsPath(courseId, 'roster-sync'));
    setMessage(rosterSyncText(answer));
    links.reload();
  };
  const data = passback.data;
  const reason = data ? waitingReason(data.waiting) : '';
  return (
    <Section title="LMS" testid={`learnhub-lms-${cid}`}>
      <ul className="lh-list">
        {linked.map((link: ILmsLink) => (
          <li key={link.id} className="lh-card" data-testid={`learnhub-lms-link-${cid}-${slug(link.contextId)}`}>
            <div className="lh-card-meta">
              <span className="lh-tag">{link.title || link.contextId}</span>
              <span className="lh-hint">
                {link.gradePassback
                  ? `Grades go to the LMS gradebook (${link.scorePolicy === 'best' ? 'best' : 'latest'} score).`
                  : 'No grade passback.'}
              </span>
            </div>
          </li>
        ))}
      </ul>
      {passback.error && (
        <ErrorMessage testid={`learnhub-lms-scores-error-${cid}`} message={passback.error} onRetry={passback.reload} />
      )}
      {data && (
        <div className="lh-lms-passback" data-testid={`learnhub-lms-passback-${cid}`} aria-live="polite">
          <p data-testid={`learnhub-lms-summary-${cid}`}>{passbackSummary(data.counts)}.</p>
          {reason && (
            <p className="lh-hint" data-testid={`learnhub-lms-waiting-${cid}`}>
              Waiting for the LMS: {reason}
            </p>
          )}
          {data.failed.length > 0 && (
            <ul className="lh-list" aria-label="Scores that did not reach the LMS">
              {data.failed.map(s => (
                <li key={s.id} className="lh-error-text" data-testid={`learnhub-lms-failed-${cid}-${slug(s.user)}`}>
                  {scoreLine(s)}
                  {s.lastError ? `: ${s.lastError}` : ''}
                </li>
              ))}
            </ul>
          )}
          {data.counts.failed > data.failed.length && (
            <p className="lh-hint">…and {data.counts.failed - data.failed.length} more failed scores.</p>
          )}
        </div>
      )}
      {message && (
        <p className="lh-hint" data-testid={`learnhub-lms-message-${cid}`} aria-live="polite">
          {message}
        </p>
      )}
      {error && <ErrorMessage testid={`learnhub-lms-action-error-${cid}`} message={error} />}
      <div className="lh-links">
        {instructor && data && data.counts.failed > 0 && (
            <ActionButton
              testid={`learnhub-lms-retry-${cid}`}
              label="Send failed scores again"
              busyLabel="Sending…"
              onClick={sendAgain}
              onError={setError}
            />
          )}
        {instructor && linked.some(l => l.rosterSync) && (
            <ActionButton
              testid={`learnhub-lms-roster-sync-${cid}`}
              label="Sync roster from the LMS"
              busyLabel="Syncing…"
              onClick={syncRoster}
              onError={setError}
            />
          )}
        {passes && (
          <button
            type="button"
            className="lh-button lh-button-small"
            data-testid={`learnhub-lms-refresh-${cid}`}
            onClick={passback.reload}
          >
            Refresh
          </button>
        )}
      </div>
    </Section>
  );
}
