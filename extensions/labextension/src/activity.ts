/**
 * Cell runs in assignment notebooks, reported to the user's own server as Jupyter events
 * (`POST api/events`, schema https://learnhub.example/events/notebook-activity/v1, registered by
 * the learnhub server extension, extensions/singleuser/activity.py), which forwards them to the
 * analytics service. Notebooks outside `<course>/<assignment>/` are not reported. If the server
 * does not know the schema (no learnhub server extension), reporting stops quietly.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { Cell } from '@jupyterlab/cells';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';

import { Learnhub } from './learnhub';
import { parseAssignmentPath } from './logic/paths';

export const ACTIVITY_SCHEMA_ID = 'https://learnhub.example/events/notebook-activity/v1';

export class ActivityReporter {
  constructor(
    private readonly learnhub: Learnhub,
    private readonly tracker: INotebookTracker,
    private readonly settings: ServerConnection.ISettings
  ) {
    NotebookActions.executionScheduled.connect((_, { cell }) => {
      this._scheduled.set(cell, Date.now());
    });
    NotebookActions.executed.connect((_, args) => {
      void this._report(args.notebook, args.cell, args.success, args.error?.errorName ?? null);
    });
  }

  private async _report(notebook: unknown, cell: Cell, success: boolean, errorName: string | null): Promise<void> {
    if (this._disabled) {
      return;
    }
    const context = this.learnhub.currentContext;
    const panel = this.tracker.find(p => p.content === notebook);
    if (!context || !panel) {
      return;
    }
    const path = panel.context.path;
    if (!parseAssignmentPath(path, { serverRoot: context.server_root, courses: Object.keys(context.courses) })) {
      return;
    }
    const data: { [key: string]: unknown } = { action: 'cell_executed', path, cell_id: cell.model.id.slice(0, 128), success };
    if (errorName) {
      data.error_type = errorName.slice(0, 128);
    }
    const started = this._scheduled.get(cell);
    if (started !== undefined) {
      this._scheduled.delete(cell);
      data.duration = Math.max(0, (Date.now() - started) / 1000);
    }
    try {
      const response = await ServerConnection.makeRequest(
        URLExt.join(this.settings.baseUrl, 'api/events'),
        {
          method: 'POST',
          body: JSON.stringify({ schema_id: ACTIVITY_SCHEMA_ID, version: '1', data }),
          headers: { 'Content-Type': 'application/json' }
        },
        this.settings
      );
      if (response.status === 400 || response.status === 404) {
        // The schema is not registered: this server has no learnhub extension.
        this._disabled = true;
      }
    } catch {
      // Offline: the server's own records (opened/saved) still count.
    }
  }

  private _scheduled = new WeakMap<Cell, number>();
  private _disabled = false;
}
