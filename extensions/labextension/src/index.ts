/**
 * learnhub in JupyterLab (issue 8): Courses, Next for you, Help and Instructor panels, live
 * feedback in notebooks ("Check"), "Ask for help" on cells, and notifications.
 *
 * Nothing here waits for the network during activation: the context is fetched in the
 * background and the panels show their own loading and error states.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { ActivityReporter } from './activity';
import { LearnhubApi } from './api';
import { FeedbackController } from './feedback';
import { coursesIcon, helpIcon, instructorIcon, nextIcon } from './icons';
import { CommandIDs, ILearnhub, Learnhub, PANEL_IDS, PanelName } from './learnhub';
import { isInside } from './logic/paths';
import { MemoryLimitWatcher } from './memory';
import { showsInstructorPanel } from './logic/roles';
import { NotificationsController } from './notifications';
import { CoursesPanel } from './widgets/courses';
import { HelpModel, HelpPanel } from './widgets/help';
import { InstructorPanel } from './widgets/instructor';
import { NextPanel } from './widgets/next';

export { ILearnhub, Learnhub } from './learnhub';

const PLUGIN_PREFIX = '@learnhub/labextension';

/** The shared client: API, context (fetched in the background), stream, runs. */
const corePlugin: JupyterFrontEndPlugin<Learnhub> = {
  id: `${PLUGIN_PREFIX}:core`,
  description: 'The learnhub client: API, context, live stream and grading runs.',
  autoStart: true,
  provides: ILearnhub,
  activate: (app: JupyterFrontEnd): Learnhub => {
    return new Learnhub(new LearnhubApi(app.serviceManager.serverSettings));
  }
};

function setPanel(widget: Widget, id: string, label: string, icon: typeof coursesIcon): void {
  widget.id = id;
  widget.title.icon = icon;
  widget.title.caption = label;
  widget.title.label = label;
  widget.node.setAttribute('aria-label', `${label} panel`);
  widget.node.setAttribute('role', 'region');
}

async function confirm(title: string, body: string, accept: string): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: accept })]
  });
  return result.button.accept;
}

/** The panels, the notebook integration, the notifications and the commands. */
const uiPlugin: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN_PREFIX}:ui`,
  description: 'learnhub panels, live feedback in notebooks, help and notifications.',
  autoStart: true,
  requires: [ILearnhub, ILabShell, IDocumentManager, INotebookTracker],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    learnhub: Learnhub,
    shell: ILabShell,
    docManager: IDocumentManager,
    tracker: INotebookTracker,
    palette: ICommandPalette | null
  ): void => {
    const { commands } = app;

    const openNotebook = async (path: string) => {
      const widget = docManager.openOrReveal(path);
      if (!widget) {
        throw new Error(`Could not open ${path}.`);
      }
      await widget.context.ready;
    };
    const saveOpenNotebooks = async (folder: string) => {
      const saves: Promise<void>[] = [];
      tracker.forEach(panel => {
        if (isInside(panel.context.path, folder) && panel.context.model.dirty) {
          saves.push(panel.context.save());
        }
      });
      await Promise.all(saves);
    };

    // --- panels (left area) -------------------------------------------------------------
    const courses = new CoursesPanel({ learnhub, openNotebook, saveOpenNotebooks, confirm });
    setPanel(courses, PANEL_IDS.courses, 'Courses', coursesIcon);
    shell.add(courses, 'left', { rank: 450 });

    const next = new NextPanel(learnhub);
    setPanel(next, PANEL_IDS.next, 'Next for you', nextIcon);
    shell.add(next, 'left', { rank: 451 });

    const help = new HelpModel(learnhub);
    const helpPanel = new HelpPanel(learnhub, help);
    setPanel(helpPanel, PANEL_IDS.help, 'Help', helpIcon);
    shell.add(helpPanel, 'left', { rank: 452 });

    let instructor: InstructorPanel | null = null;
    const ensureInstructorPanel = () => {
      const context = learnhub.currentContext;
      if (!context || !showsInstructorPanel(context) || instructor) {
        return;
      }
      instructor = new InstructorPanel({
        learnhub,
        baseUrl: app.serviceManager.serverSettings.baseUrl,
        confirm
      });
      setPanel(instructor, PANEL_IDS.instructor, 'Instructor', instructorIcon);
      shell.add(instructor, 'left', { rank: 453 });
      commands.notifyCommandChanged(CommandIDs.openInstructor);
    };

    const openPanel = (name: PanelName) => {
      if (name === 'instructor' && !instructor) {
        return;
      }
      shell.activateById(PANEL_IDS[name]);
    };
    learnhub.openPanel = openPanel;

    // --- notebooks: Check, Ask for help, markers ------------------------------------------
    const feedback = new FeedbackController(learnhub, tracker, help);
    app.docRegistry.addWidgetExtension('Notebook', feedback.createToolbarExtension());

    // --- notifications and the live stream, once we know who we are ------------------------
    const notifications = new NotificationsController(learnhub, (target, notification) => {
      switch (target) {
        case 'help': {
          const question = notification.data.question_id;
          help.highlight(typeof question === 'string' ? question : null);
          void help.load();
          openPanel('help');
          break;
        }
        case 'next':
          next.refresh();
          openPanel('next');
          break;
        default:
          openPanel('courses');
      }
    });
    let started = false;
    const onContext = () => {
      ensureInstructorPanel();
      commands.notifyCommandChanged(CommandIDs.check);
      if (started) {
        return;
      }
      started = true;
      notifications.start();
      learnhub.stream.subscribe({ subscribe: 'help' }, frame => {
        if (frame.event !== undefined) {
          help.handleEvent(frame.event);
          instructor?.helpChanged();
        }
      });
    };
    learnhub.contextChanged.connect(onContext);
    // Not awaited: JupyterLab's start never waits for learnhub.
    void learnhub.context.then(onContext, () => undefined);

    // --- commands --------------------------------------------------------------------------
    const opener = (id: string, label: string, name: PanelName, isVisible?: () => boolean) =>
      commands.addCommand(id, {
        label,
        caption: `Open the learnhub ${label} panel`,
        isVisible,
        execute: () => openPanel(name)
      });
    opener(CommandIDs.openCourses, 'Courses', 'courses');
    opener(CommandIDs.openNext, 'Next for you', 'next');
    opener(CommandIDs.openHelp, 'Help (my questions)', 'help');
    opener(CommandIDs.openInstructor, 'Instructor', 'instructor', () => instructor !== null);

    const inAssignment = () => feedback.assignmentOf(tracker.currentWidget) !== null;
    commands.addCommand(CommandIDs.check, {
      label: 'Check Notebook (visible tests)',
      caption: 'Save the notebook and run its visible tests',
      isEnabled: inAssignment,
      execute: () => feedback.check()
    });
    commands.addCommand(CommandIDs.askHelp, {
      label: 'Ask for Help…',
      caption: 'Ask the course staff about this cell',
      isEnabled: () => tracker.currentWidget !== null,
      execute: () => feedback.askForHelp()
    });
    app.contextMenu.addItem({
      command: CommandIDs.askHelp,
      selector: '.jp-Notebook .jp-Cell',
      rank: 100
    });
    tracker.currentChanged.connect(() => commands.notifyCommandChanged(CommandIDs.check));

    if (palette) {
      const category = 'learnhub';
      for (const command of [
        CommandIDs.openCourses,
        CommandIDs.openNext,
        CommandIDs.openHelp,
        CommandIDs.openInstructor,
        CommandIDs.check,
        CommandIDs.askHelp
      ]) {
        palette.addItem({ command, category });
      }
    }
  }
};

/** Cell runs in assignment notebooks, as Jupyter events for learnhub's analytics (docs/analytics.md). */
const activityPlugin: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN_PREFIX}:activity`,
  description: 'Reports cell runs in assignment notebooks to learnhub analytics through the server.',
  autoStart: true,
  requires: [ILearnhub, INotebookTracker],
  activate: (app: JupyterFrontEnd, learnhub: Learnhub, tracker: INotebookTracker): void => {
    new ActivityReporter(learnhub, tracker, app.serviceManager.serverSettings);
  }
};

/** A kernel killed by the server's memory limit is said as such, naming the limit (docs/containment.md). */
const memoryPlugin: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN_PREFIX}:memory-limit`,
  description: "Says when a notebook's kernel was stopped by the server's memory limit, and which limit.",
  autoStart: true,
  requires: [ILearnhub, INotebookTracker],
  activate: (app: JupyterFrontEnd, learnhub: Learnhub, tracker: INotebookTracker): void => {
    new MemoryLimitWatcher(learnhub.api, tracker);
  }
};

const plugins: JupyterFrontEndPlugin<any>[] = [corePlugin, uiPlugin, activityPlugin, memoryPlugin];
export default plugins;
