/**
 * Help: the learner's questions and their answers, live (stream topic "help"), and a form to
 * ask about an assignment. Asking about a cell goes through the "Ask for help" command.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import { Learnhub } from '../learnhub';
import { describeError } from '../logic/errors';
import { slug } from '../logic/format';
import {
  decodeCellRef,
  helpRequestBody,
  helpRequestFromEvent,
  IHelpRequest,
  mergeHelpRequest,
  parseHelpRequest
} from '../logic/help';
import { IAssignmentPath } from '../logic/paths';
import { itemsOf } from '../logic/query';
import { ActionButton, ErrorMessage, Loading, Section, useAsync, useSignal } from './common';

/** The learner's help requests, kept up to date from the stream. */
export class HelpModel {
  constructor(private readonly learnhub: Learnhub) {}

  get changed(): ISignal<HelpModel, void> {
    return this._changed;
  }

  /** A request was answered (from the stream). */
  get answered(): ISignal<HelpModel, IHelpRequest> {
    return this._answered;
  }

  get requests(): IHelpRequest[] {
    return this._requests;
  }

  get loading(): boolean {
    return this._loading;
  }

  get error(): string | null {
    return this._error;
  }

  get highlighted(): string | null {
    return this._highlighted;
  }

  highlight(id: string | null): void {
    this._highlighted = id;
    this._changed.emit();
  }

  async load(): Promise<void> {
    this._loading = true;
    this._changed.emit();
    try {
      const body = await this.learnhub.api.service('feedback', 'GET', 'help-requests?limit=50');
      this._requests = itemsOf(body)
        .map(parseHelpRequest)
        .filter((r): r is IHelpRequest => r !== null);
      this._error = null;
    } catch (reason) {
      this._error = describeError(reason);
    } finally {
      this._loading = false;
      this._loaded = true;
      this._changed.emit();
    }
  }

  /** Load once (the panel's first showing). */
  ensureLoaded(): void {
    if (!this._loaded && !this._loading) {
      void this.load();
    }
  }

  async ask(where: IAssignmentPath, question: string, cell?: { id?: string | null; gradeId?: string | null; code?: string | null }): Promise<IHelpRequest> {
    const body = helpRequestBody(where, question, cell);
    const answer = await this.learnhub.api.service('feedback', 'POST', 'help-requests', body);
    const request = parseHelpRequest(answer);
    if (!request) {
      throw new Error('The feedback service answered something unexpected.');
    }
    this._requests = mergeHelpRequest(this._requests, request);
    this._changed.emit();
    return request;
  }

  /** A "help" stream event: an answer to one of my questions. */
  handleEvent(event: unknown): void {
    const request = helpRequestFromEvent(event);
    if (!request || (this.learnhub.currentContext && request.learner !== this.learnhub.currentContext.user)) {
      return;
    }
    this._requests = mergeHelpRequest(this._requests, request);
    this._changed.emit();
    if (request.answer) {
      this._answered.emit(request);
    }
  }

  private _requests: IHelpRequest[] = [];
  private _loading = false;
  private _loaded = false;
  private _error: string | null = null;
  private _highlighted: string | null = null;
  private _changed = new Signal<HelpModel, void>(this);
  private _answered = new Signal<HelpModel, IHelpRequest>(this);
}

export class HelpPanel extends ReactWidget {
  constructor(private readonly learnhub: Learnhub, private readonly model: HelpModel) {
    super();
    this.addClass('lh-panel');
    this.addClass('lh-help-panel');
  }

  protected onAfterShow(): void {
    this.model.ensureLoaded();
  }

  render(): JSX.Element {
    return <HelpView learnhub={this.learnhub} model={this.model} />;
  }
}

function HelpView(props: { learnhub: Learnhub; model: HelpModel }): JSX.Element {
  const { model } = props;
  const [, force] = React.useState(0);
  useSignal(model.changed, () => force(n => n + 1));
  React.useEffect(() => model.ensureLoaded(), [model]);
  React.useEffect(() => {
    if (model.highlighted) {
      document.getElementById(`learnhub-question-${slug(model.highlighted)}`)?.scrollIntoView({ block: 'nearest' });
    }
  }, [model.highlighted]);
  return (
    <div className="lh-panel-body" data-testid="learnhub-help">
      <h2 className="lh-panel-title">Help</h2>
      <AskForm learnhub={props.learnhub} model={model} />
      <Section
        title="My questions"
        testid="learnhub-my-questions"
        actions={
          <button
            type="button"
            className="lh-button lh-button-small"
            data-testid="learnhub-my-questions-refresh"
            aria-label="Refresh my questions"
            onClick={() => void model.load()}
          >
            Refresh
          </button>
        }
      >
        {model.loading && model.requests.length === 0 && <Loading testid="learnhub-my-questions-loading" />}
        {model.error && (
          <ErrorMessage testid="learnhub-my-questions-error" message={model.error} onRetry={() => void model.load()} />
        )}
        {!model.loading && !model.error && model.requests.length === 0 && (
          <p className="lh-empty">
            No questions yet. In a notebook, right-click a cell and choose “Ask for help”.
          </p>
        )}
        {model.requests.length > 0 && (
          <ul className="lh-list" aria-live="polite">
            {model.requests.map(r => {
              const where = decodeCellRef(r.cell_id);
              return (
                <li
                  key={r.id}
                  id={`learnhub-question-${slug(r.id)}`}
                  className={`lh-card lh-question lh-question-${r.status}${model.highlighted === r.id ? ' lh-highlight' : ''}`}
                  data-testid={`learnhub-question-${slug(r.id)}`}
                  data-status={r.status}
                >
                  <div className="lh-card-meta">
                    <span className="lh-tag">
                      {r.course}/{r.assignment}
                    </span>
                    {where.notebook && <span className="lh-tag">{where.notebook}</span>}
                    {where.cell && <span className="lh-tag">{where.cell}</span>}
                    <span className="lh-badge">{r.status}</span>
                  </div>
                  <p className="lh-question-text">{r.question}</p>
                  {r.answer ? (
                    <div className="lh-answer" data-testid={`learnhub-answer-${slug(r.id)}`}>
                      <span className="lh-answer-by">{r.answered_by ?? 'Staff'} answered:</span>
                      <p>{r.answer}</p>
                    </div>
                  ) : (
                    <p className="lh-note">Waiting for an answer…</p>
                  )}
                </li>
              );
            })}
          </ul>
        )}
      </Section>
    </div>
  );
}

function AskForm(props: { learnhub: Learnhub; model: HelpModel }): JSX.Element {
  const { learnhub, model } = props;
  const context = useAsync(() => learnhub.context, []);
  // Enrolling elsewhere (the Courses panel) changes which courses the learner may ask in.
  useSignal(learnhub.contextChanged, context.reload);
  const courses = context.data ? Object.keys(context.data.courses).sort() : [];
  const [course, setCourse] = React.useState('');
  const [assignment, setAssignment] = React.useState('');
  const [question, setQuestion] = React.useState('');
  const [error, setError] = React.useState<string | null>(null);
  const [sent, setSent] = React.useState(false);
  const selectedCourse = course || courses[0] || '';
  const assignments = useAsync(
    () =>
      selectedCourse
        ? learnhub.api
            .service('courses', 'GET', `courses/${encodeURIComponent(selectedCourse)}/assignments?limit=200`)
            .then(body => itemsOf<{ id: string; title: string }>(body))
        : Promise.resolve([]),
    [selectedCourse]
  );
  const selectedAssignment = assignment || assignments.data?.[0]?.id || '';

  const send = async () => {
    setError(null);
    setSent(false);
    await model.ask({ course: selectedCourse, assignment: selectedAssignment, file: '' }, question);
    setQuestion('');
    setSent(true);
  };

  return (
    <Section title="Ask a question" testid="learnhub-ask">
      {context.error && <ErrorMessage testid="learnhub-ask-context-error" message={context.error} onRetry={context.reload} />}
      {context.data && courses.length === 0 && <p className="lh-empty">Enroll in a course to ask its staff.</p>}
      {courses.length > 0 && (
        <form
          className="lh-form"
          onSubmit={event => {
            event.preventDefault();
          }}
        >
          <label className="lh-label">
            Course
            <select
              className="lh-select"
              data-testid="learnhub-ask-course"
              aria-label="Course"
              value={selectedCourse}
              onChange={e => {
                setCourse(e.target.value);
                setAssignment('');
              }}
            >
              {courses.map(c => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          </label>
          <label className="lh-label">
            Assignment
            <select
              className="lh-select"
              data-testid="learnhub-ask-assignment"
              aria-label="Assignment"
              value={selectedAssignment}
              onChange={e => setAssignment(e.target.value)}
            >
              {(assignments.data ?? []).map(a => (
                <option key={a.id} value={a.id}>
                  {a.title || a.id}
                </option>
              ))}
            </select>
          </label>
          {assignments.error && <ErrorMessage testid="learnhub-ask-assignments-error" message={assignments.error} />}
          <textarea
            className="lh-textarea"
            data-testid="learnhub-ask-question"
            aria-label="Your question"
            placeholder="What do you need help with?"
            rows={3}
            value={question}
            onChange={e => setQuestion(e.target.value)}
          />
          <ActionButton
            testid="learnhub-ask-send"
            label="Send question"
            busyLabel="Sending…"
            primary
            disabled={!question.trim() || !selectedAssignment}
            onClick={send}
            onError={setError}
          />
          {error && <ErrorMessage testid="learnhub-ask-error" message={error} />}
          {sent && (
            <p className="lh-note" role="status" data-testid="learnhub-ask-sent">
              Sent: the answer will appear below.
            </p>
          )}
        </form>
      )}
    </Section>
  );
}
