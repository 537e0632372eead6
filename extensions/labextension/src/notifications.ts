/**
 * learnhub's in-app notifications in JupyterLab's notification centre: live from the stream
 * topic "notifications", plus the unread ones at start and after a reconnect. Each has an
 * action that opens what it is about; using the action or dismissing it marks it read.
 */
import { Notification } from '@jupyterlab/apputils';

import { Learnhub } from './learnhub';
import { describeError, streamErrorMessage } from './logic/errors';
import {
  ILearnhubNotification,
  notificationFromEvent,
  NotificationTarget,
  parseNotification,
  SeenSet,
  viewOf
} from './logic/notifications';
import { itemsOf } from './logic/query';

/** At most this many toasts for the unread backlog; the rest are summed up in one. */
const BACKLOG_TOASTS = 5;

export class NotificationsController {
  constructor(
    private readonly learnhub: Learnhub,
    private readonly open: (target: NotificationTarget, notification: ILearnhubNotification) => void
  ) {}

  start(): void {
    this.learnhub.stream.subscribe({ subscribe: 'notifications' }, frame => {
      if (frame.error !== undefined) {
        this._warnOnce(`learnhub notifications are unavailable: ${streamErrorMessage(frame.error)}`);
        return;
      }
      const notification = notificationFromEvent(frame.event);
      if (notification) {
        this.show(notification);
      }
    });
    this.learnhub.streamStateChanged.connect((_, change) => {
      if (change.state === 'open' && change.reconnected) {
        // Notifications sent while the socket was down: the list has them.
        void this.loadUnread();
      }
    });
    Notification.manager.changed.connect((_, change) => {
      if (change.type !== 'removed') {
        return;
      }
      const id = this._byToast.get(change.notification.id);
      if (id) {
        this._byToast.delete(change.notification.id);
        void this.markRead(id);
      }
    });
    void this.loadUnread();
  }

  /** Show the unread notifications not shown yet, oldest first. */
  async loadUnread(): Promise<void> {
    let items: ILearnhubNotification[];
    try {
      const body = await this.learnhub.api.service('notifications', 'GET', 'notifications?unread=1&limit=50');
      items = itemsOf(body)
        .map(parseNotification)
        .filter((n): n is ILearnhubNotification => n !== null && !n.read && !this._seen.has(n.id));
    } catch (reason) {
      console.warn('learnhub: could not load notifications:', describeError(reason));
      return;
    }
    items.reverse(); // the service lists newest first
    const shown = items.slice(-BACKLOG_TOASTS);
    const rest = items.length - shown.length;
    if (rest > 0) {
      items.slice(0, rest).forEach(n => this._seen.add(n.id));
      Notification.info(`${rest} older learnhub notification${rest === 1 ? '' : 's'} not shown.`, { autoClose: 8000 });
    }
    shown.forEach(n => this.show(n));
  }

  show(notification: ILearnhubNotification): void {
    if (notification.read || !this._seen.add(notification.id)) {
      return;
    }
    const view = viewOf(notification);
    const toastId = Notification.emit(view.message, view.level, {
      autoClose: 10000,
      actions: [
        {
          label: view.actionLabel,
          caption: `Open ${view.target === 'next' ? 'Next for you' : view.target}`,
          callback: () => {
            this.open(view.target, notification);
            void this.markRead(notification.id);
          }
        },
        {
          label: 'Mark read',
          displayType: 'link',
          callback: () => void this.markRead(notification.id)
        }
      ]
    });
    this._byToast.set(toastId, notification.id);
  }

  async markRead(id: string): Promise<void> {
    if (this._read.has(id)) {
      return;
    }
    this._read.add(id);
    try {
      await this.learnhub.api.service('notifications', 'POST', `notifications/${encodeURIComponent(id)}/read`, {});
    } catch (reason) {
      this._read.delete(id);
      console.warn('learnhub: could not mark notification read:', describeError(reason));
    }
  }

  private _warnOnce(message: string): void {
    if (this._warned) {
      return;
    }
    this._warned = true;
    Notification.warning(message, { autoClose: 8000 });
  }

  private _seen = new SeenSet();
  private _read = new Set<string>();
  private _byToast = new Map<string, string>();
  private _warned = false;
}
