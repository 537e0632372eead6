/**
 * A kernel killed by the memory limit, said as such (issue 14): when a notebook's kernel dies or is
 * restarted by the server, ask the server extension (`GET learnhub/api/limits`) whether its cgroup's
 * OOM-kill count went up, and if so show a notification naming the limit. JupyterLab's own "Kernel
 * Restarting" dialog still comes (it is JupyterLab's, and true); this one says why and what to do.
 */
import { Dialog, ISessionContext, Notification, showDialog } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';

import { LearnhubApi } from './api';
import { describeError } from './logic/errors';
import {
  IMemoryStatus,
  memoryLimitAdvice,
  memoryLimitMessage,
  OomKillMark,
  parseMemoryStatus
} from './logic/memory';

/** Statuses of a kernel that died: `autorestarting` is the server restarting a dead kernel. */
const DIED: ReadonlySet<Kernel.Status> = new Set<Kernel.Status>(['autorestarting', 'restarting', 'dead']);

export class MemoryLimitWatcher {
  constructor(
    private readonly api: LearnhubApi,
    tracker: INotebookTracker
  ) {
    // The count before any kernel of this page died; a kill before the page opened is not news.
    this._queue = this._status().then(status => this._mark.set(status));
    tracker.widgetAdded.connect((_, panel) => this._watch(panel));
    tracker.forEach(panel => this._watch(panel));
  }

  private _watch(panel: NotebookPanel): void {
    const onStatus = (context: ISessionContext, status: Kernel.Status) => {
      if (DIED.has(status)) {
        // One look at a time: the statuses of one death come in bursts, the message is said once.
        this._queue = this._queue.then(() => this._check(panel));
      }
    };
    panel.sessionContext.statusChanged.connect(onStatus);
    panel.disposed.connect(() => panel.sessionContext.statusChanged.disconnect(onStatus));
  }

  private async _check(panel: NotebookPanel): Promise<void> {
    const status = await this._status();
    if (this._mark.wentUp(status) && status) {
      const name = panel.isDisposed ? null : panel.context.path.split('/').pop() ?? null;
      // Stays until closed: the learner may be looking elsewhere when it happens.
      Notification.error(memoryLimitMessage(status.limit, name), {
        autoClose: false,
        actions: [
          {
            label: 'What can I do?',
            caption: 'How to stay under the memory limit',
            callback: () =>
              void showDialog({
                title: 'Memory limit',
                body: memoryLimitAdvice(status.limit),
                buttons: [Dialog.okButton({ label: 'Ok' })]
              })
          }
        ]
      });
    }
  }

  private async _status(): Promise<IMemoryStatus | null> {
    try {
      return parseMemoryStatus(await this.api.request('GET', 'limits'));
    } catch (reason) {
      console.warn('learnhub: could not read the memory limit:', describeError(reason));
      return null;
    }
  }

  private _mark = new OomKillMark();
  private _queue: Promise<void>;
}
