/**
 * In-app notifications (extensions/notifications): what each is about and where it leads.
 *
 * A notification is `{"id", "type", "course_id", "title", "body", "data", "created_at", "read"}`;
 * the stream sends `{"type": "notification", "notification": {...}}` (and `{"type": "hello"}`
 * when it connects). Types come from extensions/notifications/triggers.py.
 */

export interface ILearnhubNotification {
  id: string;
  type: string;
  course_id: string | null;
  title: string;
  body: string;
  data: { [key: string]: unknown };
  created_at: string | null;
  read: boolean;
}

/** Where the action of a notification leads. */
export type NotificationTarget = 'courses' | 'feedback' | 'help' | 'next';

export interface INotificationView {
  /** The toast's text (JupyterLab shows at most a few lines). */
  message: string;
  target: NotificationTarget;
  /** The action button's label. */
  actionLabel: string;
  /** 'info' | 'success' | 'warning' for the toast's colour. */
  level: 'info' | 'success' | 'warning';
  course: string | null;
  assignment: string | null;
}

/** Parse a notification object; null if it has no id. */
export function parseNotification(raw: unknown): ILearnhubNotification | null {
  if (typeof raw !== 'object' || raw === null) {
    return null;
  }
  const n = raw as { [key: string]: unknown };
  if (typeof n.id !== 'string' && typeof n.id !== 'number') {
    return null;
  }
  return {
    id: String(n.id),
    type: typeof n.type === 'string' ? n.type : 'message',
    course_id: typeof n.course_id === 'string' ? n.course_id : null,
    title: typeof n.title === 'string' ? n.title : '',
    body: typeof n.body === 'string' ? n.body : '',
    data: typeof n.data === 'object' && n.data !== null ? (n.data as { [key: string]: unknown }) : {},
    created_at: typeof n.created_at === 'string' ? n.created_at : null,
    read: n.read === true
  };
}

/** The notification carried by a stream event, if the event is one. */
export function notificationFromEvent(event: unknown): ILearnhubNotification | null {
  if (typeof event !== 'object' || event === null) {
    return null;
  }
  const e = event as { [key: string]: unknown };
  if (e.type !== 'notification') {
    return null;
  }
  return parseNotification(e.notification);
}

const MAX_MESSAGE = 140;

function clip(text: string, limit = MAX_MESSAGE): string {
  const clean = text.replace(/\s+/g, ' ').trim();
  return clean.length <= limit ? clean : clean.slice(0, limit - 1).trimEnd() + '…';
}

/** How to show a notification and what its action opens. */
export function viewOf(n: ILearnhubNotification): INotificationView {
  const assignment = typeof n.data.assignment_id === 'string' ? n.data.assignment_id : null;
  const title = n.title || 'learnhub';
  const message = clip(n.body ? `${title}: ${n.body}` : title);
  const base = { message, course: n.course_id, assignment };
  switch (n.type) {
    case 'feedback_ready':
      return { ...base, target: 'feedback', actionLabel: 'See feedback', level: 'success' };
    case 'help_answered':
      return { ...base, target: 'help', actionLabel: 'Read the answer', level: 'success' };
    case 'recommendations':
      return { ...base, target: 'next', actionLabel: 'Next for you', level: 'info' };
    case 'due_soon':
      return { ...base, target: 'courses', actionLabel: 'Open courses', level: 'warning' };
    case 'assignment_released':
      return { ...base, target: 'courses', actionLabel: 'Open courses', level: 'info' };
    default:
      return { ...base, target: 'courses', actionLabel: 'Open courses', level: 'info' };
  }
}

/** Remembers which notification ids were shown, so a reconnect does not show them twice. */
export class SeenSet {
  constructor(private readonly limit = 500) {}

  /** True the first time an id is added. */
  add(id: string): boolean {
    if (this._ids.has(id)) {
      return false;
    }
    this._ids.add(id);
    if (this._ids.size > this.limit) {
      const oldest = this._ids.values().next().value;
      if (oldest !== undefined) {
        this._ids.delete(oldest);
      }
    }
    return true;
  }

  has(id: string): boolean {
    return this._ids.has(id);
  }

  private _ids = new Set<string>();
}
