/**
 * The Instructor panel (instructors and TAs only): per course, the members (list, add with a
 * role, remove), the open help requests with an answer box, a Regrade button per assignment
 * (progress while it runs, the changed scores at the end), the LMS gradebook of a course linked
 * over LTI (./lms.tsx), and links to the analytics dashboard and nbgrader's Formgrader.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import * as React from 'react';

import { Learnhub } from '../learnhub';
import { slug } from '../logic/format';
import { decodeCellRef, IHelpRequest, parseHelpRequest } from '../logic/help';
import { itemsOf } from '../logic/query';
import {
  changeDelta,
  changeText,
  IRegrade,
  latestRegrade,
  parseRegrade,
  progressPercent,
  progressText,
  REGRADE_POLL_MS,
  regradesPath,
  shouldPoll
} from '../logic/regrade';
import {
  canManageEnrollments,
  dashboardUrl,
  formgraderUrl,
  ILearnhubContext,
  staffCourses
} from '../logic/roles';
import { ActionButton, ErrorMessage, Loading, Section, useAsync, useInterval, useSignal } from './common';
import { LmsSection } from './lms';

interface IEnrollment {
  course_id: string;
  user: string;
  role: string;
  created_at: string | null;
}

const ROLES = ['learner', 'ta', 'instructor'];
const QUEUE_POLL_MS = 60000;

export interface IInstructorHost {
  learnhub: Learnhub;
  /** The user's server base URL (for the Formgrader link). */
  baseUrl: string;
  confirm(title: string, body: string, accept: string): Promise<boolean>;
}

export class InstructorPanel extends ReactWidget {
  constructor(private readonly host: IInstructorHost) {
    super();
    this.addClass('lh-panel');
    this.addClass('lh-instructor-panel');
  }

  /** A help event arrived: reload the queues. */
  helpChanged(): void {
    this._helpVersion += 1;
    this.update();
  }

  render(): JSX.Element {
    return <InstructorView host={this.host} helpVersion={this._helpVersion} />;
  }

  private _helpVersion = 0;
}

function InstructorView(props: { host: IInstructorHost; helpVersion: number }): JSX.Element {
  const { learnhub } = props.host;
  const [context, setContext] = React.useState<ILearnhubContext | null>(learnhub.currentContext);
  useSignal(learnhub.contextChanged, (_, next) => setContext(next));
  const courses = context ? staffCourses(context) : [];
  return (
    <div className="lh-panel-body" data-testid="learnhub-instructor">
      <h2 className="lh-panel-title">Instructor</h2>
      <p className="lh-links">
        <a
          className="lh-link"
          href={formgraderUrl(props.host.baseUrl)}
          target="_blank"
          rel="noopener noreferrer"
          data-testid="learnhub-formgrader-link"
        >
          Open Formgrader (nbgrader)
        </a>
      </p>
      {!context && <Loading testid="learnhub-instructor-loading" />}
      {context && courses.length === 0 && <p className="lh-empty">You do not teach any course.</p>}
      {context &&
        courses.map(id => (
          <CourseAdmin key={id} host={props.host} context={context} courseId={id} helpVersion={props.helpVersion} />
        ))}
    </div>
  );
}

function CourseAdmin(props: {
  host: IInstructorHost;
  context: ILearnhubContext;
  courseId: string;
  helpVersion: number;
}): JSX.Element {
  const { context, courseId } = props;
  const cid = slug(courseId);
  return (
    <section className="lh-course-admin" data-testid={`learnhub-instructor-course-${cid}`} aria-label={`Course ${courseId}`}>
      <h3 className="lh-course-title">
        {courseId} <span className="lh-badge">{context.courses[courseId]}</span>
      </h3>
      <p className="lh-links">
        <a
          className="lh-link"
          href={dashboardUrl(context, courseId)}
          target="_blank"
          rel="noopener noreferrer"
          data-testid={`learnhub-dashboard-link-${cid}`}
        >
          Analytics dashboard
        </a>
      </p>
      <HelpQueue host={props.host} courseId={courseId} helpVersion={props.helpVersion} />
      <Regrades host={props.host} courseId={courseId} />
      <LmsSection learnhub={props.host.learnhub} courseId={courseId} instructor={canManageEnrollments(context, courseId)} />
      <Enrollments host={props.host} context={context} courseId={courseId} />
    </section>
  );
}

function Enrollments(props: { host: IInstructorHost; context: ILearnhubContext; courseId: string }): JSX.Element {
  const { learnhub } = props.host;
  const { courseId } = props;
  const cid = slug(courseId);
  const path = `courses/${encodeURIComponent(courseId)}/enrollments`;
  const members = useAsync(
    () => learnhub.api.service('courses', 'GET', `${path}?limit=200`).then(b => itemsOf<IEnrollment>(b)),
    [courseId]
  );
  const manage = canManageEnrollments(props.context, courseId);
  const [user, setUser] = React.useState('');
  const [role, setRole] = React.useState('learner');
  const [error, setError] = React.useState<string | null>(null);

  const add = async () => {
    setError(null);
    await learnhub.api.service('courses', 'POST', path, { user: user.trim(), role });
    setUser('');
    members.reload();
  };
  const remove = async (member: IEnrollment) => {
    setError(null);
    const ok = await props.host.confirm(
      `Remove ${member.user}?`,
      `${member.user} will no longer be a ${member.role} of ${courseId}.`,
      'Remove'
    );
    if (!ok) {
      return;
    }
    await learnhub.api.service('courses', 'DELETE', `${path}/${encodeURIComponent(member.user)}`);
    members.reload();
  };

  return (
    <Section title="Members" testid={`learnhub-members-${cid}`}>
      {manage && (
        <form
          className="lh-filter"
          onSubmit={event => {
            event.preventDefault();
          }}
        >
          <input
            type="text"
            className="lh-input"
            data-testid={`learnhub-members-add-user-${cid}`}
            aria-label={`User name to add to ${courseId}`}
            placeholder="user name"
            value={user}
            onChange={e => setUser(e.target.value)}
          />
          <select
            className="lh-select"
            data-testid={`learnhub-members-add-role-${cid}`}
            aria-label="Role"
            value={role}
            onChange={e => setRole(e.target.value)}
          >
            {ROLES.map(r => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
          <ActionButton
            testid={`learnhub-members-add-${cid}`}
            label="Add"
            busyLabel="Adding…"
            primary
            disabled={!user.trim()}
            ariaLabel={`Add the user to ${courseId}`}
            onClick={add}
            onError={setError}
          />
        </form>
      )}
      {error && <ErrorMessage testid={`learnhub-members-action-error-${cid}`} message={error} />}
      {members.loading && !members.data && <Loading testid={`learnhub-members-loading-${cid}`} />}
      {members.error && (
        <ErrorMessage testid={`learnhub-members-error-${cid}`} message={members.error} onRetry={members.reload} />
      )}
      {members.data && (
        <table className="lh-table" aria-label={`Members of ${courseId}`}>
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              {manage && <th scope="col"><span className="lh-visually-hidden">Actions</span></th>}
            </tr>
          </thead>
          <tbody>
            {members.data.map(m => (
              <tr key={m.user} data-testid={`learnhub-member-${cid}-${slug(m.user)}`}>
                <td>{m.user}</td>
                <td>{m.role}</td>
                {manage && (
                  <td>
                    {m.user !== props.context.user && (
                      <ActionButton
                        testid={`learnhub-members-remove-${cid}-${slug(m.user)}`}
                        label="Remove"
                        ariaLabel={`Remove ${m.user} from ${courseId}`}
                        onClick={() => remove(m)}
                        onError={setError}
                      />
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function HelpQueue(props: { host: IInstructorHost; courseId: string; helpVersion: number }): JSX.Element {
  const { learnhub } = props.host;
  const { courseId } = props;
  const cid = slug(courseId);
  const queue = useAsync(
    () =>
      learnhub.api
        .service('feedback', 'GET', `help-requests?course=${encodeURIComponent(courseId)}&status=open&limit=100`)
        .then(b =>
          itemsOf(b)
            .map(parseHelpRequest)
            .filter((r): r is IHelpRequest => r !== null)
        ),
    [courseId, props.helpVersion]
  );
  // Live: the course's help topic (new questions, answers); polling covers a stream that is down.
  React.useEffect(() => {
    const subscription = learnhub.stream.subscribe({ subscribe: 'help', course: courseId }, frame => {
      if (frame.event !== undefined && frame.event?.type !== 'subscribed') {
        queue.reload();
      }
    });
    return () => subscription.dispose();
  }, [courseId]);
  useInterval(queue.reload, QUEUE_POLL_MS);
  return (
    <Section
      title="Open help requests"
      testid={`learnhub-help-queue-${cid}`}
      actions={
        <button
          type="button"
          className="lh-button lh-button-small"
          aria-label={`Refresh the help requests of ${courseId}`}
          data-testid={`learnhub-help-queue-refresh-${cid}`}
          onClick={queue.reload}
        >
          Refresh
        </button>
      }
    >
      {queue.loading && !queue.data && <Loading testid={`learnhub-help-queue-loading-${cid}`} />}
      {queue.error && (
        <ErrorMessage testid={`learnhub-help-queue-error-${cid}`} message={queue.error} onRetry={queue.reload} />
      )}
      {queue.data && queue.data.length === 0 && <p className="lh-empty">No open questions.</p>}
      {queue.data && queue.data.length > 0 && (
        <ul className="lh-list" aria-live="polite">
          {queue.data.map(r => (
            <HelpRequestItem key={r.id} host={props.host} request={r} onAnswered={queue.reload} />
          ))}
        </ul>
      )}
    </Section>
  );
}

function HelpRequestItem(props: { host: IInstructorHost; request: IHelpRequest; onAnswered: () => void }): JSX.Element {
  const r = props.request;
  const rid = slug(r.id);
  const where = decodeCellRef(r.cell_id);
  const [answer, setAnswer] = React.useState('');
  const [error, setError] = React.useState<string | null>(null);
  const send = async () => {
    setError(null);
    await props.host.learnhub.api.service('feedback', 'POST', `help-requests/${encodeURIComponent(r.id)}/answers`, {
      answer: answer.trim()
    });
    setAnswer('');
    props.onAnswered();
  };
  return (
    <li className="lh-card lh-question" data-testid={`learnhub-help-request-${rid}`}>
      <div className="lh-card-meta">
        <span className="lh-tag">{r.learner}</span>
        <span className="lh-tag">{r.assignment}</span>
        {where.notebook && <span className="lh-tag">{where.notebook}</span>}
        {where.cell && <span className="lh-tag">{where.cell}</span>}
      </div>
      <p className="lh-question-text">{r.question}</p>
      {r.code && (
        <details className="lh-code">
          <summary>Code of the cell</summary>
          <pre>{r.code}</pre>
        </details>
      )}
      <textarea
        className="lh-textarea"
        data-testid={`learnhub-help-answer-input-${rid}`}
        aria-label={`Answer to ${r.learner}`}
        placeholder="Your answer"
        rows={2}
        value={answer}
        onChange={e => setAnswer(e.target.value)}
      />
      <ActionButton
        testid={`learnhub-help-answer-send-${rid}`}
        label="Send answer"
        busyLabel="Sending…"
        primary
        disabled={!answer.trim()}
        onClick={send}
        onError={setError}
      />
      {error && <ErrorMessage testid={`learnhub-help-answer-error-${rid}`} message={error} />}
    </li>
  );
}

interface IAssignmentItem {
  id: string;
  title: string | null;
}

/** Per assignment: "Regrade" (every learner's latest autograded submission, after a test fix). */
function Regrades(props: { host: IInstructorHost; courseId: string }): JSX.Element {
  const { learnhub } = props.host;
  const { courseId } = props;
  const cid = slug(courseId);
  const assignments = useAsync(
    () =>
      learnhub.api
        .service('courses', 'GET', `courses/${encodeURIComponent(courseId)}/assignments?limit=200`)
        .then(b => itemsOf<IAssignmentItem>(b).filter(a => typeof a.id === 'string')),
    [courseId]
  );
  return (
    <Section title="Regrade" testid={`learnhub-regrades-${cid}`}>
      <p className="lh-hint">
        After fixing a test in the source, grade every learner&apos;s latest submission again; their scores are
        updated.
      </p>
      {assignments.loading && !assignments.data && <Loading testid={`learnhub-regrades-loading-${cid}`} />}
      {assignments.error && (
        <ErrorMessage
          testid={`learnhub-regrades-error-${cid}`}
          message={assignments.error}
          onRetry={assignments.reload}
        />
      )}
      {assignments.data && assignments.data.length === 0 && <p className="lh-empty">No assignments.</p>}
      {assignments.data && assignments.data.length > 0 && (
        <ul className="lh-list">
          {assignments.data.map(a => (
            <RegradeItem key={a.id} host={props.host} courseId={courseId} assignment={a} />
          ))}
        </ul>
      )}
    </Section>
  );
}

function RegradeItem(props: { host: IInstructorHost; courseId: string; assignment: IAssignmentItem }): JSX.Element {
  const { learnhub } = props.host;
  const { courseId, assignment } = props;
  const tid = `${slug(courseId)}-${slug(assignment.id)}`;
  const [regrade, setRegrade] = React.useState<IRegrade | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  // The newest regrade of this assignment, so that one still running is followed after a reload.
  React.useEffect(() => {
    let live = true;
    learnhub.api
      .service('feedback', 'GET', `${regradesPath(courseId, assignment.id)}?limit=1`)
      .then(body => live && setRegrade(latestRegrade(body)))
      .catch(() => undefined); // no regrade history is not an error worth showing
    return () => {
      live = false;
    };
  }, [courseId, assignment.id]);
  const poll = async () => {
    if (!regrade || !shouldPoll(regrade)) {
      return;
    }
    try {
      const next = parseRegrade(
        await learnhub.api.service('feedback', 'GET', regradesPath(courseId, assignment.id, regrade.id))
      );
      if (next) {
        setRegrade(next);
      }
    } catch {
      // a missed poll is retried on the next tick
    }
  };
  useInterval(poll, shouldPoll(regrade) ? REGRADE_POLL_MS : null);
  const start = async () => {
    setError(null);
    const title = assignment.title || assignment.id;
    const ok = await props.host.confirm(
      `Regrade ${title}?`,
      `Every learner's latest autograded submission of ${title} is graded again with the current tests; ` +
        'their scores are replaced by the new ones.',
      'Regrade'
    );
    if (!ok) {
      return;
    }
    const accepted = await learnhub.api.service<{ id: string }>('feedback', 'POST', regradesPath(courseId, assignment.id));
    const first = parseRegrade(
      await learnhub.api.service('feedback', 'GET', regradesPath(courseId, assignment.id, accepted.id))
    );
    setRegrade(first);
  };
  const running = shouldPoll(regrade);
  return (
    <li className="lh-card lh-regrade" data-testid={`learnhub-regrade-${tid}`}>
      <div className="lh-card-meta">
        <span className="lh-tag">{assignment.title || assignment.id}</span>
        <ActionButton
          testid={`learnhub-regrade-start-${tid}`}
          label="Regrade"
          busyLabel="Starting…"
          disabled={running}
          ariaLabel={`Regrade ${assignment.title || assignment.id}`}
          onClick={start}
          onError={setError}
        />
      </div>
      {error && <ErrorMessage testid={`learnhub-regrade-error-${tid}`} message={error} />}
      {regrade && (
        <div className="lh-regrade-progress" data-testid={`learnhub-regrade-progress-${tid}`} aria-live="polite">
          {running && <progress max={100} value={progressPercent(regrade)} aria-label="Regrade progress" />}
          <span>{progressText(regrade)}</span>
        </div>
      )}
      {regrade && regrade.status === 'done' && regrade.changes.length > 0 && (
        <table className="lh-table" aria-label={`Changed scores of ${assignment.id}`}>
          <thead>
            <tr>
              <th scope="col">Learner</th>
              <th scope="col">Score</th>
              <th scope="col">Change</th>
            </tr>
          </thead>
          <tbody>
            {regrade.changes.map(c => (
              <tr key={c.submission} data-testid={`learnhub-regrade-change-${tid}-${slug(c.learner)}`}>
                <td>{c.learner}</td>
                <td>{changeText(c)}</td>
                <td>{changeDelta(c)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {regrade && regrade.status === 'done' && regrade.failures.length > 0 && (
        <ul className="lh-list" aria-label="Not regraded">
          {regrade.failures.map(f => (
            <li key={f.submission} className="lh-error-text">
              {f.learner}: {f.error}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}
