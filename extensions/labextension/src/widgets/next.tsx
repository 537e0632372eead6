/**
 * The "Next for you" panel: what to do next (with the reason for each), courses to take next,
 * and mastery per skill with its level (the recommender service).
 */
import { ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import { Learnhub } from '../learnhub';
import { formatDue, slug } from '../logic/format';
import { itemsOf } from '../logic/query';
import { recommendationsOf } from '../logic/recommendations';
import { ErrorMessage, Loading, Section, useAsync } from './common';

interface IMastery {
  skill: string;
  title: string;
  estimate: number;
  level: string;
  attempts: number;
  correct: number;
}

/** The recommender's levels, weakest first (recommender/tracing.py MASTERY_LEVELS). */
const LEVEL_ORDER = ['not started', 'attempted', 'familiar', 'proficient', 'mastered'];

export class NextPanel extends ReactWidget {
  constructor(private readonly learnhub: Learnhub) {
    super();
    this.addClass('lh-panel');
    this.addClass('lh-next-panel');
  }

  /** What to do next changes with every graded answer: opening the panel shows it afresh. */
  protected onAfterShow(): void {
    this.refresh();
  }

  /** Reload everything (the panel opened, or a "recommendations" notification arrived). */
  refresh(): void {
    this._version += 1;
    this.update();
  }

  render(): JSX.Element {
    return <NextView learnhub={this.learnhub} version={this._version} />;
  }

  private _version = 0;
}

function NextView(props: { learnhub: Learnhub; version: number }): JSX.Element {
  const api = props.learnhub.api;
  const [tick, setTick] = React.useState(0);
  const version = props.version + tick;
  const steps = useAsync(
    () => api.service('recommender', 'GET', 'recommendations?kind=exercise&limit=8').then(recommendationsOf),
    [version]
  );
  const courses = useAsync(
    () => api.service('recommender', 'GET', 'recommendations?kind=course&limit=5').then(recommendationsOf),
    [version]
  );
  const mastery = useAsync(
    () => api.service('recommender', 'GET', 'mastery').then(b => itemsOf<IMastery>(b)),
    [version]
  );
  return (
    <div className="lh-panel-body" data-testid="learnhub-next">
      <div className="lh-panel-heading">
        <h2 className="lh-panel-title">Next for you</h2>
        <button
          type="button"
          className="lh-button lh-button-small"
          data-testid="learnhub-next-refresh"
          aria-label="Refresh recommendations"
          onClick={() => setTick(t => t + 1)}
        >
          Refresh
        </button>
      </div>
      <Section title="What to do next" testid="learnhub-recommendations">
        {steps.loading && !steps.data && <Loading testid="learnhub-recommendations-loading" />}
        {steps.error && (
          <ErrorMessage testid="learnhub-recommendations-error" message={steps.error} onRetry={steps.reload} />
        )}
        {steps.data && steps.data.length === 0 && (
          <p className="lh-empty">Nothing to recommend yet: enroll in a course and fetch an assignment.</p>
        )}
        {steps.data && steps.data.length > 0 && (
          <ol className="lh-list">
            {steps.data.map((r, i) => (
              <li
                key={`${r.course ?? ''}/${r.item}`}
                className={`lh-card${r.ready === false ? ' lh-not-ready' : ''}`}
                data-testid={`learnhub-recommendation-${i + 1}`}
                data-item={r.item}
                data-reason-code={r.reason_code ?? undefined}
              >
                <div className="lh-card-title">{r.title || r.item}</div>
                <div className="lh-card-meta">
                  {r.course && <span className="lh-tag">{r.course}</span>}
                  {r.ready === false && <span className="lh-badge">later</span>}
                  {r.due && <span className="lh-note">{formatDue(r.due).text}</span>}
                </div>
                <p className="lh-reason" data-testid={`learnhub-recommendation-reason-${i + 1}`}>
                  {r.reason}
                </p>
              </li>
            ))}
          </ol>
        )}
      </Section>
      <Section title="Mastery" testid="learnhub-mastery">
        {mastery.loading && !mastery.data && <Loading testid="learnhub-mastery-loading" />}
        {mastery.error && (
          <ErrorMessage testid="learnhub-mastery-error" message={mastery.error} onRetry={mastery.reload} />
        )}
        {mastery.data && mastery.data.length === 0 && <p className="lh-empty">No skills to show yet.</p>}
        {mastery.data && mastery.data.length > 0 && (
          <ul className="lh-list lh-mastery-list">
            {mastery.data.map(m => {
              const percent = Math.round(Math.min(Math.max(m.estimate ?? 0, 0), 1) * 100);
              const levelIndex = Math.max(0, LEVEL_ORDER.indexOf(m.level));
              return (
                <li key={m.skill} className="lh-mastery" data-testid={`learnhub-mastery-${slug(m.skill)}`}>
                  <div className="lh-mastery-head">
                    <span className="lh-mastery-title">{m.title || m.skill}</span>
                    <span
                      className={`lh-level lh-level-${levelIndex}`}
                      data-testid={`learnhub-mastery-level-${slug(m.skill)}`}
                    >
                      {m.level}
                    </span>
                  </div>
                  <div
                    className="lh-meter"
                    role="meter"
                    aria-label={`${m.title || m.skill}: ${m.level}`}
                    aria-valuemin={0}
                    aria-valuemax={100}
                    aria-valuenow={percent}
                    title={`estimated ${percent} % chance of success; ${m.correct} of ${m.attempts} correct`}
                  >
                    <div className="lh-meter-fill" style={{ width: `${percent}%` }} />
                  </div>
                </li>
              );
            })}
          </ul>
        )}
      </Section>
      <Section title="Courses for you" testid="learnhub-course-recommendations">
        {courses.loading && !courses.data && <Loading testid="learnhub-course-recommendations-loading" />}
        {courses.error && (
          <ErrorMessage
            testid="learnhub-course-recommendations-error"
            message={courses.error}
            onRetry={courses.reload}
          />
        )}
        {courses.data && courses.data.length === 0 && <p className="lh-empty">No other course to suggest.</p>}
        {courses.data && courses.data.length > 0 && (
          <ul className="lh-list">
            {courses.data.map(r => (
              <li
                key={r.item}
                className="lh-card"
                data-testid={`learnhub-course-recommendation-${slug(r.item)}`}
                data-reason-code={r.reason_code ?? undefined}
              >
                <div className="lh-card-title">{r.title || r.item}</div>
                <p className="lh-reason">{r.reason}</p>
              </li>
            ))}
          </ul>
        )}
      </Section>
    </div>
  );
}
