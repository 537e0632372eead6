/**
 * Live feedback in notebooks: the "Check" and "Ask for help" toolbar buttons of notebooks inside
 * `<course>/<assignment>/`, the per-cell markers and the summary line of check and grading runs.
 */
import { Dialog, Notification, showDialog, ToolbarButton } from '@jupyterlab/apputils';
import { Cell } from '@jupyterlab/cells';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import { IRun, Learnhub } from './learnhub';
import { describeError } from './logic/errors';
import { IAssignmentPath, assignmentFolder, isInside, parseAssignmentPath } from './logic/paths';
import { isFinished, resultsForNotebook, summarize } from './logic/results';
import { applyMarkers, clearMarkers, gradeIdOf } from './markers';
import { HelpModel } from './widgets/help';

/** The summary line above a notebook: "Checking…", "3 of 5 tests passed · score …". */
export class FeedbackSummary extends Widget {
  constructor() {
    super();
    this.addClass('lh-feedback-summary');
    this.node.dataset.testid = 'learnhub-feedback-summary';
    this.node.setAttribute('role', 'status');
    this.node.setAttribute('aria-live', 'polite');
    this._text = document.createElement('span');
    this._text.className = 'lh-feedback-summary-text';
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'lh-button lh-button-small';
    close.textContent = 'Hide';
    close.setAttribute('aria-label', 'Hide the feedback summary and the cell markers');
    close.dataset.testid = 'learnhub-feedback-summary-hide';
    close.addEventListener('click', () => this.onHide?.());
    this.node.append(this._text, close);
  }

  onHide: (() => void) | null = null;

  display(text: string, status: string): void {
    this._text.textContent = text;
    this.node.dataset.status = status;
    this.setHidden(false);
  }

  private _text: HTMLSpanElement;
}

class HelpQuestionBody extends Widget implements Dialog.IBodyWidget<string> {
  constructor(where: IAssignmentPath, cellLabel: string) {
    super();
    this.addClass('lh-help-dialog');
    const intro = document.createElement('p');
    intro.textContent =
      `Your question goes to the staff of ${where.course} with ${cellLabel} of ` +
      `${where.file || where.assignment} (its code included).`;
    const label = document.createElement('label');
    label.htmlFor = 'learnhub-help-question';
    label.textContent = 'Your question';
    this._textarea = document.createElement('textarea');
    this._textarea.id = 'learnhub-help-question';
    this._textarea.dataset.testid = 'learnhub-help-question';
    this._textarea.className = 'lh-textarea';
    this._textarea.rows = 5;
    this._textarea.setAttribute('aria-label', 'Your question');
    this._textarea.placeholder = 'What are you stuck on?';
    this.node.append(intro, label, this._textarea);
  }

  getValue(): string {
    return this._textarea.value;
  }

  private _textarea: HTMLTextAreaElement;
}

export class FeedbackController {
  constructor(
    private readonly learnhub: Learnhub,
    private readonly tracker: INotebookTracker,
    private readonly help: HelpModel
  ) {
    learnhub.runs.changed.connect((_, run) => this._onRun(run));
    tracker.widgetAdded.connect((_, panel) => this._onPanelAdded(panel));
  }

  /** The assignment a notebook belongs to (needs the context), or null. */
  assignmentOf(panel: NotebookPanel | null | undefined): IAssignmentPath | null {
    const context = this.learnhub.currentContext;
    if (!panel || !context) {
      return null;
    }
    return parseAssignmentPath(panel.context.path, {
      serverRoot: context.server_root,
      courses: Object.keys(context.courses)
    });
  }

  /** Save the notebook, ask for a check of its visible tests, and follow the results. */
  async check(panel: NotebookPanel | null | undefined = this.tracker.currentWidget): Promise<void> {
    if (!panel) {
      return;
    }
    const where = this.assignmentOf(panel);
    if (!where) {
      Notification.warning('Check works in the notebooks of an assignment you fetched (<course>/<assignment>/…).', {
        autoClose: 5000
      });
      return;
    }
    const summary = this._summary(panel);
    summary.display('Saving…', 'queued');
    try {
      await panel.context.ready;
      await panel.context.save();
      summary.display('Starting the check…', 'queued');
      const job = await this.learnhub.api.checkNotebook(where.course, where.assignment, panel.context.path);
      this.learnhub.runs.follow(job.id, 'check', {
        course: where.course,
        assignment: where.assignment,
        notebookPath: panel.context.path
      });
    } catch (reason) {
      summary.display(`Check failed: ${describeError(reason)}`, 'failed');
    }
  }

  /** Ask the course staff about a cell (the active one by default). */
  async askForHelp(panel: NotebookPanel | null | undefined = this.tracker.currentWidget, cell?: Cell | null): Promise<void> {
    if (!panel) {
      return;
    }
    const where = this.assignmentOf(panel);
    if (!where) {
      Notification.warning(
        'Ask for help works in the notebooks of an assignment you fetched (<course>/<assignment>/…); ' +
          'the Help panel asks about any assignment.',
        { autoClose: 6000, actions: [{ label: 'Open Help', callback: () => this.learnhub.openPanel('help') }] }
      );
      return;
    }
    const target = cell ?? panel.content.activeCell;
    const gradeId = target ? gradeIdOf(target) : null;
    const cellLabel = target
      ? gradeId
        ? `the cell ${gradeId}`
        : `cell ${panel.content.widgets.indexOf(target) + 1}`
      : 'no cell';
    const result = await showDialog<string>({
      title: 'Ask for help',
      body: new HelpQuestionBody(where, cellLabel),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Send question' })],
      focusNodeSelector: 'textarea'
    });
    if (!result.button.accept) {
      return;
    }
    const question = (result.value ?? '').trim();
    if (!question) {
      Notification.warning('Nothing was sent: the question was empty.', { autoClose: 4000 });
      return;
    }
    try {
      await this.help.ask(where, question, {
        id: target?.model.id ?? null,
        gradeId,
        code: target ? target.model.sharedModel.getSource() : null
      });
      Notification.success('Your question was sent to the course staff.', {
        autoClose: 5000,
        actions: [{ label: 'My questions', callback: () => this.learnhub.openPanel('help') }]
      });
    } catch (reason) {
      Notification.error(`Your question was not sent: ${describeError(reason)}`, { autoClose: false });
    }
  }

  /** The document widget extension adding the toolbar buttons. */
  createToolbarExtension(): DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
    return {
      createNew: (panel: NotebookPanel): IDisposable => {
        const check = new ToolbarButton({
          className: 'lh-toolbar-check',
          label: 'Check',
          tooltip: 'Save and run the visible tests of this notebook',
          onClick: () => void this.check(panel)
        });
        check.node.dataset.testid = 'learnhub-check-button';
        const ask = new ToolbarButton({
          className: 'lh-toolbar-help',
          label: 'Ask for help',
          tooltip: 'Ask the course staff about the active cell',
          onClick: () => void this.askForHelp(panel)
        });
        ask.node.dataset.testid = 'learnhub-ask-help-button';
        if (!panel.toolbar.insertAfter('cellType', 'learnhub-check', check)) {
          panel.toolbar.addItem('learnhub-check', check);
        }
        if (!panel.toolbar.insertAfter('learnhub-check', 'learnhub-ask-help', ask)) {
          panel.toolbar.addItem('learnhub-ask-help', ask);
        }
        const update = () => {
          const visible = this.assignmentOf(panel) !== null;
          check.setHidden(!visible);
          ask.setHidden(!visible);
        };
        update();
        this.learnhub.contextChanged.connect(update);
        panel.context.pathChanged.connect(update);
        return new DisposableDelegate(() => {
          this.learnhub.contextChanged.disconnect(update);
          panel.context.pathChanged.disconnect(update);
          check.dispose();
          ask.dispose();
        });
      }
    };
  }

  /** A run changed: show it in the notebooks it is about. */
  private _onRun(run: IRun): void {
    this.tracker.forEach(panel => {
      if (this._concerns(run, panel)) {
        this._show(panel, run);
      }
    });
    // A graded submission is announced by the notifications service ("Feedback ready");
    // a failed one is not, so say it here.
    if (run.state.kind === 'submission' && isFinished(run.state) && run.state.status === 'failed') {
      Notification.error(`${run.info.course}/${run.info.assignment}: ${summarize(run.state).text}`, {
        autoClose: false,
        actions: [{ label: 'Open courses', callback: () => this.learnhub.openPanel('courses') }]
      });
    }
  }

  /** A notebook opened: show the newest run about it, if any. */
  private _onPanelAdded(panel: NotebookPanel): void {
    void panel.context.ready.then(() => {
      const newest = this.learnhub.runs.all().find(run => this._concerns(run, panel));
      if (newest) {
        this._show(panel, newest);
      }
    });
    panel.content.model?.cells.changed.connect(() => {
      // Cells moved or added: markers were on widgets that may be gone; draw them again.
      const runId = this._current.get(panel);
      const run = runId ? this.learnhub.runs.get(runId) : undefined;
      if (run) {
        applyMarkers(panel, resultsForNotebook(run.state, panel.context.path));
      }
    });
  }

  private _concerns(run: IRun, panel: NotebookPanel): boolean {
    if (run.state.kind === 'check') {
      return run.info.notebookPath === panel.context.path;
    }
    const folder = assignmentFolder(run.info.course, run.info.assignment, this.learnhub.currentContext?.server_root);
    return isInside(panel.context.path, folder);
  }

  private _show(panel: NotebookPanel, run: IRun): void {
    // Only the newest run shown in a notebook updates it; an older one still streaming does not.
    const currentId = this._current.get(panel);
    const current = currentId ? this.learnhub.runs.get(currentId) : undefined;
    if (current && current !== run && current.info.startedAt > run.info.startedAt) {
      return;
    }
    this._current.set(panel, run.state.id);
    const summary = this._summary(panel);
    const text = summarize(run.state, panel.context.path).text;
    summary.display(`${run.state.kind === 'check' ? 'Check' : 'Submission'}: ${text}`, run.state.status);
    applyMarkers(panel, resultsForNotebook(run.state, panel.context.path));
  }

  private _summary(panel: NotebookPanel): FeedbackSummary {
    let summary = this._summaries.get(panel);
    if (!summary || summary.isDisposed) {
      summary = new FeedbackSummary();
      const created = summary;
      created.onHide = () => {
        created.setHidden(true);
        clearMarkers(panel);
      };
      this._summaries.set(panel, summary);
      panel.contentHeader.addWidget(summary);
    }
    return summary;
  }

  private _summaries = new WeakMap<NotebookPanel, FeedbackSummary>();
  private _current = new WeakMap<NotebookPanel, string>();
}
