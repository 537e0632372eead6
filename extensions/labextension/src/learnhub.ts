/**
 * The shared learnhub client of all plugins: HTTP API, the caller's context, the live stream
 * and the grading/check runs being followed.
 */
import { Token } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { LearnhubApi } from './api';
import { describeError, streamErrorMessage } from './logic/errors';
import {
  IConnectionChange,
  ISocket,
  IStreamSubscription,
  StreamMultiplexer
} from './logic/multiplexer';
import {
  applyEvent,
  applyStreamError,
  failRun,
  initialRun,
  IRunState,
  isFinished,
  RunKind
} from './logic/results';
import { ILearnhubContext } from './logic/roles';

/** The learnhub panels and what a notification's action may open. */
export type PanelName = 'courses' | 'next' | 'help' | 'instructor';

export const PANEL_IDS: { [name in PanelName]: string } = {
  courses: 'learnhub-courses-panel',
  next: 'learnhub-next-panel',
  help: 'learnhub-help-panel',
  instructor: 'learnhub-instructor-panel'
};

export const CommandIDs = {
  openCourses: 'learnhub:open-courses',
  openNext: 'learnhub:open-next',
  openHelp: 'learnhub:open-help',
  openInstructor: 'learnhub:open-instructor',
  check: 'learnhub:check-notebook',
  askHelp: 'learnhub:ask-for-help'
};

export interface IRunInfo {
  course: string;
  assignment: string;
  /** The notebook a check was run on (checks only). */
  notebookPath?: string;
  /** When the run was started here. */
  startedAt: number;
}

export interface IRun {
  info: IRunInfo;
  state: IRunState;
}

/** Follows check and grading jobs on the stream and keeps their latest state. */
export class RunRegistry {
  constructor(private readonly learnhub: Learnhub) {
    learnhub.streamStateChanged.connect((_, change) => {
      if (change.state !== 'waiting') {
        return;
      }
      // The socket dropped: say so on the runs still going (their events resume on reconnect).
      const seconds = Math.max(1, Math.round((change.delay ?? 0) / 1000));
      for (const run of this._runs.values()) {
        if (!isFinished(run.state)) {
          this._update(run.state.id, applyStreamError(run.state, `connection lost, retrying in ${seconds} s`));
        }
      }
    });
  }

  get changed(): ISignal<RunRegistry, IRun> {
    return this._changed;
  }

  /** Start following a job: subscribe to its topic and reduce its events. */
  follow(id: string, kind: RunKind, info: Omit<IRunInfo, 'startedAt'>): IRun {
    const existing = this._runs.get(id);
    if (existing) {
      return existing;
    }
    const run: IRun = { info: { ...info, startedAt: Date.now() }, state: initialRun(id, kind) };
    this._runs.set(id, run);
    this._latest.set(key(info.course, info.assignment, kind), id);
    this._emit(run);
    let subscription: IStreamSubscription | null = null;
    subscription = this.learnhub.stream.subscribe(
      kind === 'check' ? { subscribe: 'check', id } : { subscribe: 'submission', id },
      frame => {
        if (frame.event !== undefined) {
          this._update(id, applyEvent(run.state, frame.event));
        } else if (frame.error !== undefined) {
          this._update(id, applyStreamError(run.state, streamErrorMessage(frame.error)));
        }
        if (frame.closed || isFinished(run.state)) {
          subscription?.dispose();
          if (!isFinished(run.state)) {
            void this._fetchFinal(id, kind);
          }
        }
      }
    );
    return run;
  }

  get(id: string): IRun | undefined {
    return this._runs.get(id);
  }

  /** The latest run of that kind for an assignment. */
  latest(course: string, assignment: string, kind: RunKind): IRun | undefined {
    const id = this._latest.get(key(course, assignment, kind));
    return id ? this._runs.get(id) : undefined;
  }

  /** All runs, newest first. */
  all(): IRun[] {
    return [...this._runs.values()].sort((a, b) => b.info.startedAt - a.info.startedAt);
  }

  /** The stream ended before a final event: ask the feedback service for the result. */
  private async _fetchFinal(id: string, kind: RunKind): Promise<void> {
    const run = this._runs.get(id);
    if (!run) {
      return;
    }
    try {
      const payload = await this.learnhub.api.service(
        'feedback',
        'GET',
        `${kind === 'check' ? 'checks' : 'submissions'}/${encodeURIComponent(id)}`
      );
      if (payload && (payload.status === 'graded' || payload.status === 'failed')) {
        this._update(id, applyEvent(run.state, { ...payload, type: 'done' }));
      } else {
        this._update(id, failRun(run.state, 'The live results stopped before the end; refresh later for the score.'));
      }
    } catch (reason) {
      this._update(id, failRun(run.state, describeError(reason)));
    }
  }

  private _update(id: string, state: IRunState): void {
    const run = this._runs.get(id);
    if (!run || run.state === state) {
      return;
    }
    run.state = state;
    this._emit(run);
  }

  private _emit(run: IRun): void {
    this._changed.emit(run);
  }

  private _runs = new Map<string, IRun>();
  private _latest = new Map<string, string>();
  private _changed = new Signal<RunRegistry, IRun>(this);
}

function key(course: string, assignment: string, kind: RunKind): string {
  return `${kind}\u0000${course}\u0000${assignment}`;
}

export class Learnhub {
  constructor(api: LearnhubApi, connect?: () => ISocket) {
    this.api = api;
    this.stream = new StreamMultiplexer({
      connect: connect ?? (() => new WebSocket(api.streamUrl()) as unknown as ISocket),
      onStateChange: change => {
        this._streamState = change;
        this._streamStateChanged.emit(change);
      }
    });
    this.runs = new RunRegistry(this);
    this._context = this._loadContext();
  }

  readonly api: LearnhubApi;
  readonly stream: StreamMultiplexer;
  readonly runs: RunRegistry;

  /** The caller's context; fetched in the background when the extension starts. */
  get context(): Promise<ILearnhubContext> {
    return this._context;
  }

  /** The context once loaded, else null. */
  get currentContext(): ILearnhubContext | null {
    return this._current;
  }

  get contextChanged(): ISignal<Learnhub, ILearnhubContext> {
    return this._contextChanged;
  }

  get streamState(): IConnectionChange {
    return this._streamState;
  }

  get streamStateChanged(): ISignal<Learnhub, IConnectionChange> {
    return this._streamStateChanged;
  }

  /** Fetch the context again (after enrolling, or when it failed). */
  refreshContext(): Promise<ILearnhubContext> {
    const next = this._loadContext();
    // Keep the last good context for readers while a refresh fails.
    this._context = next.catch(reason => (this._current ? this._current : Promise.reject(reason)));
    // Readers handle a failure; nobody may be reading right now.
    this._context.catch(() => undefined);
    return next;
  }

  /** Open a panel (set by the plugin that knows the shell). */
  openPanel: (name: PanelName) => void = () => undefined;

  private _loadContext(): Promise<ILearnhubContext> {
    const promise = this.api.context();
    promise.then(
      context => {
        this._current = context;
        this._contextChanged.emit(context);
      },
      reason => console.warn('learnhub: could not load the context:', describeError(reason))
    );
    return promise;
  }

  private _context: Promise<ILearnhubContext>;
  private _current: ILearnhubContext | null = null;
  private _contextChanged = new Signal<Learnhub, ILearnhubContext>(this);
  private _streamState: IConnectionChange = { state: 'idle', attempt: 0 };
  private _streamStateChanged = new Signal<Learnhub, IConnectionChange>(this);
}

export const ILearnhub = new Token<Learnhub>(
  '@learnhub/labextension:ILearnhub',
  'The learnhub client: API, context, live stream and grading runs.'
);
