/**
 * The Courses panel: the catalogue (search, tag and level filters, Enroll) and "My courses" with
 * their assignments (status, due date, attempts left, score) and Fetch / Open / Submit.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import { IRun, Learnhub } from '../learnhub';
import { LearnhubError } from '../logic/errors';
import {
  canSubmit,
  formatAttemptsLeft,
  formatDue,
  formatScore,
  slug,
  statusLabel
} from '../logic/format';
import { assignmentFolder, firstNotebook, notebookPath } from '../logic/paths';
import { catalogueQuery, ICatalogueFilter, itemsOf } from '../logic/query';
import { isFinished } from '../logic/results';
import { ActionButton, ErrorMessage, Loading, Section, useAsync, useSignal } from './common';
import { RunResults } from './run';

export interface ICourse {
  id: string;
  title: string;
  description: string;
  level: string;
  tags: string[];
  status: string;
  open_enrollment: boolean;
  my_role: string | null;
}

export interface IAssignment {
  id: string;
  course_id: string;
  title: string;
  due: string | null;
  hard_deadline: boolean;
  max_attempts: number | null;
  released: boolean;
  max_score: number | null;
  notebooks: string[];
  status: string;
  attempts_used: number;
  score: number | null;
  last_submitted_at: string | null;
}

/** What the panel needs from JupyterLab. */
export interface ICoursesHost {
  learnhub: Learnhub;
  openNotebook(path: string): Promise<void>;
  /** Save the open, changed notebooks inside a folder (before submitting it). */
  saveOpenNotebooks(folder: string): Promise<void>;
  confirm(title: string, body: string, accept: string): Promise<boolean>;
}

const LEVELS = ['beginner', 'intermediate', 'advanced'];

export class CoursesPanel extends ReactWidget {
  constructor(private readonly host: ICoursesHost) {
    super();
    this.addClass('lh-panel');
    this.addClass('lh-courses-panel');
  }

  render(): JSX.Element {
    return <CoursesView host={this.host} />;
  }
}

function CoursesView(props: { host: ICoursesHost }): JSX.Element {
  const { host } = props;
  // Enrolling changes both lists: one counter reloads both.
  const [version, setVersion] = React.useState(0);
  const changed = React.useCallback(() => {
    setVersion(v => v + 1);
    void host.learnhub.refreshContext().catch(() => undefined);
  }, [host]);
  return (
    <div className="lh-panel-body" data-testid="learnhub-courses">
      <h2 className="lh-panel-title">Courses</h2>
      <MyCourses host={host} version={version} />
      <Catalogue host={host} version={version} onEnrolled={changed} />
    </div>
  );
}

function Catalogue(props: { host: ICoursesHost; version: number; onEnrolled: () => void }): JSX.Element {
  const api = props.host.learnhub.api;
  const [draft, setDraft] = React.useState<ICatalogueFilter>({ q: '', tag: '', level: '' });
  const [filter, setFilter] = React.useState<ICatalogueFilter>(draft);
  const [actionError, setActionError] = React.useState<string | null>(null);

  // Typing searches after a short pause; Enter or the button searches at once.
  React.useEffect(() => {
    const handle = setTimeout(() => setFilter(draft), 400);
    return () => clearTimeout(handle);
  }, [draft.q, draft.tag]);

  const courses = useAsync(
    () => api.service('courses', 'GET', `courses${catalogueQuery(filter)}`).then(body => itemsOf<ICourse>(body)),
    [filter.q, filter.tag, filter.level, props.version]
  );

  const enroll = async (course: ICourse) => {
    setActionError(null);
    await api.service('courses', 'POST', `courses/${encodeURIComponent(course.id)}/enrollments`, {});
    props.onEnrolled();
  };

  return (
    <Section title="Catalogue" testid="learnhub-catalogue">
      <form
        className="lh-filter"
        role="search"
        onSubmit={event => {
          event.preventDefault();
          setFilter(draft);
        }}
      >
        <input
          type="search"
          className="lh-input"
          id="learnhub-catalogue-search"
          data-testid="learnhub-catalogue-search"
          aria-label="Search courses"
          placeholder="Search courses"
          value={draft.q}
          onChange={e => setDraft({ ...draft, q: e.target.value })}
        />
        <input
          type="text"
          className="lh-input lh-input-narrow"
          id="learnhub-catalogue-tag"
          data-testid="learnhub-catalogue-tag"
          aria-label="Filter by tag"
          placeholder="Tag"
          value={draft.tag}
          onChange={e => setDraft({ ...draft, tag: e.target.value })}
        />
        <select
          className="lh-select"
          id="learnhub-catalogue-level"
          data-testid="learnhub-catalogue-level"
          aria-label="Filter by level"
          value={draft.level}
          onChange={e => {
            const next = { ...draft, level: e.target.value };
            setDraft(next);
            setFilter(next);
          }}
        >
          <option value="">All levels</option>
          {LEVELS.map(level => (
            <option key={level} value={level}>
              {level}
            </option>
          ))}
        </select>
        <button type="submit" className="lh-button" data-testid="learnhub-catalogue-submit">
          Search
        </button>
      </form>
      {actionError && <ErrorMessage testid="learnhub-catalogue-action-error" message={actionError} />}
      {courses.loading && !courses.data && <Loading testid="learnhub-catalogue-loading" />}
      {courses.error && (
        <ErrorMessage testid="learnhub-catalogue-error" message={courses.error} onRetry={courses.reload} />
      )}
      {courses.data && courses.data.length === 0 && (
        <p className="lh-empty" data-testid="learnhub-catalogue-empty">
          No course matches.
        </p>
      )}
      {courses.data && courses.data.length > 0 && (
        <ul className="lh-list" aria-label="Courses in the catalogue" aria-busy={courses.loading}>
          {courses.data.map(course => (
            <li
              key={course.id}
              className="lh-card"
              data-testid={`learnhub-catalogue-item-${slug(course.id)}`}
              data-course-id={course.id}
            >
              <div className="lh-card-title">{course.title || course.id}</div>
              <div className="lh-card-meta">
                <span className="lh-badge">{course.level}</span>
                {course.tags.map(tag => (
                  <span key={tag} className="lh-tag">
                    {tag}
                  </span>
                ))}
              </div>
              {course.description && <p className="lh-card-text">{course.description}</p>}
              <div className="lh-card-actions">
                {course.my_role ? (
                  <span className="lh-note" data-testid={`learnhub-enrolled-${slug(course.id)}`}>
                    Enrolled ({course.my_role})
                  </span>
                ) : (
                  <ActionButton
                    testid={`learnhub-enroll-${slug(course.id)}`}
                    label="Enroll"
                    busyLabel="Enrolling…"
                    primary
                    disabled={!course.open_enrollment}
                    title={course.open_enrollment ? undefined : 'Ask the course instructor to add you'}
                    ariaLabel={`Enroll in ${course.title || course.id}`}
                    onClick={() => enroll(course)}
                    onError={setActionError}
                  />
                )}
              </div>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

function MyCourses(props: { host: ICoursesHost; version: number }): JSX.Element {
  const api = props.host.learnhub.api;
  const courses = useAsync(
    () => api.service('courses', 'GET', 'courses?mine=1').then(body => itemsOf<ICourse>(body)),
    [props.version]
  );
  return (
    <Section
      title="My courses"
      testid="learnhub-my-courses"
      actions={
        <button
          type="button"
          className="lh-button lh-button-small"
          data-testid="learnhub-my-courses-refresh"
          aria-label="Refresh my courses"
          onClick={courses.reload}
        >
          Refresh
        </button>
      }
    >
      {courses.loading && !courses.data && <Loading testid="learnhub-my-courses-loading" />}
      {courses.error && (
        <ErrorMessage testid="learnhub-my-courses-error" message={courses.error} onRetry={courses.reload} />
      )}
      {courses.data && courses.data.length === 0 && (
        <p className="lh-empty" data-testid="learnhub-my-courses-empty">
          You are not enrolled in any course yet: enroll in one from the catalogue below.
        </p>
      )}
      {courses.data?.map(course => (
        <MyCourse key={course.id} host={props.host} course={course} version={props.version} />
      ))}
    </Section>
  );
}

function MyCourse(props: { host: ICoursesHost; course: ICourse; version: number }): JSX.Element {
  const { host, course } = props;
  const api = host.learnhub.api;
  const assignments = useAsync(
    () =>
      api
        .service('courses', 'GET', `courses/${encodeURIComponent(course.id)}/assignments?limit=200`)
        .then(body => itemsOf<IAssignment>(body)),
    [course.id, props.version]
  );
  const cid = slug(course.id);
  return (
    <div className="lh-course" data-testid={`learnhub-my-course-${cid}`} data-course-id={course.id}>
      <h4 className="lh-course-title">
        {course.title || course.id}
        {course.my_role && course.my_role !== 'learner' && <span className="lh-badge">{course.my_role}</span>}
      </h4>
      {assignments.loading && !assignments.data && <Loading testid={`learnhub-assignments-loading-${cid}`} />}
      {assignments.error && (
        <ErrorMessage
          testid={`learnhub-assignments-error-${cid}`}
          message={assignments.error}
          onRetry={assignments.reload}
        />
      )}
      {assignments.data && assignments.data.length === 0 && <p className="lh-empty">No assignment released yet.</p>}
      {assignments.data && assignments.data.length > 0 && (
        <ul className="lh-list" aria-label={`Assignments of ${course.title || course.id}`}>
          {assignments.data.map(a => (
            <AssignmentRow key={a.id} host={host} course={course} assignment={a} onChanged={assignments.reload} />
          ))}
        </ul>
      )}
    </div>
  );
}

function AssignmentRow(props: {
  host: ICoursesHost;
  course: ICourse;
  assignment: IAssignment;
  onChanged: () => void;
}): JSX.Element {
  const { host, course, assignment: a } = props;
  const learnhub = host.learnhub;
  const [error, setError] = React.useState<string | null>(null);
  const [note, setNote] = React.useState<string | null>(null);
  const [run, setRun] = React.useState<IRun | undefined>(() =>
    learnhub.runs.latest(course.id, a.id, 'submission')
  );
  const id = `${slug(course.id)}-${slug(a.id)}`;
  const serverRoot = learnhub.currentContext?.server_root ?? '';
  const folder = assignmentFolder(course.id, a.id, serverRoot);

  useSignal(learnhub.runs.changed, (_, changed) => {
    if (changed.info.course !== course.id || changed.info.assignment !== a.id || changed.state.kind !== 'submission') {
      return;
    }
    setRun({ ...changed });
    if (isFinished(changed.state)) {
      props.onChanged();
    }
  });

  const due = formatDue(a.due, new Date(), a.hard_deadline);
  const fetched = a.status !== 'not fetched';
  const mayFetch = a.released;
  const closed = a.hard_deadline && due.state === 'overdue';
  const maySubmit = fetched && canSubmit(a.max_attempts, a.attempts_used) && !closed;
  const first = firstNotebook(a.notebooks);

  const doFetch = async () => {
    setError(null);
    setNote(null);
    let path = folder;
    let notebooks: string[] = a.notebooks.map(n => notebookPath(folder, n));
    try {
      const answer = await learnhub.api.fetchAssignment(course.id, a.id);
      path = answer.path || folder;
      notebooks = (answer.notebooks ?? []).length ? answer.notebooks : a.notebooks.map(n => notebookPath(path, n));
    } catch (reason) {
      if (!(reason instanceof LearnhubError && reason.status === 409)) {
        throw reason;
      }
      // Fetched before: open what is there.
      const there = reason.details.path;
      path = typeof there === 'string' && there ? there : folder;
      notebooks = a.notebooks.map(n => notebookPath(path, n));
      setNote('Already fetched: opening your copy.');
    }
    props.onChanged();
    const nb = firstNotebook(notebooks);
    if (nb) {
      await host.openNotebook(notebookPath(path, nb));
    }
  };

  const doOpen = async () => {
    setError(null);
    if (first) {
      await host.openNotebook(notebookPath(folder, first));
    }
  };

  const doSubmit = async () => {
    setError(null);
    setNote(null);
    const ok = await host.confirm(
      `Submit ${a.title || a.id}?`,
      `Your notebooks in ${folder}/ are saved and submitted for grading. ` +
        `This uses one attempt (${formatAttemptsLeft(a.max_attempts, a.attempts_used)}).`,
      'Submit'
    );
    if (!ok) {
      return;
    }
    await host.saveOpenNotebooks(folder);
    const submission = await learnhub.api.submitAssignment(course.id, a.id);
    if (submission.grading && submission.grading.id) {
      setRun(learnhub.runs.follow(submission.grading.id, 'submission', { course: course.id, assignment: a.id }));
    } else {
      setNote(`Submitted (attempt ${submission.attempt}). It will be graded later.`);
    }
    props.onChanged();
  };

  return (
    <li
      className="lh-assignment"
      data-testid={`learnhub-assignment-${id}`}
      data-course-id={course.id}
      data-assignment-id={a.id}
      data-status={a.status}
    >
      <div className="lh-assignment-title">{a.title || a.id}</div>
      <dl className="lh-facts">
        <dt>Status</dt>
        <dd data-testid={`learnhub-assignment-status-${id}`}>{statusLabel(a.status)}</dd>
        <dt>Due</dt>
        <dd data-testid={`learnhub-assignment-due-${id}`} className={`lh-due-${due.state}`} title={due.title}>
          {due.text}
        </dd>
        <dt>Attempts</dt>
        <dd data-testid={`learnhub-assignment-attempts-${id}`}>{formatAttemptsLeft(a.max_attempts, a.attempts_used)}</dd>
        <dt>Score</dt>
        <dd data-testid={`learnhub-assignment-score-${id}`}>{formatScore(a.score, a.max_score)}</dd>
      </dl>
      <div className="lh-card-actions">
        {!fetched ? (
          <ActionButton
            testid={`learnhub-fetch-${id}`}
            label="Fetch"
            busyLabel="Fetching…"
            primary
            disabled={!mayFetch}
            ariaLabel={`Fetch ${a.title || a.id}`}
            onClick={doFetch}
            onError={setError}
          />
        ) : (
          <ActionButton
            testid={`learnhub-open-${id}`}
            label="Open"
            disabled={!first}
            ariaLabel={`Open ${a.title || a.id}`}
            onClick={doOpen}
            onError={setError}
          />
        )}
        <ActionButton
          testid={`learnhub-submit-${id}`}
          label="Submit"
          busyLabel="Submitting…"
          disabled={!maySubmit || (run !== undefined && !isFinished(run.state))}
          title={
            !fetched
              ? 'Fetch the assignment first'
              : closed
              ? 'The deadline has passed'
              : !maySubmit
              ? 'No attempts left'
              : undefined
          }
          ariaLabel={`Submit ${a.title || a.id}`}
          onClick={doSubmit}
          onError={setError}
        />
      </div>
      {note && (
        <p className="lh-note" data-testid={`learnhub-assignment-note-${id}`}>
          {note}
        </p>
      )}
      {error && <ErrorMessage testid={`learnhub-assignment-error-${id}`} message={error} />}
      {run && <RunResults run={run} testid={`learnhub-submit-results-${id}`} />}
    </li>
  );
}
