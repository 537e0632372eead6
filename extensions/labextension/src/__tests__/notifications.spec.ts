import { notificationFromEvent, parseNotification, SeenSet, viewOf } from '../logic/notifications';

const raw = {
  id: 'n1',
  type: 'feedback_ready',
  course_id: 'intro-python',
  title: 'Feedback ready: Basics',
  body: 'Your submission was graded; the feedback is in JupyterLab.',
  data: { assignment_id: '01-basics', score: 7, max_score: 10 },
  created_at: '2025-03-10T12:00:00Z',
  read: false
};

describe('notifications', () => {
  it('reads the stream event', () => {
    const n = notificationFromEvent({ type: 'notification', notification: raw })!;
    expect(n.id).toBe('n1');
    expect(notificationFromEvent({ type: 'hello', unread: 3 })).toBeNull();
    expect(notificationFromEvent(null)).toBeNull();
    expect(parseNotification({ title: 'no id' })).toBeNull();
    expect(parseNotification({ id: 5 })!.id).toBe('5');
  });

  it('leads each type to its place', () => {
    const n = parseNotification(raw)!;
    expect(viewOf(n)).toMatchObject({ target: 'feedback', level: 'success', course: 'intro-python', assignment: '01-basics' });
    expect(viewOf({ ...n, type: 'help_answered' }).target).toBe('help');
    expect(viewOf({ ...n, type: 'recommendations' }).target).toBe('next');
    expect(viewOf({ ...n, type: 'due_soon' })).toMatchObject({ target: 'courses', level: 'warning' });
    expect(viewOf({ ...n, type: 'assignment_released' }).target).toBe('courses');
    expect(viewOf({ ...n, type: 'announcement' }).target).toBe('courses');
  });

  it('keeps toast messages short', () => {
    const n = parseNotification({ ...raw, body: 'x '.repeat(200) })!;
    const message = viewOf(n).message;
    expect(message.length).toBeLessThanOrEqual(140);
    expect(message.endsWith('…')).toBe(true);
  });

  it('shows each notification once', () => {
    const seen = new SeenSet(2);
    expect(seen.add('a')).toBe(true);
    expect(seen.add('a')).toBe(false);
    seen.add('b');
    seen.add('c'); // forgets the oldest
    expect(seen.has('a')).toBe(false);
    expect(seen.has('c')).toBe(true);
  });
});
