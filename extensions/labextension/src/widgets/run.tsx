/** The live results of a check or a grading job, as a list (Courses panel, notebook summary). */
import * as React from 'react';

import { IRun } from '../learnhub';
import { markerLines, pointsText, redact, summarize } from '../logic/results';

export function RunResults(props: { run: IRun; testid: string }): JSX.Element {
  const { state } = props.run;
  const summary = summarize(state);
  return (
    <div
      className={`lh-run lh-run-${state.status}`}
      data-testid={props.testid}
      data-status={state.status}
      data-run-id={state.id}
    >
      <div className="lh-run-summary" data-testid={`${props.testid}-summary`} aria-live="polite">
        {summary.text}
      </div>
      {state.limitMessages.length > 0 && (
        <ul className="lh-run-limits">
          {state.limitMessages.map((m, i) => (
            <li key={i}>{m}</li>
          ))}
        </ul>
      )}
      {state.tests.length > 0 && (
        <ul className="lh-run-tests">
          {state.tests.map(raw => {
            const test = redact(raw, state.kind);
            const points = pointsText(test);
            return (
              <li
                key={`${test.notebook ?? ''}/${test.gradeId}`}
                className={`lh-run-test ${test.passed ? 'lh-passed' : 'lh-failed'}`}
                data-testid="learnhub-run-test"
                data-grade-id={test.gradeId}
                data-notebook={test.notebook ?? ''}
                data-status={test.passed ? 'passed' : 'failed'}
              >
                <span className="lh-run-test-icon" aria-hidden="true">
                  {test.passed ? '✓' : '✗'}
                </span>
                <span className="lh-run-test-name">
                  {test.notebook ? `${test.notebook} · ` : ''}
                  {test.gradeId}
                </span>
                <span className="lh-visually-hidden">{test.passed ? ' passed' : ' failed'}</span>
                {points && <span className="lh-run-test-points">{points}</span>}
                {!test.passed && (
                  <div className="lh-run-test-message">
                    {markerLines(test).map((line, i) => (
                      <div key={i}>{line}</div>
                    ))}
                  </div>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}
